// AVX-512 matvec (one activation column: decode) for q6_k, bitwise equal to matmul_ref. Each super-block is
// unpacked to bytes in L1 (as the batched tiles stage it) while the previous one is fed, so the unpacking's integer
// work runs beside the previous super-block's multiplies and fmas instead of before them.
#include "kernels/cpu/x86/vec16_avx512.h"  // first: its warning pragmas must precede <immintrin.h>

#include <cstddef>
#include <cstdint>

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
// probe loop there, so the unpacking costs the rest (there a 64-byte store takes two cycles and stalls the fmas
// beside it). Tried there, no faster: 2, 3 and 6 rows a group (0.98-1.01x); and + or instead of the ternary-logic
// ops, which run on the fma pipes there (1.00x); keeping each row's unpacked half in registers and feeding it by
// masked vpermb (a byte moved to the top of each dword, converted, multiplied by d * sc * 2^-24: exact, same bits),
// with no staging stores (standalone prototype: 0.85-0.89x).

namespace lime::cpu {
namespace {

constexpr int64_t k_qk = 256;  // elements per super-block
constexpr int k_rows = 4;      // rows per group

// One row's unpacked super-block: q - 32 per element in element order, and d * sc per 16 elements.
struct unpacked {
  alignas(64) int8_t q[k_qk];
  alignas(64) float a[16];
};

// Unpacking unit u < 2R of R rows' super-blocks (row r at blk + r * rs): half u / R of row u % R, with the row's
// scales along with its first half.
template <int R>
inline void unpack_unit(const uint8_t* blk, size_t rs, int u, unpacked* dst) {
  const int r = u % R;
  const int h = u / R;
  q6k_unpack_half(blk + r * rs, h, dst[r].q);
  if (h == 0) q6k_unpack_scales(blk + r * rs, dst[r].a);
}

// The exact weights of group j (elements 16j .. 16j + 15) of an unpacked super-block: (d * sc) * (q - 32), the
// reference's two multiplies (both exact: 11 + 8 and then 19 + 6 significant bits).
inline __m512 weights16(const unpacked& s, int j) {
  const __m128i q16 = _mm_load_si128(reinterpret_cast<const __m128i*>(s.q + 16 * j));
  return _mm512_mul_ps(_mm512_set1_ps(s.a[j]), _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(q16)));
}

// n_groups groups of R rows: group g's row r at w + g * gs + r * rs (rb bytes, nb super-blocks each) -> y[g * ygs
// + r * ys]. The super-blocks of all groups form one sequence (g, b); the next one's unpacking is spread over the
// current one's 16 steps, and each row's stream has prefetch_ahead bytes requested ahead of it.
template <int R>
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
  for (int u = 0; u < 2 * R; ++u) unpack_unit<R>(w, rs, u, buf[0]);
  int cur = 0;
  for (int64_t g = 0; g < n_groups; ++g) {
    __m512 acc[R];
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r) acc[r] = _mm512_setzero_ps();
    const uint8_t* wg = w + g * gs;
    for (int64_t b = 0; b < nb; ++b) {
      const uint8_t* blk = wg + b * k_q6k_bytes;
      const uint8_t* next = b + 1 < nb ? blk + k_q6k_bytes : g + 1 < n_groups ? wg + gs : nullptr;  // null at the end
      const float* xb = x + b * k_qk;
      unpacked* nxt = buf[cur ^ 1];
#pragma GCC unroll 16
      for (int j = 0; j < 16; ++j) {
        if (j % 4 == 0) request_rows<R>(blk + ahead + 16 * j, rs);
        const __m512 xv = _mm512_loadu_ps(xb + 16 * j);
#pragma GCC unroll 8
        for (int r = 0; r < R; ++r) acc[r] = _mm512_fmadd_ps(weights16(buf[cur][r], j), xv, acc[r]);
        if (next) {
          for (int u = j * 2 * R / 16; u < (j + 1) * 2 * R / 16; ++u) unpack_unit<R>(next, rs, u, nxt);
        }
      }
      cur ^= 1;
    }
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r) y[g * ygs + r * ys] = vec16_avx512::fold(acc[r]);
  }
}

}  // namespace

kstatus matvec_q6k_avx512(const matmul_args& a) {
  if (a.w_type != tensor_type::q6_k || a.n_cols != 1) return kstatus::unsupported_type;
  if (const kstatus s = check_matvec_args(a, k_qk); s != kstatus::ok) return s;
  const int64_t nb = a.k / k_qk;
  const size_t rb = static_cast<size_t>(nb) * k_q6k_bytes;
  const uint8_t* w = static_cast<const uint8_t*>(a.w);
  // Row streams as for_row_streams: group g holds rows row_begin + g + i q, i < k_rows; the rest one at a time.
  const int64_t q = (a.row_end - a.row_begin) / k_rows;
  rows<k_rows>(w + a.row_begin * rb, rb, q * rb, rb, a.x, nb, q, a.y + a.row_begin, 1, q);
  const int64_t r1 = a.row_begin + k_rows * q;
  rows<1>(w + r1 * rb, rb, rb, rb, a.x, nb, a.row_end - r1, a.y + r1, 1, 1);
  return kstatus::ok;
}

}  // namespace lime::cpu
