// AVX-512 matvec (one activation column: decode) for q4_k, and batches of 2 to k_kquant_few_cols columns (decode
// of a few sequences), bitwise equal to matmul_ref, with the weights dequantized in registers straight from the
// blocks (no staging through L1 as the batched K-quant tiles do). Wider batches take matmul_kquants_avx512.cpp.
#include "kernels/cpu/x86/vec16_avx512.h"  // first: its warning pragmas must precede <immintrin.h>

#include <cstddef>
#include <cstdint>

#include "kernels/cpu/x86/k4_scales_avx512.h"
#include "kernels/cpu/x86/matmul_x86.h"
#include "kernels/cpu/x86/matvec_x86.h"

// How it works. R weight rows at a time, the 16 canonical lanes of a row in one zmm accumulator (R fma
// chains). A super-block's 32 bytes qs[32c, 32c + 32) hold elements 64c + l (low nibbles, sub-block 2c) and
// 64c + 32 + l (high nibbles, sub-block 2c + 1): one zero-extension of 16 bytes gives 16 lanes of both, and
// vpermps reads only an index's low 4 bits, so the low nibbles index as they are and the high ones after a
// shift. Each sub-block's 16 possible weights table[q] = fmsub(d1, q, m1), d1 = d * sc, m1 = dmin * m, are
// bit-identical to the reference's d1 * q - m1 (d * sc and d1 * q are exact in fp32: one rounding of the same
// exact difference). d1 and m1 of a chunk of super-blocks are computed first into a small L1 array, from which
// the tables take them as broadcast loads (kept in registers they would cost a shuffle each). A few columns: the
// 64 weights of a step are dequantized once and serve every column of the pass.

