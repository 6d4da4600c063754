// Reference rotary position embedding (normal = interleaved pairs, NeoX = half-split pairs) and its
// inverse-frequency table, with lime's own pow/sincos so every machine rotates by the same fp32 (cos, sin).
#include "kernels/cpu/rope.h"

#include "kernels/cpu/math.h"

namespace lime::cpu {

void rope_inv_freq(double* inv_freq, int32_t n_rot, double base, double freq_scale, const float* factors) {
  for (int32_t i = 0; i < n_rot / 2; ++i) {
    const double expo = -static_cast<double>(2 * i) / static_cast<double>(n_rot);
    double f = freq_scale * pow_f64(base, expo);
    if (factors) f = f / static_cast<double>(factors[i]);
    inv_freq[i] = f;
  }
}

void rope_ref(float* x, int32_t n_head, int32_t head_dim, int32_t n_rot, int32_t pos, const double* inv_freq,
              bool neox) {
  // Invalid geometry is a programming error; rotate nothing rather than touch memory outside a head.
  if (n_rot < 0 || n_rot > head_dim || n_rot % 2 != 0) return;
  const int32_t half = n_rot / 2;
  for (int32_t i = 0; i < half; ++i) {
    double sd, cd;
    sincos_f64(static_cast<double>(pos) * inv_freq[i], &sd, &cd);
    const float s = static_cast<float>(sd);
    const float c = static_cast<float>(cd);
    const int32_t i0 = neox ? i : 2 * i;
    const int32_t i1 = neox ? i + half : 2 * i + 1;
    for (int32_t h = 0; h < n_head; ++h) {
      float* xh = x + static_cast<int64_t>(h) * head_dim;
      const float x0 = xh[i0];
      const float x1 = xh[i1];
      const float p00 = x0 * c, p11 = x1 * s, p01 = x0 * s, p10 = x1 * c;  // each product rounded, no fma
      xh[i0] = p00 - p11;
      xh[i1] = p01 + p10;
    }
  }
}

}  // namespace lime::cpu
