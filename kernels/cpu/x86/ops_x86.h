// Internal entry points of the x86 variants of attention, swiglu, rmsnorm and the vector exp/silu
// (kernels/cpu/x86/ops_avx2.cpp, ops_avx512.cpp). Each is bitwise equal to its reference for every input.
// Only for CPUs that isa_available() says can run them; kernels/cpu/ops_dispatch.cpp picks one.
#pragma once
#include <cstdint>

#include "kernels/cpu/attention.h"
#include "kernels/status.h"

namespace lime::cpu {

// Same contract, statuses and results as attention_ref (kernels/cpu/attention.h).
kstatus attention_avx2(const attention_args& a);
kstatus attention_avx512(const attention_args& a);

// Same as swiglu_ref / rmsnorm_ref (kernels/cpu/swiglu.h, rmsnorm.h), aliasing rules included.
void swiglu_avx2(const float* gate, const float* up, float* out, int64_t n);
void swiglu_avx512(const float* gate, const float* up, float* out, int64_t n);
void rmsnorm_avx2(const float* x, const float* w, float* y, int64_t n, float eps);
void rmsnorm_avx512(const float* x, const float* w, float* y, int64_t n, float eps);

// y[i] = exp_f32(x[i]) / silu_f32(x[i]) (kernels/cpu/math.h), bit for bit; x, y: [n], y may alias x.
void exp_f32_avx2(const float* x, float* y, int64_t n);
void exp_f32_avx512(const float* x, float* y, int64_t n);
void silu_f32_avx2(const float* x, float* y, int64_t n);
void silu_f32_avx512(const float* x, float* y, int64_t n);

}  // namespace lime::cpu
