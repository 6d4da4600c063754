// AVX-512 (F/BW/VL/DQ) attention, swiglu, rmsnorm, exp/silu: the 16-lane traits (one zmm, opmask tails) for
// kernels/cpu/ops_body.h and the entry points of ops_x86.h. Everything but the entry points is in an unnamed
// namespace, so nothing built with AVX-512 flags can be picked by the linker for other code.
// GCC 12 warns about the deliberately undefined pass-through operands (_mm*_undefined_*) inside its own
// AVX-512 intrinsics once they are inlined here; those values never reach a result.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#include <immintrin.h>

#include <cstdint>

#include "kernels/cpu/ops_attention.h"
#include "kernels/cpu/ops_body.h"
#include "kernels/cpu/x86/ops_x86.h"
#include "kernels/cpu/x86/transpose8_ymm.h"

namespace lime::cpu {
namespace {

struct ops_avx512 {
  using f = __m512;
  using i = __m512i;
  using m = __mmask16;
  static constexpr int weigh_vectors = 8;  // attention's V accumulators: 8 zmm (head_dim 128 in one block)
  static constexpr int multi_vectors = 16;  // weigh_rows_multi's accumulators: 16 zmm (4 heads of 64)
  static constexpr bool lane_scores = true;  // 16 accumulators + 2 fit the 32 zmm

  static __mmask16 first_n(int n) { return static_cast<__mmask16>((1u << n) - 1u); }  // lanes 0..n-1

