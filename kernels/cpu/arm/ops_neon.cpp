// NEON attention, swiglu, rmsnorm, exp/silu: the 16-lane traits (four float32x4 registers, register j = lanes
// 4j..4j+3) for kernels/cpu/ops_body.h and ops_attention.h, and the entry points of ops_neon.h. Every trait op is
// the per-lane IEEE operation of its x86 twin (fused fma, IEEE division and square root, ordered quiet compares),
// so the shared bodies give the reference's bits here as on x86.
#include <arm_neon.h>

#include <cstdint>
#include <cstring>

#include "kernels/cpu/arm/ops_neon.h"
#include "kernels/cpu/ops_attention.h"
#include "kernels/cpu/ops_body.h"

namespace lime::cpu {
namespace {

struct ops_neon {
  struct f {
    float32x4_t v[4];
  };
  struct i {
    int32x4_t v[4];
  };
  struct m {
    uint32x4_t v[4];  // all-ones / all-zeros lanes (the result of a compare)
  };
  static constexpr int weigh_vectors = 4;      // attention's V accumulators: 16 of the 32 q registers
  static constexpr int multi_vectors = 6;  // weigh_rows_multi's accumulators: 24 of the 32 q registers
  static constexpr bool lane_scores = false;  // 16 accumulators of 4 registers would not fit

  template <class Op>
  static f map(Op op) {
    return {{op(0), op(1), op(2), op(3)}};
  }
  template <class Op>
  static i map_i(Op op) {
    return {{op(0), op(1), op(2), op(3)}};
  }
  template <class Op>
  static m map_m(Op op) {
    return {{op(0), op(1), op(2), op(3)}};
  }
  static m first_n(int n) {  // lane l all-ones when l < n
    const int32_t iota[4] = {0, 1, 2, 3};
    const int32x4_t base = vld1q_s32(iota);
    return map_m([&](int j) { return vcltq_s32(vaddq_s32(base, vdupq_n_s32(4 * j)), vdupq_n_s32(n)); });
  }

  static f zero() { return set1(0.0f); }
  static f set1(float s) { return map([s](int) { return vdupq_n_f32(s); }); }
  static f set1_bits(uint32_t u) { return map([u](int) { return vreinterpretq_f32_u32(vdupq_n_u32(u)); }); }
  static f load(const float* p) { return map([p](int j) { return vld1q_f32(p + 4 * j); }); }
  // Lanes n..15 read as 0; memory past p[n - 1] is never touched (1 <= n <= 15).
  static f load_n(const float* p, int n) {
    float buf[16] = {};
    std::memcpy(buf, p, static_cast<size_t>(n) * sizeof(float));
    return load(buf);
  }
  static void store(float* p, f v) {
    for (int j = 0; j < 4; ++j) vst1q_f32(p + 4 * j, v.v[j]);
  }
  static void store_n(float* p, f v, int n) {
    float buf[16];
    store(buf, v);
    std::memcpy(p, buf, static_cast<size_t>(n) * sizeof(float));
  }
  // fp16 -> fp32 with fcvtl: exact, as fp16_to_fp32 (a signaling NaN comes out quiet, which no result of
  // arithmetic on it can tell apart).
  static f load_h(const uint16_t* p) {
    return map([p](int j) { return vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16(p + 4 * j))); });
  }
  static f load_h_n(const uint16_t* p, int n) {
    uint16_t buf[16] = {};
    std::memcpy(buf, p, static_cast<size_t>(n) * sizeof(uint16_t));
    return load_h(buf);
  }

  static f fma(f a, f b, f c) { return map([&](int j) { return vfmaq_f32(c.v[j], a.v[j], b.v[j]); }); }
  static f fnma(f a, f b, f c) { return map([&](int j) { return vfmsq_f32(c.v[j], a.v[j], b.v[j]); }); }
  // fma on lanes 0..n-1; the other lanes keep c exactly (the canonical masked tail).
  static f fma_first(f a, f b, f c, int n) { return select(first_n(n), fma(a, b, c), c); }
  static f add(f a, f b) { return map([&](int j) { return vaddq_f32(a.v[j], b.v[j]); }); }
  static f sub(f a, f b) { return map([&](int j) { return vsubq_f32(a.v[j], b.v[j]); }); }
  static f mul(f a, f b) { return map([&](int j) { return vmulq_f32(a.v[j], b.v[j]); }); }
  static f div(f a, f b) { return map([&](int j) { return vdivq_f32(a.v[j], b.v[j]); }); }
  static f neg(f a) { return map([&](int j) { return vnegq_f32(a.v[j]); }); }  // flips the sign bit, NaN included

