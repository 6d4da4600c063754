// AVX2+FMA+F16C attention, swiglu, rmsnorm, exp/silu: the 16-lane traits (two ymm) for kernels/cpu/ops_body.h
// and the entry points of ops_x86.h. Compiled with -mavx2 -mfma -mf16c; everything but the entry points is in an
// unnamed namespace, so nothing built with these flags can be picked by the linker for other code.
#include <immintrin.h>

#include <cstdint>
#include <cstring>

#include "kernels/cpu/ops_attention.h"
#include "kernels/cpu/ops_body.h"
#include "kernels/cpu/x86/ops_x86.h"

namespace lime::cpu {
namespace {

struct ops_avx2 {
  struct f {
    __m256 lo, hi;  // lanes 0..7, 8..15
  };
  struct i {
    __m256i lo, hi;
  };
  using m = f;  // all-ones / all-zeros lanes (the result of a compare)
  static constexpr int weigh_vectors = 4;  // attention's V accumulators: 8 ymm
  static constexpr int multi_vectors = 6;  // weigh_rows_multi's accumulators: 12 ymm
  static constexpr bool lane_scores = false;  // 16 accumulators of 2 ymm would not fit the 16 ymm

  static __m256i first_n(int n, int base) {  // lane l of 8 is all-ones when base + l < n
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(n - base), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
  }

  static f zero() { return {_mm256_setzero_ps(), _mm256_setzero_ps()}; }
  static f set1(float v) { return {_mm256_set1_ps(v), _mm256_set1_ps(v)}; }
  static f set1_bits(uint32_t u) {
    const __m256 v = _mm256_castsi256_ps(_mm256_set1_epi32(static_cast<int>(u)));
    return {v, v};
  }
  static f load(const float* p) { return {_mm256_loadu_ps(p), _mm256_loadu_ps(p + 8)}; }
  // Lanes n..15 read as 0 and are never touched in memory (1 <= n <= 15).
  static f load_n(const float* p, int n) {
    return {_mm256_maskload_ps(p, first_n(n, 0)), _mm256_maskload_ps(p + 8, first_n(n, 8))};
  }
  static void store(float* p, f v) {
    _mm256_storeu_ps(p, v.lo);
    _mm256_storeu_ps(p + 8, v.hi);
  }
  static void store_n(float* p, f v, int n) {
    _mm256_maskstore_ps(p, first_n(n, 0), v.lo);
    _mm256_maskstore_ps(p + 8, first_n(n, 8), v.hi);
  }
  // fp16 -> fp32 with vcvtph2ps: exact, as fp16_to_fp32 (a signaling NaN comes out quiet, which no result of
  // arithmetic on it can tell apart).
  static f load_h(const uint16_t* p) {
    const __m128i* q = reinterpret_cast<const __m128i*>(p);
    return {_mm256_cvtph_ps(_mm_loadu_si128(q)), _mm256_cvtph_ps(_mm_loadu_si128(q + 1))};
  }
  static f load_h_n(const uint16_t* p, int n) {
    uint16_t buf[16] = {};
    std::memcpy(buf, p, static_cast<size_t>(n) * sizeof(uint16_t));
    return load_h(buf);
  }

  static f fma(f a, f b, f c) { return {_mm256_fmadd_ps(a.lo, b.lo, c.lo), _mm256_fmadd_ps(a.hi, b.hi, c.hi)}; }
  static f fnma(f a, f b, f c) { return {_mm256_fnmadd_ps(a.lo, b.lo, c.lo), _mm256_fnmadd_ps(a.hi, b.hi, c.hi)}; }
  // fma on lanes 0..n-1; the other lanes keep c exactly (the canonical masked tail).
  static f fma_first(f a, f b, f c, int n) {
    const f s = fma(a, b, c);
    return {_mm256_blendv_ps(c.lo, s.lo, _mm256_castsi256_ps(first_n(n, 0))),
            _mm256_blendv_ps(c.hi, s.hi, _mm256_castsi256_ps(first_n(n, 8)))};
  }
  static f add(f a, f b) { return {_mm256_add_ps(a.lo, b.lo), _mm256_add_ps(a.hi, b.hi)}; }
  static f sub(f a, f b) { return {_mm256_sub_ps(a.lo, b.lo), _mm256_sub_ps(a.hi, b.hi)}; }
  static f mul(f a, f b) { return {_mm256_mul_ps(a.lo, b.lo), _mm256_mul_ps(a.hi, b.hi)}; }
  static f div(f a, f b) { return {_mm256_div_ps(a.lo, b.lo), _mm256_div_ps(a.hi, b.hi)}; }
  static f neg(f a) {  // flips the sign bit, as scalar -x does (NaN included)
    const __m256 s = _mm256_castsi256_ps(_mm256_set1_epi32(static_cast<int>(0x80000000u)));
    return {_mm256_xor_ps(a.lo, s), _mm256_xor_ps(a.hi, s)};
  }

  // Ordered, quiet compares (false when either side is NaN), as C++'s <, >, ==.
  static m cmp_lt(f a, f b) { return {_mm256_cmp_ps(a.lo, b.lo, _CMP_LT_OQ), _mm256_cmp_ps(a.hi, b.hi, _CMP_LT_OQ)}; }
  static m cmp_gt(f a, f b) { return {_mm256_cmp_ps(a.lo, b.lo, _CMP_GT_OQ), _mm256_cmp_ps(a.hi, b.hi, _CMP_GT_OQ)}; }
  static m cmp_eq(f a, f b) { return {_mm256_cmp_ps(a.lo, b.lo, _CMP_EQ_OQ), _mm256_cmp_ps(a.hi, b.hi, _CMP_EQ_OQ)}; }
  static m is_nan(f a) { return {_mm256_cmp_ps(a.lo, a.lo, _CMP_UNORD_Q), _mm256_cmp_ps(a.hi, a.hi, _CMP_UNORD_Q)}; }
  static f select(m k, f t, f e) { return {_mm256_blendv_ps(e.lo, t.lo, k.lo), _mm256_blendv_ps(e.hi, t.hi, k.hi)}; }

