// The one definition of lime's fp32 exp/silu algorithm, as inline functions usable from host code (math.cpp) and
// CUDA device code (kernels/cuda), so both compile the same operation sequence. Callers outside math.cpp and
// kernels/cuda use kernels/cpu/math.h. Never include this from ISA-flagged files (kernels/CMakeLists.txt).
#pragma once
#include <cstdint>

#include "kernels/quant_blocks.h"  // LIME_HOST_DEVICE

#if !defined(__CUDA_ARCH__)
#include <cmath>
#include <cstring>
#endif

namespace lime::cpu::math_impl {

// ---- fp32 exp constants. ln2 = k_ln2_hi + k_ln2_lo; k_ln2_hi has 14 significant bits, so n * k_ln2_hi is
// exact for |n| < 2^10. The Taylor coefficients are written out (and checked against the divisions) so the
// host and the device compilers cannot fold them differently.
constexpr float k_log2e_f = 0x1.715476p+0f;
constexpr float k_ln2_hi_f = 0x1.62e4p-1f;
constexpr float k_ln2_lo_f = 0x1.7f7d1cp-20f;
constexpr float k_shift_f = 0x1.8p+23f;  // 1.5 * 2^23: adding it rounds to an integer (round to nearest even)
constexpr float k_inv_5040 = 0x1.a01a02p-13f;
constexpr float k_inv_720 = 0x1.6c16c2p-10f;
constexpr float k_inv_120 = 0x1.111112p-7f;
constexpr float k_inv_24 = 0x1.555556p-5f;
constexpr float k_inv_6 = 0x1.555556p-3f;
static_assert(k_inv_5040 == 1.0f / 5040.0f && k_inv_720 == 1.0f / 720.0f && k_inv_120 == 1.0f / 120.0f &&
                  k_inv_24 == 1.0f / 24.0f && k_inv_6 == 1.0f / 6.0f,
              "exp_f32 Taylor coefficients");

LIME_HOST_DEVICE inline float bits_to_f32(uint32_t u) {
#if defined(__CUDA_ARCH__)
  return __uint_as_float(u);
#else
  float f;
  std::memcpy(&f, &u, sizeof f);
  return f;
#endif
}

// fma with a single rounding on both sides (std::fma on the host, the fma.rn instruction on the device).
LIME_HOST_DEVICE inline float fma_f32(float a, float b, float c) {
#if defined(__CUDA_ARCH__)
  return __fmaf_rn(a, b, c);
#else
  return std::fma(a, b, c);
#endif
}

// 2^n for n in the normal range (callers keep n there).
LIME_HOST_DEVICE inline float pow2_f32(int n) { return bits_to_f32(static_cast<uint32_t>(n + 127) << 23); }

// p * 2^n in two steps so that the first product stays normal and exact and only the second rounds: the result is
// round(p * 2^n) even when it is subnormal, and overflows to inf when it should.
LIME_HOST_DEVICE inline float scale_f32(float p, int n) {
  int n1 = n / 2;
  return (p * pow2_f32(n1)) * pow2_f32(n - n1);
}

// e^x within 1 ulp (kernels/cpu/math.h: exp_f32).
LIME_HOST_DEVICE inline float exp_f32(float x) {
  if (x != x) return x + x;                         // NaN
  if (x > 89.0f) return bits_to_f32(0x7f800000u);  // e^89 > FLT_MAX (also +inf)
  if (x < -104.0f) return 0.0f;                    // e^-104 < 2^-150: rounds to 0 (also -inf)
  // x = n*ln2 + r, n = round(x * log2(e)), |r| <= ~ln2/2 (Cody-Waite, two constants, exact first step).
  float nf = (x * k_log2e_f + k_shift_f) - k_shift_f;
  float r = fma_f32(-nf, k_ln2_hi_f, x);
  r = fma_f32(-nf, k_ln2_lo_f, r);
  // e^r by its Taylor polynomial of degree 7 in Horner form (truncation error < 0.07 ulp on |r| <= 0.35).
  float p = k_inv_5040;
  p = fma_f32(p, r, k_inv_720);
  p = fma_f32(p, r, k_inv_120);
  p = fma_f32(p, r, k_inv_24);
  p = fma_f32(p, r, k_inv_6);
  p = fma_f32(p, r, 0.5f);
  p = fma_f32(p, r, 1.0f);
  p = fma_f32(p, r, 1.0f);
  return scale_f32(p, static_cast<int>(nf));
}

// x / (1 + e^-x) (kernels/cpu/math.h: silu_f32).
LIME_HOST_DEVICE inline float silu_f32(float x) {
  // For x = -inf the formula would give -inf / inf = NaN; the limit is -0.
  if (x == -bits_to_f32(0x7f800000u)) return -0.0f;
  return x / (1.0f + exp_f32(-x));
}

}  // namespace lime::cpu::math_impl
