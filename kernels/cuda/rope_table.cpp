// Host side of the CUDA rope: the per-token (cos, sin) table, computed with the same lime math as cpu::rope_ref.
#include "kernels/cpu/math.h"
#include "kernels/cuda/ops.h"

namespace lime::cuda {

void rope_cos_sin(const int32_t* pos, int64_t n_tok, int32_t n_rot, const double* inv_freq, float* cs) {
  const int32_t half = n_rot / 2;
  for (int64_t t = 0; t < n_tok; ++t) {
    for (int32_t i = 0; i < half; ++i) {
      double sd, cd;
      cpu::sincos_f64(static_cast<double>(pos[t]) * inv_freq[i], &sd, &cd);
      cs[(t * half + i) * 2] = static_cast<float>(cd);
      cs[(t * half + i) * 2 + 1] = static_cast<float>(sd);
    }
  }
}

}  // namespace lime::cuda
