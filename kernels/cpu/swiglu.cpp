// Reference SwiGLU: out[i] = silu_f32(gate[i]) * up[i], elementwise (so out may alias either input).
#include "kernels/cpu/swiglu.h"

#include "kernels/cpu/math.h"

namespace lime::cpu {

void swiglu_ref(const float* gate, const float* up, float* out, int64_t n) {
  for (int64_t i = 0; i < n; ++i) out[i] = silu_f32(gate[i]) * up[i];
}

}  // namespace lime::cpu
