// 16-lane fp32 vector traits for AVX-512 F/BW/VL/DQ (one zmm), the V of matmul_tile.h.
// Include only from *_avx512.cpp: everything is in an unnamed namespace, so each such file owns a private copy
// compiled with its flags and nothing here can be merged into code that runs on CPUs without AVX-512.
#pragma once
// GCC 12's AVX-512 headers build "undefined" vectors as `__Y = __Y`, which -Wuninitialized flags once inlined
// (a known false positive). Silenced for the header's own lines, so include this file before <immintrin.h>.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#include <immintrin.h>

#include <cstdint>
#include <cstring>

#include "kernels/cpu/x86/transpose8_ymm.h"

namespace lime::cpu {
namespace {

// The float at p in all 16 lanes, as vpbroadcastd (an integer broadcast): on Zen 4 vbroadcastss zmm from memory
// takes a shuffle pipe (one with the permutes and zero-extensions, one shared with the fmas) while vpbroadcastd
// is a plain load (throughput probe: 2.0 cycles per vbroadcastss + vpermps pair, 1.0 per vpbroadcastd + vpermps).
// Same bits: the 32 bits are copied as they are.
inline __m512 bcast_f32(const float* p) {
  int32_t bits;
  std::memcpy(&bits, p, sizeof bits);
  return _mm512_castsi512_ps(_mm512_set1_epi32(bits));
}

struct vec16_avx512 {
  using f = __m512;

  // Tile shapes (rows x columns of (row, col) accumulators, one zmm each; 32 zmm registers in all).
  static constexpr int max_cols = 6;
  static constexpr int rows_for(int cols) { return cols <= 2 ? 8 : cols <= 4 ? 6 : 4; }
  // One zmm holds all 16 lanes: no part tile (matmul_tile.h); the shape constants only keep templates uniform.
  static constexpr int parts = 1, part_rows = 1, part_cols = 1;

  // The lane path (matmul_lanes.h): register tiles of 12 weight rows x 2 panels of 16 activation columns (one
  // zmm each, 24 accumulators; each weight one broadcast for 2 fmas). Packing uses the 8 x 8 ymm transpose.
  static constexpr bool has_lanes = true;
  static constexpr int lane_rows = 12, lane_vecs = 1, lane_panels = 2;
  using c = __m512;
  static c c_zero() { return _mm512_setzero_ps(); }
  static c c_fma(c a, c b, c acc) { return _mm512_fmadd_ps(a, b, acc); }
  static c c_load(const float* q) { return _mm512_loadu_ps(q); }
  static void c_store(float* q, c a) { _mm512_storeu_ps(q, a); }
  static c c_add(c a, c b) { return _mm512_add_ps(a, b); }
  static c c_bcast(const float* q) { return bcast_f32(q); }
  static void p_transpose8(const float* const* s, float* const* d) { transpose8_ymm(s, d); }

  static f zero() { return _mm512_setzero_ps(); }
  static f set1(float v) { return _mm512_set1_ps(v); }
  static f load_f32(const void* p) { return _mm512_loadu_ps(p); }
  static void store_f32(float* q, f a) { _mm512_storeu_ps(q, a); }
  static f load_f16(const void* p) { return _mm512_cvtph_ps(_mm256_loadu_si256(static_cast<const __m256i*>(p))); }
  // bf16 -> fp32 is the 16 bits placed on top of a zero low half (exact, as bf16_to_fp32).
  static f load_bf16(const void* p) {
    const __m512i w = _mm512_cvtepu16_epi32(_mm256_loadu_si256(static_cast<const __m256i*>(p)));
    return _mm512_castsi512_ps(_mm512_slli_epi32(w, 16));
  }

  static f fma(f a, f b, f c) { return _mm512_fmadd_ps(a, b, c); }
  // fma on lanes 0..n-1 (1 <= n <= 15); the other lanes keep c exactly (the canonical masked tail).
  static f fma_first(f a, f b, f c, int n) {
    return _mm512_mask3_fmadd_ps(a, b, c, static_cast<__mmask16>((1u << n) - 1u));
  }
  static f mul(f a, f b) { return _mm512_mul_ps(a, b); }
  static f add(f a, f b) { return _mm512_add_ps(a, b); }
  static f sub(f a, f b) { return _mm512_sub_ps(a, b); }