  // Ordered, quiet compares (false when either side is NaN), as C++'s <, >, ==.
  static m cmp_lt(f a, f b) { return map_m([&](int j) { return vcltq_f32(a.v[j], b.v[j]); }); }
  static m cmp_gt(f a, f b) { return map_m([&](int j) { return vcgtq_f32(a.v[j], b.v[j]); }); }
  static m cmp_eq(f a, f b) { return map_m([&](int j) { return vceqq_f32(a.v[j], b.v[j]); }); }
  static m is_nan(f a) { return map_m([&](int j) { return vmvnq_u32(vceqq_f32(a.v[j], a.v[j])); }); }
  static f select(m k, f t, f e) { return map([&](int j) { return vbslq_f32(k.v[j], t.v[j], e.v[j]); }); }

  // Truncation; NaN and out-of-range lanes saturate where x86 gives INT32_MIN: the bodies replace those lanes.
  static i to_int(f a) { return map_i([&](int j) { return vcvtq_s32_f32(a.v[j]); }); }
  static i set1_i(int32_t s) { return map_i([s](int) { return vdupq_n_s32(s); }); }
  static i add_i(i a, i b) { return map_i([&](int j) { return vaddq_s32(a.v[j], b.v[j]); }); }
  static i sub_i(i a, i b) { return map_i([&](int j) { return vsubq_s32(a.v[j], b.v[j]); }); }
  template <int S>
  static i srl_i(i a) {
    return map_i([&](int j) { return vreinterpretq_s32_u32(vshrq_n_u32(vreinterpretq_u32_s32(a.v[j]), S)); });
  }
  template <int S>
  static i sra_i(i a) { return map_i([&](int j) { return vshrq_n_s32(a.v[j], S); }); }
  template <int S>
  static i sll_i(i a) { return map_i([&](int j) { return vshlq_n_s32(a.v[j], S); }); }
  static f as_f(i a) { return map([&](int j) { return vreinterpretq_f32_s32(a.v[j]); }); }

  // Canonical fold: lanes l += l+8 (registers 0+2, 1+3), then +4 (0+1), +2, +1.
  static float fold(f a) {
    const float32x4_t t = vaddq_f32(vaddq_f32(a.v[0], a.v[2]), vaddq_f32(a.v[1], a.v[3]));
    const float32x2_t u = vadd_f32(vget_low_f32(t), vget_high_f32(t));
    return vget_lane_f32(u, 0) + vget_lane_f32(u, 1);
  }
  // fold() of four vectors, out[j] = fold(aj): the 8- and 4-wide steps per vector, then the four 4-lane partial
  // sums transposed so that the 2- and 1-wide steps of all four are two vector adds.
  static void fold4(f a0, f a1, f a2, f a3, float* out) {
    auto half = [](const f& a) { return vaddq_f32(vaddq_f32(a.v[0], a.v[2]), vaddq_f32(a.v[1], a.v[3])); };
    const float32x4_t t0 = half(a0), t1 = half(a1), t2 = half(a2), t3 = half(a3);
    // Columns c_l = [t0[l], t1[l], t2[l], t3[l]].
    const float32x4x2_t p01 = vtrnq_f32(t0, t1), p23 = vtrnq_f32(t2, t3);
    const float32x4_t c0 = vcombine_f32(vget_low_f32(p01.val[0]), vget_low_f32(p23.val[0]));
    const float32x4_t c1 = vcombine_f32(vget_low_f32(p01.val[1]), vget_low_f32(p23.val[1]));
    const float32x4_t c2 = vcombine_f32(vget_high_f32(p01.val[0]), vget_high_f32(p23.val[0]));
    const float32x4_t c3 = vcombine_f32(vget_high_f32(p01.val[1]), vget_high_f32(p23.val[1]));
    vst1q_f32(out, vaddq_f32(vaddq_f32(c0, c2), vaddq_f32(c1, c3)));
  }
  static float fma_s(float a, float b, float c) {
    return vgetq_lane_f32(vfmaq_f32(vdupq_n_f32(c), vdupq_n_f32(a), vdupq_n_f32(b)), 0);
  }
  static float sqrt_s(float a) { return vgetq_lane_f32(vsqrtq_f32(vdupq_n_f32(a)), 0); }
};

}  // namespace

kstatus attention_neon(const attention_args& a) {
  float saved[ops::k_saved_floats];
  return ops::attention<ops_neon>(a, saved, ops::k_saved_floats);
}
void swiglu_neon(const float* gate, const float* up, float* out, int64_t n) { ops::swiglu<ops_neon>(gate, up, out, n); }
void rmsnorm_neon(const float* x, const float* w, float* y, int64_t n, float eps) {
  ops::rmsnorm<ops_neon>(x, w, y, n, eps);
}
void exp_f32_neon(const float* x, float* y, int64_t n) { ops::exp_array<ops_neon>(x, y, n); }
void silu_f32_neon(const float* x, float* y, int64_t n) { ops::silu_array<ops_neon>(x, y, n); }

}  // namespace lime::cpu
