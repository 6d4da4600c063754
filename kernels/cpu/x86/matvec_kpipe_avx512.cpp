// AVX-512 matvec (one activation column: decode) for q5_k and q6_k, bitwise equal to matmul_ref. Each super-block
// is unpacked to bytes in L1 (as the batched tiles stage it) while the previous one is fed, so the unpacking's
// integer work runs beside the previous super-block's multiplies and fmas instead of before them.
#include "kernels/cpu/x86/vec16_avx512.h"  // first: its warning pragmas must precede <immintrin.h>

#include <cstddef>
#include <cstdint>

#include "kernels/cpu/x86/k4_scales_avx512.h"
#include "kernels/cpu/x86/matmul_x86.h"
#include "kernels/cpu/x86/matvec_x86.h"
#include "kernels/cpu/x86/q6k_unpack_avx512.h"

// Why: the staged path (matmul_kquants_avx512.cpp) unpacks a chunk of super-blocks, then feeds it, and the two
// phases do not overlap; on one Zen 5 core they measured about 4.4 and 10 time units per chunk. Here super-block
// b + 1's unpacking, cut into 2R units (a half of one row's super-block), is spread over the 16 steps that feed
// super-block b, into the other of two buffers; the sequence runs on across row groups. Zen 5, one core, hot
// (mm microbenchmark, 5 alternated runs): 768x2048 66.5 -> 70.7 GFLOP/s, 2048x768 64.3 -> 73.3, 32000x768
// 62.8 -> 67.7; from DRAM 768x2048 60.8 -> 64.6. 8 and 6 rows a group were slower (58.7, 65.6: the 4-cycle fma
// chains are covered at 4 rows, and 8 rows' buffers and constants spill), and so were finer units (a quarter of a
// super-block a step: 60.2). Rows go by row streams on every CPU: adjacent rows (4 a group, requests 4 rows ahead)
// measured 0.52-0.93x from DRAM on the same core (32000x768 33.1 against 64.1), unlike the staged kernels there.
// What bounds it (hot 768x2048, wrong-bits probes of this kernel): without the reference's multiply by d * sc it
// ran 91-92 against 74-77 GFLOP/s, with the int -> float conversion replaced by an integer or 75-77 against 74-76:
// the multiply and the fma share the two FMA pipes. The multiply cannot go: (d * sc) * (q - 32) is the weight's
// exact value, and the fma needs it materialized.
// On Zen 4 (one core, in process, same bits) it runs 31-33 GFLOP/s hot and 29-32 from DRAM at stories110M's shapes,
// about 7.6 cycles a row per 32 weights: the feed alone (sign-extend, convert, multiply, fma) measures 4.5-4.9 in a
// probe loop there, so the unpacking costs the rest (a 64-byte store takes two cycles there; beside fmas alone it
// stalls them, among loads and conversions it hid in a probe). Tried there, no faster: 2, 3 and 6 rows a group (0.98-1.01x); and + or instead of the ternary-logic
// ops, which run on the fma pipes there (1.00x); keeping each row's unpacked half in registers and feeding it by
// masked vpermb (a byte moved to the top of each dword, converted, multiplied by d * sc * 2^-24: exact, same bits),
// with no staging stores (standalone prototype: 0.85-0.89x).
// q5_k takes the same pipeline, fed by a conversion and one fmsub (q5_fmt). Before, its one-column calls took the
// staged tiles of matmul_kquants_avx512.cpp, whose 32-entry tables (staged as fp32, read by two-table permutes)
// cost about 14 cycles a row per 32 weights on Zen 4. Zen 4, one core, in process, same bits, weights cycled through
// 256 MiB, alternated: 768x768 12.2-16.7 -> 26.8 GFLOP/s, 2048x768 16.7 -> 27.9-28.1, 768x2048 14.5-16.5 -> 28.1-28.3,
// 32000x768 15.7-16.0 -> 28.1-28.6, Llama-3.2-1B's 2048x2048 / 8192x2048 / 2048x8192 13.9-16.5 -> 26.2-28.5;
// q6_k unchanged (31.4-31.6 against 30.4-31.9). Decode (lime-bench generate, tg): stories110M Q5_K_M 78.7 -> 118.2
// t/s at 1 thread, 140.9 -> 204.3 at 2; Llama-3.2-1B Q5_K_M 7.34 -> 11.79 and 14.48 -> 22.82.