  static i to_int(f a) { return {_mm256_cvttps_epi32(a.lo), _mm256_cvttps_epi32(a.hi)}; }
  static i set1_i(int32_t v) { return {_mm256_set1_epi32(v), _mm256_set1_epi32(v)}; }
  static i add_i(i a, i b) { return {_mm256_add_epi32(a.lo, b.lo), _mm256_add_epi32(a.hi, b.hi)}; }
  static i sub_i(i a, i b) { return {_mm256_sub_epi32(a.lo, b.lo), _mm256_sub_epi32(a.hi, b.hi)}; }
  template <int S>
  static i srl_i(i a) { return {_mm256_srli_epi32(a.lo, S), _mm256_srli_epi32(a.hi, S)}; }
  template <int S>
  static i sra_i(i a) { return {_mm256_srai_epi32(a.lo, S), _mm256_srai_epi32(a.hi, S)}; }
  template <int S>
  static i sll_i(i a) { return {_mm256_slli_epi32(a.lo, S), _mm256_slli_epi32(a.hi, S)}; }
  static f as_f(i a) { return {_mm256_castsi256_ps(a.lo), _mm256_castsi256_ps(a.hi)}; }

  // Canonical fold: lanes l += l+8, then +4, +2, +1.
  static float fold(f a) {
    const __m256 s8 = _mm256_add_ps(a.lo, a.hi);
    const __m128 s4 = _mm_add_ps(_mm256_castps256_ps128(s8), _mm256_extractf128_ps(s8, 1));
    const __m128 s2 = _mm_add_ps(s4, _mm_movehl_ps(s4, s4));
    const __m128 s1 = _mm_add_ss(s2, _mm_shuffle_ps(s2, s2, 1));
    return _mm_cvtss_f32(s1);
  }
  // fold() of four vectors at once, out[j] = fold(aj): the same additions on the same pairs of lanes, with the
  // 4-, 2- and 1-wide steps of two or four vectors sharing one instruction.
  static void fold4(f a0, f a1, f a2, f a3, float* out) {
    const __m256 t0 = _mm256_add_ps(a0.lo, a0.hi), t1 = _mm256_add_ps(a1.lo, a1.hi);  // l += l+8
    const __m256 t2 = _mm256_add_ps(a2.lo, a2.hi), t3 = _mm256_add_ps(a3.lo, a3.hi);
    fold4_8(t0, t1, t2, t3, out);
  }
  // From four 8-lane partial folds: [t0 | t1] halves l += l+4, then pairs l += l+2, then l += l+1.
  static void fold4_8(__m256 t0, __m256 t1, __m256 t2, __m256 t3, float* out) {
    const __m256 u01 = _mm256_add_ps(_mm256_permute2f128_ps(t0, t1, 0x20), _mm256_permute2f128_ps(t0, t1, 0x31));
    const __m256 u23 = _mm256_add_ps(_mm256_permute2f128_ps(t2, t3, 0x20), _mm256_permute2f128_ps(t2, t3, 0x31));
    // u01 = [t0's 4 | t1's 4], u23 = [t2's 4 | t3's 4]; per 128-bit half: [x0 x1 y0 y1] + [x2 x3 y2 y3].
    const __m256 v = _mm256_add_ps(_mm256_shuffle_ps(u01, u23, _MM_SHUFFLE(1, 0, 1, 0)),
                                   _mm256_shuffle_ps(u01, u23, _MM_SHUFFLE(3, 2, 3, 2)));
    // v = [t0 0,1 | t2 0,1 || t1 0,1 | t3 0,1]; lane 0 + lane 1 of each pair.
    const __m256 w = _mm256_add_ps(_mm256_shuffle_ps(v, v, _MM_SHUFFLE(2, 0, 2, 0)),
                                   _mm256_shuffle_ps(v, v, _MM_SHUFFLE(3, 1, 3, 1)));
    // w = [r0 r2 r0 r2 || r1 r3 r1 r3] -> [r0 r1 r2 r3]
    _mm_storeu_ps(out, _mm_unpacklo_ps(_mm256_castps256_ps128(w), _mm256_extractf128_ps(w, 1)));
  }
  static float fma_s(float a, float b, float c) {
    return _mm_cvtss_f32(_mm_fmadd_ss(_mm_set_ss(a), _mm_set_ss(b), _mm_set_ss(c)));
  }
  static float sqrt_s(float a) { return _mm_cvtss_f32(_mm_sqrt_ss(_mm_set_ss(a))); }
};

}  // namespace

kstatus attention_avx2(const attention_args& a) {
  float saved[ops::k_saved_floats];
  return ops::attention<ops_avx2>(a, saved, ops::k_saved_floats);
}
void swiglu_avx2(const float* gate, const float* up, float* out, int64_t n) {
  ops::swiglu<ops_avx2>(gate, up, out, n);
}
void rmsnorm_avx2(const float* x, const float* w, float* y, int64_t n, float eps) {
  ops::rmsnorm<ops_avx2>(x, w, y, n, eps);
}
void exp_f32_avx2(const float* x, float* y, int64_t n) { ops::exp_array<ops_avx2>(x, y, n); }
void silu_f32_avx2(const float* x, float* y, int64_t n) { ops::silu_array<ops_avx2>(x, y, n); }

}  // namespace lime::cpu