  // Integer sources, converted exactly: 16 int8; low / high nibbles of 16 bytes; 5-bit values whose bit 4 for
  // element i is bit i of bits16.
  static f i8(const void* p) {
    return _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128(static_cast<const __m128i*>(p))));
  }
  static __m512i bytes16(const void* p) { return _mm512_cvtepu8_epi32(_mm_loadu_si128(static_cast<const __m128i*>(p))); }
  static f u4_lo(const void* p) { return _mm512_cvtepi32_ps(_mm512_and_si512(bytes16(p), _mm512_set1_epi32(15))); }
  static f u4_hi(const void* p) { return _mm512_cvtepi32_ps(_mm512_srli_epi32(bytes16(p), 4)); }
  static f u5_lo(const void* p, uint32_t bits16) {
    const __m512i q = _mm512_and_si512(bytes16(p), _mm512_set1_epi32(15));
    return _mm512_cvtepi32_ps(_mm512_mask_or_epi32(q, static_cast<__mmask16>(bits16), q, _mm512_set1_epi32(16)));
  }
  static f u5_hi(const void* p, uint32_t bits16) {
    const __m512i q = _mm512_srli_epi32(bytes16(p), 4);
    return _mm512_cvtepi32_ps(_mm512_mask_or_epi32(q, static_cast<__mmask16>(bits16), q, _mm512_set1_epi32(16)));
  }
  static float half_to_float(uint16_t h) { return _mm_cvtss_f32(_mm_cvtph_ps(_mm_cvtsi32_si128(h))); }

  // Canonical fold: high 256 bits onto the low, then 128, 64, 32.
  static float fold(f a) {
    const __m256 s8 = _mm256_add_ps(_mm512_castps512_ps256(a), _mm512_extractf32x8_ps(a, 1));
    const __m128 s4 = _mm_add_ps(_mm256_castps256_ps128(s8), _mm256_extractf128_ps(s8, 1));
    const __m128 s2 = _mm_add_ps(s4, _mm_movehl_ps(s4, s4));
    const __m128 s1 = _mm_add_ss(s2, _mm_shuffle_ps(s2, s2, 1));
    return _mm_cvtss_f32(s1);
  }
  // out[i] = fold(v[i]) for 16 vectors at once: the same adds (each pairs the same lanes, the lower lane first),
  // two vectors' halves per instruction, 46 ops instead of about 8 per vector. After the last step lane 4q + j
  // holds vector 4j + q; one permute puts them in order.
  static void fold16(const f* v, float* out) {
    __m512 t[8], u[4], w[2];
#pragma GCC unroll 8
    for (int i = 0; i < 8; ++i)  // s8 of v[2i] | s8 of v[2i + 1]
      t[i] = _mm512_add_ps(_mm512_shuffle_f32x4(v[2 * i], v[2 * i + 1], 0x44),
                           _mm512_shuffle_f32x4(v[2 * i], v[2 * i + 1], 0xee));
#pragma GCC unroll 4
    for (int i = 0; i < 4; ++i)  // s4 of v[4i .. 4i + 3], one per 128 bits
      u[i] = _mm512_add_ps(_mm512_shuffle_f32x4(t[2 * i], t[2 * i + 1], 0x88),
                           _mm512_shuffle_f32x4(t[2 * i], t[2 * i + 1], 0xdd));
#pragma GCC unroll 2
    for (int i = 0; i < 2; ++i)  // 128-bit quarter q: s2 of v[8i + q], then s2 of v[8i + 4 + q]
      w[i] = _mm512_add_ps(_mm512_shuffle_ps(u[2 * i], u[2 * i + 1], 0x44),
                           _mm512_shuffle_ps(u[2 * i], u[2 * i + 1], 0xee));
    const __m512 r = _mm512_add_ps(_mm512_shuffle_ps(w[0], w[1], 0x88), _mm512_shuffle_ps(w[0], w[1], 0xdd));
    const __m512i order = _mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15);
    _mm512_storeu_ps(out, _mm512_permutexvar_ps(order, r));
  }
};

}  // namespace
}  // namespace lime::cpu