namespace lime::cpu {
namespace {

constexpr int64_t k_qk = 256;  // elements per super-block
constexpr int k_rows = 4;      // rows per group

// One row's unpacked super-block: a byte per element and 16 floats of scales, as its format lays them out.
struct unpacked {
  alignas(64) int8_t q[k_qk];
  alignas(64) float a[16];
};

// q6_k: q - 32 per element in element order, and d * sc per 16 elements (q6k_unpack_avx512.h).
struct q6_fmt {
  static constexpr size_t bytes = k_q6k_bytes;
  // Half h (elements 128h .. 128h + 127) of the super-block at blk, with the scales along with the first half.
  static void unpack_half(const uint8_t* blk, int h, unpacked& u) {
    q6k_unpack_half(blk, h, u.q);
    if (h == 0) q6k_unpack_scales(blk, u.a);
  }
  // The exact weights of group j (elements 16j .. 16j + 15): (d * sc) * (q - 32), the reference's two multiplies
  // (both exact: 11 + 8 and then 19 + 6 significant bits).
  static __m512 weights16(const unpacked& s, int j) {
    const __m128i q16 = _mm_load_si128(reinterpret_cast<const __m128i*>(s.q + 16 * j));
    return _mm512_mul_ps(_mm512_set1_ps(s.a[j]), _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(q16)));
  }
};

// q5_k (block_q5_k: d, dmin, scales[12], qh[32], qs[128]): q = 0..31 per element, sub-block s (elements 32s ..
// 32s + 31) at byte pos_of(s), and a[2s] = d * sc[s], a[2s + 1] = dmin * m[s] (k4_unpack_dm).
struct q5_fmt {
  static constexpr size_t bytes = 176;
  // Half h holds sub-blocks 4h .. 4h + 3. qs[64h, 64h + 64) gives sub-blocks 4h (low nibbles of bytes 0-31), 4h + 2
  // (low nibbles of 32-63), 4h + 1 and 4h + 3 (high nibbles): they are staged in that order, a 64-byte vector of
  // low nibbles and one of high nibbles, so no byte moves across lanes. Sub-block s's fifth bits are bit s of
  // qh[l]: 16-bit shifts by 4 - s move it to bit 4 of the same byte (bits crossing from the neighbouring byte land
  // outside bit 4), then (nibble & 0x0f) | (bit & 0x10) is one ternary-logic op (0xec) after an and.
  static void unpack_half(const uint8_t* blk, int h, unpacked& u) {
    const __m512i low4 = _mm512_set1_epi8(0x0f);
    const __m512i bit4 = _mm512_set1_epi8(0x10);
    const __m512i qs = _mm512_loadu_si512(blk + 48 + 64 * h);
    const __m512i qh = _mm512_broadcast_i64x4(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk + 16)));
    const __m512i c4 = _mm512_set1_epi16(4), c3 = _mm512_set1_epi16(3), c2 = _mm512_set1_epi16(2);
    const __m512i c1 = _mm512_set1_epi16(1), c0 = _mm512_setzero_si512();
    const __m512i lo_counts = h == 0 ? _mm512_mask_blend_epi64(0xf0, c4, c2) : _mm512_mask_blend_epi64(0xf0, c0, c2);
    const __m512i hi_counts = h == 0 ? _mm512_mask_blend_epi64(0xf0, c3, c1) : _mm512_mask_blend_epi64(0xf0, c1, c3);
    const __m512i b_lo = h == 0 ? _mm512_sllv_epi16(qh, lo_counts) : _mm512_srlv_epi16(qh, lo_counts);
    const __m512i b_hi = h == 0 ? _mm512_sllv_epi16(qh, hi_counts) : _mm512_srlv_epi16(qh, hi_counts);
    const __m512i q_lo = _mm512_ternarylogic_epi32(qs, _mm512_and_si512(b_lo, bit4), low4, 0xec);
    const __m512i q_hi = _mm512_ternarylogic_epi32(_mm512_srli_epi16(qs, 4), _mm512_and_si512(b_hi, bit4), low4, 0xec);
    _mm512_store_si512(u.q + 128 * h, q_lo);
    _mm512_store_si512(u.q + 128 * h + 64, q_hi);
    if (h == 0) k4_unpack_dm(blk, u.a);
  }
  // Byte offset of sub-block s's staged bytes.
  static constexpr int pos_of(int s) {
    constexpr int slot[4] = {0, 2, 1, 3};
    return 128 * (s / 4) + 32 * slot[s % 4];
  }
  // The exact weights of group j (elements 16j .. 16j + 15): fmsub(d1, q, m1), bit-identical to the reference's
  // d1 * q - m1 (d1 * q is exact in fp32: one rounding of the same exact difference, signed zeros included).
  static __m512 weights16(const unpacked& s, int j) {
    const int sb = j / 2;
    const __m128i q16 = _mm_load_si128(reinterpret_cast<const __m128i*>(s.q + pos_of(sb) + 16 * (j % 2)));
    return _mm512_fmsub_ps(bcast_f32(&s.a[2 * sb]), _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(q16)),
                           bcast_f32(&s.a[2 * sb + 1]));
  }
};

