// 16-lane fp32 vector traits for AVX2+FMA+F16C (two ymm: lanes 0-7, 8-15), the V of matmul_tile.h.
// Include only from *_avx2.cpp: everything is in an unnamed namespace, so each such file owns a private copy
// compiled with its flags and nothing here can be merged into code that runs on CPUs without AVX2.
#pragma once
#include <immintrin.h>

#include <cstdint>
#include <cstring>

#include "kernels/cpu/x86/transpose8_ymm.h"

namespace lime::cpu {
namespace {

struct vec16_avx2 {
  struct f {
    __m256 lo;  // lanes 0..7
    __m256 hi;  // lanes 8..15
  };

  // Tile shapes (rows x columns of (row, col) accumulators, 2 ymm each; 16 ymm registers in all).
  static constexpr int max_cols = 3;
  static constexpr int rows_for(int cols) { return cols == 1 ? 4 : 2; }

  // The part tile (matmul_tile.h, float weights in batches): lanes 0-7 and 8-15 are independent accumulators,
  // so they can run as two passes of 8-lane (ymm) accumulators over a K chunk. With one ymm per (row, col),
  // 3 rows x 4 columns fit: 12 accumulators, 3 weight vectors, 1 activation vector.
  using p = __m256;
  static constexpr int parts = 2, part_rows = 3, part_cols = 4;
  static p part(const f& a, int j) { return j == 0 ? a.lo : a.hi; }
  static p p_zero() { return _mm256_setzero_ps(); }
  static p p_fma(p a, p b, p c) { return _mm256_fmadd_ps(a, b, c); }
  static p p_load(const float* q) { return _mm256_loadu_ps(q); }
  static void p_store(float* q, p a) { _mm256_storeu_ps(q, a); }
  static p p_add(p a, p b) { return _mm256_add_ps(a, b); }
  static p p_bcast(const float* q) { return _mm256_broadcast_ss(q); }
  // d[j][i] = s[i][j] for i, j < 8: an 8 x 8 transpose (the lane path's packing, matmul_lanes.h).
  static void p_transpose8(const float* const* s, float* const* d) { transpose8_ymm(s, d); }

  // The lane path (matmul_lanes.h): register tiles of 6 weight rows x 16 activation columns, the 16 columns as
  // two ymm (12 accumulators), one panel of 16 columns at a time.
  static constexpr bool has_lanes = true;
  static constexpr int lane_rows = 6, lane_vecs = 2, lane_panels = 1;
  using c = __m256;
  static c c_zero() { return _mm256_setzero_ps(); }
  static c c_fma(c a, c b, c acc) { return _mm256_fmadd_ps(a, b, acc); }
  static c c_load(const float* q) { return _mm256_loadu_ps(q); }
  static void c_store(float* q, c a) { _mm256_storeu_ps(q, a); }
  static c c_add(c a, c b) { return _mm256_add_ps(a, b); }
  static c c_bcast(const float* q) { return _mm256_broadcast_ss(q); }

  static f zero() { return {_mm256_setzero_ps(), _mm256_setzero_ps()}; }
  static f set1(float v) { return {_mm256_set1_ps(v), _mm256_set1_ps(v)}; }
  static f load_f32(const void* p) {
    const float* q = static_cast<const float*>(p);
    return {_mm256_loadu_ps(q), _mm256_loadu_ps(q + 8)};
  }
  static void store_f32(float* q, f a) {
    _mm256_storeu_ps(q, a.lo);
    _mm256_storeu_ps(q + 8, a.hi);
  }
  static f load_f16(const void* p) {
    const __m128i* q = static_cast<const __m128i*>(p);
    return {_mm256_cvtph_ps(_mm_loadu_si128(q)), _mm256_cvtph_ps(_mm_loadu_si128(q + 1))};
  }
  // bf16 -> fp32 is the 16 bits placed on top of a zero low half (exact, as bf16_to_fp32).
  static f load_bf16(const void* p) {
    const __m128i* q = static_cast<const __m128i*>(p);
    const __m256i a = _mm256_slli_epi32(_mm256_cvtepu16_epi32(_mm_loadu_si128(q)), 16);
    const __m256i b = _mm256_slli_epi32(_mm256_cvtepu16_epi32(_mm_loadu_si128(q + 1)), 16);
    return {_mm256_castsi256_ps(a), _mm256_castsi256_ps(b)};
  }