namespace lime::cpu {
namespace {

constexpr int64_t k_qk = 256;      // elements per super-block
constexpr size_t k_bytes = 144;    // bytes per q4_k super-block
constexpr int k_chunk_blocks = 4;  // super-blocks whose scales are unpacked together

inline __m512i bytes16(const uint8_t* p) {
  return _mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
}

// Elements [64c, 64c + 64) of the super-block at blk (scales dm) in K order: wv[v] holds 64c + 16v .. + 15.
inline void weights64(const uint8_t* blk, const float* dm, int c, __m512* wv) {
  const __m512 iota = _mm512_setr_ps(0.f, 1.f, 2.f, 3.f, 4.f, 5.f, 6.f, 7.f, 8.f, 9.f, 10.f, 11.f, 12.f, 13.f,
                                     14.f, 15.f);
  const __m512 t_lo = _mm512_fmsub_ps(bcast_f32(&dm[4 * c]), iota, bcast_f32(&dm[4 * c + 1]));
  const __m512 t_hi = _mm512_fmsub_ps(bcast_f32(&dm[4 * c + 2]), iota, bcast_f32(&dm[4 * c + 3]));
  const __m512i q0 = bytes16(blk + 16 + 32 * c);
  const __m512i q1 = bytes16(blk + 32 + 32 * c);
  wv[0] = _mm512_permutexvar_ps(q0, t_lo);
  wv[1] = _mm512_permutexvar_ps(q1, t_lo);
  wv[2] = _mm512_permutexvar_ps(_mm512_srli_epi32(q0, 4), t_hi);
  wv[3] = _mm512_permutexvar_ps(_mm512_srli_epi32(q1, 4), t_hi);
}

// R rows (row r at w + r * rs, rb bytes each) times C activation columns (column j at x + j * xs) over nb
// super-blocks: y[j * ycs + r * ys]. Each 64 weights are dequantized once and serve the C columns; every
// (row, column) keeps its own 16-lane chain in K order.
template <int R, int C>
void rows(const uint8_t* w, size_t rs, size_t rb, const float* x, int64_t xs, int64_t nb, float* y, int64_t ys,
          int64_t ycs) {
  __m512 acc[R][C];
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 8
    for (int j = 0; j < C; ++j) acc[r][j] = _mm512_setzero_ps();
  alignas(64) float dm[R][k_chunk_blocks][16];
  const size_t ahead = prefetch_ahead(rb);  // how far down its stream each row's requests go
  for (int64_t b0 = 0; b0 < nb; b0 += k_chunk_blocks) {
    const int n = nb - b0 < k_chunk_blocks ? static_cast<int>(nb - b0) : k_chunk_blocks;
    const uint8_t* wb = w + b0 * k_bytes;
    for (int r = 0; r < R; ++r) {
      for (int i = 0; i < n; ++i) k4_unpack_dm(wb + r * rs + i * k_bytes, dm[r][i]);
    }
    // The same step further down each row's stream (for_row_streams): prefetch_ahead's row, 36 bytes (a step's
    // nibbles) at a time among the fmas (a super-block's last line, when it is not reached, is the next one's
    // first: 2-3 % faster than reaching it with offsets 0, 48, 96, 143). Against a burst for each chunk two rows
    // down (one Zen 5 core, in process, same bits, 2 runs each, from DRAM), one column: 2048x768 79.7 -> 87.1
    // GFLOP/s, 32000x768 79.6-80.8 -> 88.0, 2048x8192 83.1-84.4 -> 92.0-92.3, 768x2048 90.2-90.8 -> 93.0-93.1;
    // 2-4 columns 0.95-1.11x, 1.02x on average.
    for (int i = 0; i < n; ++i) {
      const float* xb = x + (b0 + i) * k_qk;
      for (int c = 0; c < 4; ++c) {
        request_rows<R>(wb + ahead + i * k_bytes + 36 * c, rs);
        if constexpr (C == 1) {  // one column: its 64 activations stay in registers for the R rows
          const __m512 xv[4] = {_mm512_loadu_ps(xb + 64 * c), _mm512_loadu_ps(xb + 64 * c + 16),
                                _mm512_loadu_ps(xb + 64 * c + 32), _mm512_loadu_ps(xb + 64 * c + 48)};
#pragma GCC unroll 8
          for (int r = 0; r < R; ++r) {
            __m512 wv[4];
            weights64(wb + r * rs + i * k_bytes, dm[r][i], c, wv);
#pragma GCC unroll 4
            for (int v = 0; v < 4; ++v) acc[r][0] = _mm512_fmadd_ps(wv[v], xv[v], acc[r][0]);
          }
        } else {
#pragma GCC unroll 8
          for (int r = 0; r < R; ++r) {
            __m512 wv[4];
            weights64(wb + r * rs + i * k_bytes, dm[r][i], c, wv);
#pragma GCC unroll 4
            for (int v = 0; v < 4; ++v) {
#pragma GCC unroll 8
              for (int j = 0; j < C; ++j)
                acc[r][j] = _mm512_fmadd_ps(wv[v], _mm512_loadu_ps(xb + j * xs + 64 * c + 16 * v), acc[r][j]);
            }
          }
        }
      }
    }
  }
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 8
    for (int j = 0; j < C; ++j) y[j * ycs + r * ys] = vec16_avx512::fold(acc[r][j]);
}

// One activation column, in run_matvec's row-kernel shape.
template <int R>
void rows_1(const uint8_t* w, size_t rs, size_t rb, const float* x, int64_t nb, float* y, int64_t ys) {
  rows<R, 1>(w, rs, rb, x, 0, nb, y, ys, 0);
}

constexpr int k_rows = 4;
// Columns one pass over a row group serves at most. Measured against 3 and 5 (in process, 2048x768 and 768x2048,
// 2-16 columns): 3 lost at 4 columns, 5 gained nothing.
constexpr int k_group_cols = 4;

// rows<R, C> for a run-time C in [1, k_group_cols].
template <int R>
cols_rows_fn rows_for_cols(int c) {
  static constexpr cols_rows_fn fns[k_group_cols] = {rows<R, 1>, rows<R, 2>, rows<R, 3>, rows<R, 4>};
  return fns[c - 1];
}

}  // namespace

kstatus matvec_kquant_avx512(const matmul_args& a) {
  if (a.w_type != tensor_type::q4_k) return kstatus::unsupported_type;
  if (a.n_cols != 1) {
    return run_few_cols(a, k_qk, k_bytes, k_rows, k_kquant_few_cols, k_group_cols, rows_for_cols<k_rows>,
                        rows_for_cols<1>);
  }
  return run_matvec(a, k_qk, k_bytes, k_rows, rows_1<k_rows>, rows_1<1>);
}

}  // namespace lime::cpu
