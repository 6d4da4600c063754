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

namespace {

// Pair (i0, i1) of each head: x0' = x0*c - x1*s, x1' = x0*s + x1*c, each product rounded (no fma).
void rotate_pair(float* x, int32_t n_head, int32_t head_dim, int32_t i0, int32_t i1, float c, float s) {
  for (int32_t h = 0; h < n_head; ++h) {
    float* xh = x + static_cast<int64_t>(h) * head_dim;
    const float x0 = xh[i0];
    const float x1 = xh[i1];
    const float p00 = x0 * c, p11 = x1 * s, p01 = x0 * s, p10 = x1 * c;
    xh[i0] = p00 - p11;
    xh[i1] = p01 + p10;
  }
}

bool bad_geometry(int32_t head_dim, int32_t n_rot) { return n_rot < 0 || n_rot > head_dim || n_rot % 2 != 0; }

}  // namespace

void rope_ref(float* x, int32_t n_head, int32_t head_dim, int32_t n_rot, int32_t pos, const double* inv_freq,
              bool neox) {
  // Invalid geometry is a programming error; rotate nothing rather than touch memory outside a head.
  if (bad_geometry(head_dim, n_rot)) return;
  const int32_t half = n_rot / 2;
  for (int32_t i = 0; i < half; ++i) {
    double sd, cd;
    sincos_f64(static_cast<double>(pos) * inv_freq[i], &sd, &cd);
    rotate_pair(x, n_head, head_dim, neox ? i : 2 * i, neox ? i + half : 2 * i + 1, static_cast<float>(cd),
                static_cast<float>(sd));
  }
}

void rope_cos_sin(const int32_t* pos, int64_t n_tok, int32_t n_rot, const double* inv_freq, float* cs) {
  const int32_t half = n_rot / 2;
  for (int64_t t = 0; t < n_tok; ++t) {
    for (int32_t i = 0; i < half; ++i) {
      double sd, cd;
      sincos_f64(static_cast<double>(pos[t]) * inv_freq[i], &sd, &cd);
      cs[(t * half + i) * 2] = static_cast<float>(cd);
      cs[(t * half + i) * 2 + 1] = static_cast<float>(sd);
    }
  }
}

void rope_apply(float* x, int32_t n_head, int32_t head_dim, int32_t n_rot, const float* cs, bool neox) {
  if (bad_geometry(head_dim, n_rot)) return;
  const int32_t half = n_rot / 2;
  for (int32_t i = 0; i < half; ++i) {
    rotate_pair(x, n_head, head_dim, neox ? i : 2 * i, neox ? i + half : 2 * i + 1, cs[2 * i], cs[2 * i + 1]);
  }
}

}  // namespace lime::cpu
