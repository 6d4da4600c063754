// SwiGLU: out[i] = silu(gate[i]) * up[i] (silu_f32 from kernels/cpu/math.h).
#pragma once
#include <cstdint>

namespace lime::cpu {

// gate, up, out: [n]; out may alias gate or up.
void swiglu_ref(const float* gate, const float* up, float* out, int64_t n);

// The fastest variant this CPU runs; bitwise equal to swiglu_ref.
void swiglu(const float* gate, const float* up, float* out, int64_t n);

}  // namespace lime::cpu
