// The one canonical reduction order of lime. Every dot product, sum of squares and sum in the engine
// (reference, AVX2, AVX-512, NEON, CUDA) must reproduce it bit for bit; this file is its definition.
#pragma once
#include <cmath>
#include <cstdint>

namespace lime::cpu {

// Canonical order for a reduction over K elements (a dot product sum_k a[k]*b[k]):
//   1. There are k_lanes = 16 fp32 accumulators, all starting at +0.0f.
//   2. Element k goes to lane (k % 16). K is walked front to back; each step is one fused multiply-add
//      acc[l] = fma(a[k], b[k], acc[l]) (std::fma in scalar code: a single rounding).
//      A tail (K not a multiple of 16) only touches lanes 0..(K%16)-1; other lanes are left as they are
//      (masked, not padded with zeros, so the sign of a zero sum is kept too).
//   3. The 16 lanes are folded by halving: for w in 8, 4, 2, 1: acc[l] = acc[l] + acc[l + w] for l < w.
//      The result is acc[0]. (AVX-512: add the high 256 bits to the low, then 128, 64, 32.)
// Quantized weights take part as their exact fp32 values from the reference dequantizer (same operation order),
// so a row's dot product never depends on the SIMD width, batch size, or thread count.
// Plain sums (sum_k a[k]) use the same lanes with acc[l] = acc[l] + a[k].
constexpr int k_lanes = 16;

struct lane_acc {
  float v[k_lanes] = {0.f, 0.f, 0.f, 0.f, 0.f, 0.f, 0.f, 0.f, 0.f, 0.f, 0.f, 0.f, 0.f, 0.f, 0.f, 0.f};

  // Feeds elements a[0..n) * b[0..n), the first one landing in lane `lane0` (the global index k % 16).
  void fma_span(const float* a, const float* b, int64_t n, int lane0 = 0) {
    int l = lane0;
    for (int64_t i = 0; i < n; ++i) {
      v[l] = std::fma(a[i], b[i], v[l]);
      l = (l + 1) & (k_lanes - 1);
    }
  }
  void add_span(const float* a, int64_t n, int lane0 = 0) {
    int l = lane0;
    for (int64_t i = 0; i < n; ++i) {
      v[l] = v[l] + a[i];
      l = (l + 1) & (k_lanes - 1);
    }
  }
  float fold() const {
    float t[k_lanes];
    for (int l = 0; l < k_lanes; ++l) t[l] = v[l];
    for (int w = k_lanes / 2; w >= 1; w /= 2) {
      for (int l = 0; l < w; ++l) t[l] = t[l] + t[l + w];
    }
    return t[0];
  }
};

// sum_k a[k] * b[k] in the canonical order.
inline float dot_canonical(const float* a, const float* b, int64_t n) {
  lane_acc acc;
  acc.fma_span(a, b, n);
  return acc.fold();
}

// sum_k a[k] in the canonical order.
inline float sum_canonical(const float* a, int64_t n) {
  lane_acc acc;
  acc.add_span(a, n);
  return acc.fold();
}

}  // namespace lime::cpu