// Unpacking unit u < 2R of R rows' super-blocks (row r at blk + r * rs): half u / R of row u % R.
template <class F, int R>
inline void unpack_unit(const uint8_t* blk, size_t rs, int u, unpacked* dst) {
  F::unpack_half(blk + (u % R) * rs, u / R, dst[u % R]);
}

// n_groups groups of R rows: group g's row r at w + g * gs + r * rs (rb bytes, nb super-blocks each) -> y[g * ygs
// + r * ys]. The super-blocks of all groups form one sequence (g, b); the next one's unpacking is spread over the
// current one's 16 steps, and each row's stream has prefetch_ahead bytes requested ahead of it.
template <class F, int R>
void rows(const uint8_t* w, size_t gs, size_t rs, size_t rb, const float* x, int64_t nb, int64_t n_groups, float* y,
          int64_t ygs, int64_t ys) {
  if (nb == 0) {  // k = 0: sums of nothing are +0
    for (int64_t g = 0; g < n_groups; ++g) {
      for (int r = 0; r < R; ++r) y[g * ygs + r * ys] = 0.f;
    }
    return;
  }
  if (n_groups == 0) return;
  alignas(64) unpacked buf[2][R];
  const size_t ahead = prefetch_ahead(rb);
  for (int u = 0; u < 2 * R; ++u) unpack_unit<F, R>(w, rs, u, buf[0]);
  int cur = 0;
  for (int64_t g = 0; g < n_groups; ++g) {
    __m512 acc[R];
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r) acc[r] = _mm512_setzero_ps();
    const uint8_t* wg = w + g * gs;
    for (int64_t b = 0; b < nb; ++b) {
      const uint8_t* blk = wg + b * F::bytes;
      const uint8_t* next = b + 1 < nb ? blk + F::bytes : g + 1 < n_groups ? wg + gs : nullptr;  // null at the end
      const float* xb = x + b * k_qk;
      unpacked* nxt = buf[cur ^ 1];
#pragma GCC unroll 16
      for (int j = 0; j < 16; ++j) {
        if (j % 4 == 0) request_rows<R>(blk + ahead + 16 * j, rs);
        const __m512 xv = _mm512_loadu_ps(xb + 16 * j);
#pragma GCC unroll 8
        for (int r = 0; r < R; ++r) acc[r] = _mm512_fmadd_ps(F::weights16(buf[cur][r], j), xv, acc[r]);
        if (next) {
          for (int u = j * 2 * R / 16; u < (j + 1) * 2 * R / 16; ++u) unpack_unit<F, R>(next, rs, u, nxt);
        }
      }
      cur ^= 1;
    }
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r) y[g * ygs + r * ys] = vec16_avx512::fold(acc[r]);
  }
}

template <class F>
kstatus run(const matmul_args& a) {
  if (const kstatus s = check_matvec_args(a, k_qk); s != kstatus::ok) return s;
  const int64_t nb = a.k / k_qk;
  const size_t rb = static_cast<size_t>(nb) * F::bytes;
  const uint8_t* w = static_cast<const uint8_t*>(a.w);
  // Row streams as for_row_streams: group g holds rows row_begin + g + i q, i < k_rows; the rest one at a time.
  const int64_t q = (a.row_end - a.row_begin) / k_rows;
  rows<F, k_rows>(w + a.row_begin * rb, rb, q * rb, rb, a.x, nb, q, a.y + a.row_begin, 1, q);
  const int64_t r1 = a.row_begin + k_rows * q;
  rows<F, 1>(w + r1 * rb, rb, rb, rb, a.x, nb, a.row_end - r1, a.y + r1, 1, 1);
  return kstatus::ok;
}

}  // namespace

kstatus matvec_kpipe_avx512(const matmul_args& a) {
  if (a.n_cols != 1) return kstatus::unsupported_type;
  switch (a.w_type) {
    case tensor_type::q5_k: return run<q5_fmt>(a);
    case tensor_type::q6_k: return run<q6_fmt>(a);
    default: return kstatus::unsupported_type;
  }
}

}  // namespace lime::cpu