  static f zero() { return _mm512_setzero_ps(); }
  static f set1(float v) { return _mm512_set1_ps(v); }
  static f set1_bits(uint32_t u) { return _mm512_castsi512_ps(_mm512_set1_epi32(static_cast<int>(u))); }
  static f load(const float* p) { return _mm512_loadu_ps(p); }
  // Lanes n..15 read as 0 and are never touched in memory (1 <= n <= 15).
  static f load_n(const float* p, int n) { return _mm512_maskz_loadu_ps(first_n(n), p); }
  static void store(float* p, f v) { _mm512_storeu_ps(p, v); }
  static void store_n(float* p, f v, int n) { _mm512_mask_storeu_ps(p, first_n(n), v); }
  // fp16 -> fp32 with vcvtph2ps: exact, as fp16_to_fp32 (a signaling NaN comes out quiet, which no result of
  // arithmetic on it can tell apart).
  static f load_h(const uint16_t* p) { return _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p))); }
  static f load_h_n(const uint16_t* p, int n) { return _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(first_n(n), p)); }

  static f fma(f a, f b, f c) { return _mm512_fmadd_ps(a, b, c); }
  static f fnma(f a, f b, f c) { return _mm512_fnmadd_ps(a, b, c); }
  // fma on lanes 0..n-1; the other lanes keep c exactly (the canonical masked tail).
  static f fma_first(f a, f b, f c, int n) { return _mm512_mask3_fmadd_ps(a, b, c, first_n(n)); }
  static f add(f a, f b) { return _mm512_add_ps(a, b); }
  static f sub(f a, f b) { return _mm512_sub_ps(a, b); }
  static f mul(f a, f b) { return _mm512_mul_ps(a, b); }
  static f div(f a, f b) { return _mm512_div_ps(a, b); }
  static f neg(f a) {  // flips the sign bit, as scalar -x does (NaN included)
    return _mm512_castsi512_ps(
        _mm512_xor_si512(_mm512_castps_si512(a), _mm512_set1_epi32(static_cast<int>(0x80000000u))));
  }

  // Ordered, quiet compares (false when either side is NaN), as C++'s <, >, ==.
  static m cmp_lt(f a, f b) { return _mm512_cmp_ps_mask(a, b, _CMP_LT_OQ); }
  static m cmp_gt(f a, f b) { return _mm512_cmp_ps_mask(a, b, _CMP_GT_OQ); }
  static m cmp_eq(f a, f b) { return _mm512_cmp_ps_mask(a, b, _CMP_EQ_OQ); }
  static m is_nan(f a) { return _mm512_cmp_ps_mask(a, a, _CMP_UNORD_Q); }
  // mask_blend(k, x, y) takes y where k is set.
  static f select(m k, f t, f e) { return _mm512_mask_blend_ps(k, e, t); }

  static i to_int(f a) { return _mm512_cvttps_epi32(a); }
  static i set1_i(int32_t v) { return _mm512_set1_epi32(v); }
  static i add_i(i a, i b) { return _mm512_add_epi32(a, b); }
  static i sub_i(i a, i b) { return _mm512_sub_epi32(a, b); }
  template <int S>
  static i srl_i(i a) { return _mm512_srli_epi32(a, S); }
  template <int S>
  static i sra_i(i a) { return _mm512_srai_epi32(a, S); }
  template <int S>
  static i sll_i(i a) { return _mm512_slli_epi32(a, S); }
  static f as_f(i a) { return _mm512_castsi512_ps(a); }

  // Canonical fold: high 256 bits onto the low, then 128, 64, 32.
  static float fold(f a) {
    const __m256 s8 = _mm256_add_ps(_mm512_castps512_ps256(a), _mm512_extractf32x8_ps(a, 1));
    const __m128 s4 = _mm_add_ps(_mm256_castps256_ps128(s8), _mm256_extractf128_ps(s8, 1));
    const __m128 s2 = _mm_add_ps(s4, _mm_movehl_ps(s4, s4));
    const __m128 s1 = _mm_add_ss(s2, _mm_shuffle_ps(s2, s2, 1));
    return _mm_cvtss_f32(s1);
  }
  // fold() of four vectors at once, out[j] = fold(aj): the same additions on the same pairs of lanes, with the
  // 4-, 2- and 1-wide steps of two or four vectors sharing one instruction.
  static void fold4(f a0, f a1, f a2, f a3, float* out) {
    auto half = [](f a) { return _mm256_add_ps(_mm512_castps512_ps256(a), _mm512_extractf32x8_ps(a, 1)); };
    const __m256 t0 = half(a0), t1 = half(a1), t2 = half(a2), t3 = half(a3);  // l += l+8
    // [t0 | t1] halves: l += l+4, then per 128-bit half [x0 x1 y0 y1] + [x2 x3 y2 y3], then l += l+1.
    const __m256 u01 = _mm256_add_ps(_mm256_permute2f128_ps(t0, t1, 0x20), _mm256_permute2f128_ps(t0, t1, 0x31));
    const __m256 u23 = _mm256_add_ps(_mm256_permute2f128_ps(t2, t3, 0x20), _mm256_permute2f128_ps(t2, t3, 0x31));
    const __m256 v = _mm256_add_ps(_mm256_shuffle_ps(u01, u23, _MM_SHUFFLE(1, 0, 1, 0)),
                                   _mm256_shuffle_ps(u01, u23, _MM_SHUFFLE(3, 2, 3, 2)));
    const __m256 w = _mm256_add_ps(_mm256_shuffle_ps(v, v, _MM_SHUFFLE(2, 0, 2, 0)),
                                   _mm256_shuffle_ps(v, v, _MM_SHUFFLE(3, 1, 3, 1)));
    _mm_storeu_ps(out, _mm_unpacklo_ps(_mm256_castps256_ps128(w), _mm256_extractf128_ps(w, 1)));
  }
  static void transpose8(const float* const* s, float* const* d) { transpose8_ymm(s, d); }
  static float fma_s(float a, float b, float c) {
    return _mm_cvtss_f32(_mm_fmadd_ss(_mm_set_ss(a), _mm_set_ss(b), _mm_set_ss(c)));
  }
  static float sqrt_s(float a) { return _mm_cvtss_f32(_mm_sqrt_ss(_mm_set_ss(a))); }
};

}  // namespace

kstatus attention_avx512(const attention_args& a) {
  float saved[ops::k_saved_floats];
  return ops::attention<ops_avx512>(a, saved, ops::k_saved_floats);
}
void swiglu_avx512(const float* gate, const float* up, float* out, int64_t n) {
  ops::swiglu<ops_avx512>(gate, up, out, n);
}
void rmsnorm_avx512(const float* x, const float* w, float* y, int64_t n, float eps) {
  ops::rmsnorm<ops_avx512>(x, w, y, n, eps);
}
void exp_f32_avx512(const float* x, float* y, int64_t n) { ops::exp_array<ops_avx512>(x, y, n); }
void silu_f32_avx512(const float* x, float* y, int64_t n) { ops::silu_array<ops_avx512>(x, y, n); }

}  // namespace lime::cpu
