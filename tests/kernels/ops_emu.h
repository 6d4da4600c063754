// A scalar stand-in for the 16-lane traits of kernels/cpu/ops_body.h, so the shared SIMD body of attention,
// swiglu, rmsnorm and the vector exp/silu (lane order, tails, chunk bookkeeping) is checked on any CPU, including
// the AVX-512 one this machine may lack. Each op is the plain per-lane definition of its intrinsic.
#pragma once
#include <cmath>
#include <cstdint>
#include <cstring>

#include "kernels/cpu/quants.h"

namespace lime::cpu::test {

// WeighVectors: the attention V block of the ISA being imitated (AVX2 4, AVX-512 8); LaneScores: whether it takes
// the lane-major attention scores (AVX-512). The decode weighing of a few heads at once gets twice the V block
// (AVX-512 16, AVX2 and NEON 6), so the emulation of both reaches groups of 2-4 heads.
template <int WeighVectors, bool LaneScores>
struct ops_emu {
  static constexpr int weigh_vectors = WeighVectors;
  static constexpr int multi_vectors = 2 * WeighVectors;
  static constexpr bool lane_scores = LaneScores;
  struct f {
    float v[16];
  };
  struct i {
    int32_t v[16];
  };
  struct m {
    bool v[16];
  };

  template <class Op>
  static f map(Op op) {
    f r;
    for (int l = 0; l < 16; ++l) r.v[l] = op(l);
    return r;
  }
  template <class Op>
  static i map_i(Op op) {
    i r;
    for (int l = 0; l < 16; ++l) r.v[l] = op(l);
    return r;
  }
  template <class Op>
  static m map_m(Op op) {
    m r;
    for (int l = 0; l < 16; ++l) r.v[l] = op(l);
    return r;
  }
  static float from_bits(uint32_t u) {
    float x;
    std::memcpy(&x, &u, sizeof x);
    return x;
  }
  static uint32_t to_bits(float x) {
    uint32_t u;
    std::memcpy(&u, &x, sizeof u);
    return u;
  }

  static f zero() { return map([](int) { return 0.0f; }); }
  static f set1(float s) { return map([s](int) { return s; }); }
  static f set1_bits(uint32_t u) { return set1(from_bits(u)); }
  static f load(const float* p) { return map([p](int l) { return p[l]; }); }
  static f load_n(const float* p, int n) { return map([=](int l) { return l < n ? p[l] : 0.0f; }); }
  static void store(float* p, f v) { std::memcpy(p, v.v, sizeof v.v); }
  static void store_n(float* p, f v, int n) { std::memcpy(p, v.v, static_cast<size_t>(n) * sizeof(float)); }
  static f load_h(const uint16_t* p) { return map([p](int l) { return fp16_to_fp32(p[l]); }); }
  static f load_h_n(const uint16_t* p, int n) { return map([=](int l) { return l < n ? fp16_to_fp32(p[l]) : 0.0f; }); }

  static f fma(f a, f b, f c) { return map([&](int l) { return std::fma(a.v[l], b.v[l], c.v[l]); }); }
  static f fnma(f a, f b, f c) { return map([&](int l) { return std::fma(-a.v[l], b.v[l], c.v[l]); }); }
  static f fma_first(f a, f b, f c, int n) {
    return map([&](int l) { return l < n ? std::fma(a.v[l], b.v[l], c.v[l]) : c.v[l]; });
  }
  static f add(f a, f b) { return map([&](int l) { return a.v[l] + b.v[l]; }); }
  static f sub(f a, f b) { return map([&](int l) { return a.v[l] - b.v[l]; }); }
  static f mul(f a, f b) { return map([&](int l) { return a.v[l] * b.v[l]; }); }
  static f div(f a, f b) { return map([&](int l) { return a.v[l] / b.v[l]; }); }
  static f neg(f a) { return map([&](int l) { return from_bits(to_bits(a.v[l]) ^ 0x80000000u); }); }

  static m cmp_lt(f a, f b) { return map_m([&](int l) { return a.v[l] < b.v[l]; }); }
  static m cmp_gt(f a, f b) { return map_m([&](int l) { return a.v[l] > b.v[l]; }); }
  static m cmp_eq(f a, f b) { return map_m([&](int l) { return a.v[l] == b.v[l]; }); }
  static m is_nan(f a) { return map_m([&](int l) { return a.v[l] != a.v[l]; }); }
  static f select(m k, f t, f e) { return map([&](int l) { return k.v[l] ? t.v[l] : e.v[l]; }); }

  // cvttps2dq: truncation; NaN and out-of-range give the "integer indefinite" INT32_MIN.
  static i to_int(f a) {
    return map_i([&](int l) {
      const float x = a.v[l];
      return (x >= -2147483648.0f && x < 2147483648.0f) ? static_cast<int32_t>(x) : INT32_MIN;
    });
  }
  static i set1_i(int32_t s) { return map_i([s](int) { return s; }); }
  static uint32_t u(int32_t x) { return static_cast<uint32_t>(x); }
  static int32_t s(uint32_t x) { return static_cast<int32_t>(x); }
  static i add_i(i a, i b) { return map_i([&](int l) { return s(u(a.v[l]) + u(b.v[l])); }); }
  static i sub_i(i a, i b) { return map_i([&](int l) { return s(u(a.v[l]) - u(b.v[l])); }); }
  template <int S>
  static i srl_i(i a) { return map_i([&](int l) { return s(u(a.v[l]) >> S); }); }
  template <int S>
  static i sra_i(i a) { return map_i([&](int l) { return a.v[l] >> S; }); }
  template <int S>
  static i sll_i(i a) { return map_i([&](int l) { return s(u(a.v[l]) << S); }); }
  static f as_f(i a) { return map([&](int l) { return from_bits(u(a.v[l])); }); }

  static float fold(f a) {
    for (int w = 8; w >= 1; w /= 2) {
      for (int l = 0; l < w; ++l) a.v[l] = a.v[l] + a.v[l + w];
    }
    return a.v[0];
  }
  static void fold4(f a0, f a1, f a2, f a3, float* out) {
    out[0] = fold(a0);
    out[1] = fold(a1);
    out[2] = fold(a2);
    out[3] = fold(a3);
  }
  static void transpose8(const float* const* s, float* const* d) {  // d[j][i] = s[i][j]
    for (int i = 0; i < 8; ++i)
      for (int j = 0; j < 8; ++j) d[j][i] = s[i][j];
  }
  static float fma_s(float a, float b, float c) { return std::fma(a, b, c); }
  static float sqrt_s(float a) { return std::sqrt(a); }
};

}  // namespace lime::cpu::test