  static f fma(f a, f b, f c) { return {_mm256_fmadd_ps(a.lo, b.lo, c.lo), _mm256_fmadd_ps(a.hi, b.hi, c.hi)}; }
  // fma on lanes 0..n-1 (1 <= n <= 15); the other lanes keep c exactly (the canonical masked tail).
  static f fma_first(f a, f b, f c, int n) {
    const __m256i nn = _mm256_set1_epi32(n);
    const __m256i m_lo = _mm256_cmpgt_epi32(nn, _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
    const __m256i m_hi = _mm256_cmpgt_epi32(nn, _mm256_setr_epi32(8, 9, 10, 11, 12, 13, 14, 15));
    const f s = fma(a, b, c);
    return {_mm256_blendv_ps(c.lo, s.lo, _mm256_castsi256_ps(m_lo)),
            _mm256_blendv_ps(c.hi, s.hi, _mm256_castsi256_ps(m_hi))};
  }
  static f mul(f a, f b) { return {_mm256_mul_ps(a.lo, b.lo), _mm256_mul_ps(a.hi, b.hi)}; }
  static f add(f a, f b) { return {_mm256_add_ps(a.lo, b.lo), _mm256_add_ps(a.hi, b.hi)}; }
  static f sub(f a, f b) { return {_mm256_sub_ps(a.lo, b.lo), _mm256_sub_ps(a.hi, b.hi)}; }

  // Integer sources, converted exactly: 16 int8; low / high nibbles of 16 bytes; 5-bit values whose bit 4 for
  // element i is bit i of bits16.
  static f i8(const void* p) {
    const uint8_t* q = static_cast<const uint8_t*>(p);
    const __m256i a = _mm256_cvtepi8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(q)));
    const __m256i b = _mm256_cvtepi8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(q + 8)));
    return {_mm256_cvtepi32_ps(a), _mm256_cvtepi32_ps(b)};
  }
  static void bytes32(const void* p, __m256i* a, __m256i* b) {
    const uint8_t* q = static_cast<const uint8_t*>(p);
    *a = _mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(q)));
    *b = _mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(q + 8)));
  }
  static f u4_lo(const void* p) {
    __m256i a, b;
    bytes32(p, &a, &b);
    const __m256i m = _mm256_set1_epi32(15);
    return {_mm256_cvtepi32_ps(_mm256_and_si256(a, m)), _mm256_cvtepi32_ps(_mm256_and_si256(b, m))};
  }
  static f u4_hi(const void* p) {
    __m256i a, b;
    bytes32(p, &a, &b);
    return {_mm256_cvtepi32_ps(_mm256_srli_epi32(a, 4)), _mm256_cvtepi32_ps(_mm256_srli_epi32(b, 4))};
  }
  // Bit i of bits16 moved to bit 4 of lane i: (bits16 << 4) >> i, masked to 16.
  static void high_bits(uint32_t bits16, __m256i* a, __m256i* b) {
    const __m256i v = _mm256_set1_epi32(static_cast<int>(bits16 << 4));
    const __m256i m = _mm256_set1_epi32(16);
    *a = _mm256_and_si256(_mm256_srlv_epi32(v, _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7)), m);
    *b = _mm256_and_si256(_mm256_srlv_epi32(v, _mm256_setr_epi32(8, 9, 10, 11, 12, 13, 14, 15)), m);
  }
  static f u5_lo(const void* p, uint32_t bits16) {
    __m256i a, b, ha, hb;
    bytes32(p, &a, &b);
    high_bits(bits16, &ha, &hb);
    const __m256i m = _mm256_set1_epi32(15);
    return {_mm256_cvtepi32_ps(_mm256_or_si256(_mm256_and_si256(a, m), ha)),
            _mm256_cvtepi32_ps(_mm256_or_si256(_mm256_and_si256(b, m), hb))};
  }
  static f u5_hi(const void* p, uint32_t bits16) {
    __m256i a, b, ha, hb;
    bytes32(p, &a, &b);
    high_bits(bits16, &ha, &hb);
    return {_mm256_cvtepi32_ps(_mm256_or_si256(_mm256_srli_epi32(a, 4), ha)),
            _mm256_cvtepi32_ps(_mm256_or_si256(_mm256_srli_epi32(b, 4), hb))};
  }
  static float half_to_float(uint16_t h) { return _mm_cvtss_f32(_mm_cvtph_ps(_mm_cvtsi32_si128(h))); }

  // Canonical fold: lanes l += l+8, then +4, +2, +1.
  static float fold(f a) {
    const __m256 s8 = _mm256_add_ps(a.lo, a.hi);
    const __m128 s4 = _mm_add_ps(_mm256_castps256_ps128(s8), _mm256_extractf128_ps(s8, 1));
    const __m128 s2 = _mm_add_ps(s4, _mm_movehl_ps(s4, s4));
    const __m128 s1 = _mm_add_ss(s2, _mm_shuffle_ps(s2, s2, 1));
    return _mm_cvtss_f32(s1);
  }
};

}  // namespace
}  // namespace lime::cpu
