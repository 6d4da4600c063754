// AVX-512 matvec (one activation column: decode) for q4_0, q4_1 and q8_0, and q4_0 batches of 2 to
// k_legacy_few_cols columns (decode of a few sequences), bitwise equal to matmul_ref. Other batches take
// matmul_tile.h.
#include "kernels/cpu/x86/vec16_avx512.h"  // first: its warning pragmas must precede <immintrin.h>

#include <cstddef>
#include <cstdint>
#include <cstring>

#include "kernels/cpu/x86/matmul_x86.h"
#include "kernels/cpu/x86/matvec_x86.h"

// How it works. R weight rows at a time, all 16 canonical lanes of a row in one zmm accumulator: R independent
// fma chains. Every 16 blocks, the R rows' fp16 scales are converted 16 at a time and parked in a small L1
// array, from which each block takes its scale as an embedded broadcast (a load, no shuffle). Values, by the
// reference's operations (kernels/cpu/quants_legacy.cpp):
//   q4_0: (float)(q - 8) * d. Per block, the 16 possible weights table[q] = (q - 8) * d are one multiply of the
//         exact (q - 8) by d, the reference's own operation for every d (inf and NaN included). Each byte's
//         low nibble then indexes the table directly (vpermps reads only an index's low 4 bits) and its high
//         nibble after a shift: 16 weights cost one zero-extension or shift and one permute. (The high nibbles
//         converted and multiplied instead, to move work from the shuffle pipes to the FP ones: 96.7 against
//         107.7 GFLOP/s, 768x2048 hot on one Zen 5 core.)
//   q8_0: (float)q * d, one multiply as the reference.
// On Zen 4 (512-bit ops split over two 256-bit pipes; one core, in process, same bits) both types are bound by
// the FP pipes, not by memory: q4_0 768x2048 runs 47 GFLOP/s from L2 and 45 from DRAM, q8_0 39 and 33. Pipe
// probes there (independent zmm ops, 1 a cycle each alone): fma and mul share two pipes; vpermps, vpmovzx/sx (from
// memory too), vbroadcasti32x4 and vbroadcastss from memory share two shuffle pipes, one of them an fma pipe;
// shifts, cvtdq2ps and adds take the other two; vpternlogd and vpmultishiftqb go to the fma pipes; vpbroadcastd/q
// from memory and embedded broadcasts are free. A q4_0 block a row is then 14 pipe slots, 12 of them on three
// pipes (two fmas, a mul, two permutes, a zero-extension): a floor of 4 cycles a row-block against the 4.8 measured.
// q8_0's block, its loads and dependencies copied into an asm loop over L1 data, takes 4.95 cycles a row against the
// kernel's 6.0 (a 32-row matrix in L1/L2 runs at the same 37-39 GFLOP/s): the scale gathering and the loop's own
// bookkeeping take the rest.
// Tried there, no faster: 6 and 8 rows a pass (q4_0 0.95-1.02x, q8_0 0.80-1.00x); in a standalone copy of the
// loop, the q4_0 indices from a broadcast 16 bytes and variable shifts (permuted lanes; a shuffle traded for a
// shift: 0.93-1.04x), or each half of the lanes a ymm fed by two-table permutes (vpermt2ps) indexed from a free
// 8-byte broadcast by variable shifts (exact after the lanes are put back: 0.73-0.92x); and q8_0's weight as
// fma(float bits 0x4B400000 + q, d, -0x1.8p23 * d) instead of convert and multiply (0.87x) or from one 32-byte
// load (0.92x); the chunk's scales converted one by one (vcvtph2ps on a scalar) instead of gathered by word
// permutes: q8_0 0.93-1.00x, q4_0 0.85-0.87x (in the library).
// A few columns: each (row, column) keeps its own chain, and each block's dequantized weights serve every column
// of the pass, so a column costs 2 fmas per block over the 5 uops of dequantizing (the tiles spend about 4 uops
// per 16 weights per row on it, with a scalar scale conversion per block).

namespace lime::cpu {
namespace {

constexpr int k_chunk = 16;  // blocks whose scales are converted together

// Bytes [0, n) of p as a 64-byte mask (n may be <= 0 or >= 64): masked-off bytes are neither read nor faulted.
inline __mmask64 first_bytes(int64_t n) {
  return n >= 64 ? ~__mmask64{0} : n <= 0 ? __mmask64{0} : (__mmask64{1} << n) - 1;
}

// Gathering the fp16 scales of 16 blocks of B bytes (at byte Off of each block) with word permutes: a 128-byte
// window holds the scales of `per` consecutive blocks, picked out of its two zmm by one vpermt2w. The last window
// ends at the chunk's last scale when a window of its own would run past the chunk (20-byte q4_1 blocks).
template <size_t B, size_t Off>
struct scale_windows {
  static constexpr int per = 126 / static_cast<int>(B) + 1;  // scales wholly inside one 128-byte window
  static constexpr int count = (k_chunk + per - 1) / per;
  static constexpr int64_t last_start = static_cast<int64_t>(k_chunk * B - Off) - 128;
  // Byte offset of window w from the chunk's first scale.
  static constexpr int64_t start(int w) {
    const int64_t o = static_cast<int64_t>(w) * per * static_cast<int64_t>(B);
    return o < last_start ? o : last_start;
  }
  // idx[w][j]: word of window w that holds block j's scale, for the blocks j window w serves (others 0).
  struct table {
    alignas(64) uint16_t idx[count][32];
  };
  static constexpr table make() {
    table t{};
    for (int w = 0; w < count; ++w)
      for (int j = w * per; j < (w + 1) * per && j < k_chunk; ++j)
        t.idx[w][j] = static_cast<uint16_t>((j * static_cast<int64_t>(B) - start(w)) / 2);
    return t;
  }
  static constexpr table words = make();
  static constexpr bool fits() {  // every scale wholly inside its window
    for (int w = 0; w < count; ++w)
      for (int j = w * per; j < (w + 1) * per && j < k_chunk; ++j)
        if (j * static_cast<int64_t>(B) - start(w) > 126) return false;
    return true;
  }
  static_assert(last_start >= 0 && fits(), "the chunk's scales fit the windows");
};

// d[j] = fp32 value of the fp16 at byte Off of block j (at blocks + j * B) for j < n; the rest 0 (never read).
// Reads only the n blocks' bytes. A full chunk (Full: n == k_chunk) loads its windows whole, with no masks to
// compute: one Zen 5 core, in process, same bits, q8_0 768x2048 hot 78-83 -> 91-95 GFLOP/s, from DRAM 1.04-1.10x at
// every stories110M shape, q4_0 1.00-1.03x.
template <size_t B, size_t Off, bool Full>
inline void load_scales(const uint8_t* blocks, int n, float* d) {
  using sw = scale_windows<B, Off>;
  const uint8_t* p = blocks + Off;
  const int64_t avail = static_cast<int64_t>(n) * static_cast<int64_t>(B) - static_cast<int64_t>(Off);
  __m512i h = _mm512_setzero_si512();
#pragma GCC unroll 4
  for (int w = 0; w < sw::count; ++w) {
    const int64_t o = sw::start(w);
    const __m512i lo = Full ? _mm512_loadu_si512(p + o) : _mm512_maskz_loadu_epi8(first_bytes(avail - o), p + o);
    const __m512i hi = Full ? _mm512_loadu_si512(p + o + 64)
                            : _mm512_maskz_loadu_epi8(first_bytes(avail - o - 64), p + o + 64);
    const __m512i idx = _mm512_load_si512(sw::words.idx[w]);
    const __mmask32 mine = ((__mmask32{1} << sw::per) - 1) << (w * sw::per);
    h = _mm512_mask_blend_epi16(mine, h, _mm512_permutex2var_epi16(lo, idx, hi));
  }
  _mm512_store_ps(d, _mm512_cvtph_ps(_mm512_castsi512_si256(h)));
}

struct q4_0_fmt {
  static constexpr size_t bytes = 18;
  static constexpr int n_scales = 1;
  static constexpr size_t ahead = k_prefetch_ahead;  // 3 and 4 KiB: 0.96-0.99x and 0.95-0.98x (from DRAM)
  // Block j of a row: elements 0-15 (low nibbles of bytes 0-15) -> lo, 16-31 (high nibbles) -> hi, lanes 0-15.
  static void weights(const uint8_t* blk, const float* d, __m512& lo, __m512& hi) {
    const __m512 minus8 = _mm512_setr_ps(-8.f, -7.f, -6.f, -5.f, -4.f, -3.f, -2.f, -1.f, 0.f, 1.f, 2.f, 3.f, 4.f,
                                         5.f, 6.f, 7.f);
    const __m512 table = _mm512_mul_ps(minus8, _mm512_set1_ps(*d));
    const __m512i q = _mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(blk + 2)));
    lo = _mm512_permutexvar_ps(q, table);
    hi = _mm512_permutexvar_ps(_mm512_srli_epi32(q, 4), table);
  }
};

// q4_1: (float)q * d + m, the reference's multiply then add (no fma: same operations, so the same NaNs too), on
// the 16 possible q per block (a table as q4_0's). Before, one column took the tiles:
// Zen 4, one core, in process, same bits, weights cycled through 256 MiB, alternated: 768x768 25.1-26.3 -> 31.0-31.7
// GFLOP/s, 2048x768 27.2-27.8 -> 32.5, 768x2048 27.7-27.9 -> 36.5-37.0, 2048x8192 28.8-29.6 -> 36.8-37.2, 32000x768
// 27.1-27.9 -> 32.2-32.7 (q4_0 and q8_0 unchanged).
struct q4_1_fmt {
  static constexpr size_t bytes = 20;
  static constexpr int n_scales = 2;  // d at byte 0, m at byte 2
  static constexpr size_t ahead = k_prefetch_ahead;
  // s[0] = d, s[k_chunk] = m of the block.
  static void weights(const uint8_t* blk, const float* s, __m512& lo, __m512& hi) {
    const __m512 iota = _mm512_setr_ps(0.f, 1.f, 2.f, 3.f, 4.f, 5.f, 6.f, 7.f, 8.f, 9.f, 10.f, 11.f, 12.f, 13.f, 14.f,
                                       15.f);
    const __m512 table = _mm512_add_ps(_mm512_mul_ps(iota, bcast_f32(s)), bcast_f32(s + k_chunk));
    const __m512i q = _mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(blk + 4)));
    lo = _mm512_permutexvar_ps(q, table);
    hi = _mm512_permutexvar_ps(_mm512_srli_epi32(q, 4), table);
  }
};

struct q8_0_fmt {
  static constexpr size_t bytes = 34;
  static constexpr int n_scales = 1;
  // Requests at least 3 KiB ahead: against 2 KiB, one Zen 5 core, in process, same bits, alternated runs from
  // DRAM, 1.03-1.10x at stories110M's four shapes, 1.01-1.10x at Llama-3.2-1B's (1 KiB: 0.88-1.00x, 4 KiB as 3).
  static constexpr size_t ahead = 3072;
  static __m512 i8(const uint8_t* p) {
    return _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p))));
  }
  static void weights(const uint8_t* blk, const float* d, __m512& lo, __m512& hi) {
    const __m512 dv = bcast_f32(d);
    lo = _mm512_mul_ps(i8(blk + 2), dv);
    hi = _mm512_mul_ps(i8(blk + 18), dv);
  }
};

// R rows (row r at w + r * rs, rb bytes each) times C activation columns (column c at x + c * xs) over nb blocks:
// y[c * ycs + r * ys]. Each block's weights are dequantized once and serve the C columns; every (row, column)
// keeps its own 16-lane chain (low half, then high half of each block). Always inlined pieces (as in the AVX2
// twin: a call would keep the accumulators in memory).
template <class F, int R, int C>
void rows(const uint8_t* w, size_t rs, size_t rb, const float* x, int64_t xs, int64_t nb, float* y, int64_t ys,
          int64_t ycs) {
  __m512 acc[R][C];
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 8
    for (int c = 0; c < C; ++c) acc[r][c] = _mm512_setzero_ps();
  alignas(64) float d[R][F::n_scales][k_chunk];  // per row, each scale of the chunk's blocks (q4_1: d, then m)
  const size_t ahead = prefetch_ahead(rb, F::ahead);  // once: GCC 12 left its division in the R-row loop (1-2 %)
  for (int64_t b0 = 0; b0 < nb; b0 += k_chunk) {
    const int n = nb - b0 < k_chunk ? static_cast<int>(nb - b0) : k_chunk;
    const uint8_t* wb = w + b0 * F::bytes;
    if (n == k_chunk) {
#pragma GCC unroll 8
      for (int r = 0; r < R; ++r) {
        load_scales<F::bytes, 0, true>(wb + r * rs, n, d[r][0]);
        if constexpr (F::n_scales == 2) load_scales<F::bytes, 2, true>(wb + r * rs, n, d[r][1]);
      }
    } else {
#pragma GCC unroll 8
      for (int r = 0; r < R; ++r) {
        load_scales<F::bytes, 0, false>(wb + r * rs, n, d[r][0]);
        if constexpr (F::n_scales == 2) load_scales<F::bytes, 2, false>(wb + r * rs, n, d[r][1]);
      }
    }
    // Ask for the same chunk of a row further down each row's stream (for_row_streams; its successor, or a later
    // row when rows are short: prefetch_ahead) while this one computes: the hardware prefetchers alone lag on these
    // short rows (measured on the AVX2 twin). One or two columns request it block by block in the loop below, the
    // requests spread among the fmas; more columns, as a burst here (one Zen 5 core, in process, same bits, 2 runs
    // each, from DRAM: q8_0 matvecs 768x2048 66.6-67.2 -> 71.7-72.6 GFLOP/s, 32000x768 64.0-65.4 -> 67.3-67.4,
    // q4_0 0.99-1.02x, 2 columns 1.02-1.03x; 5 columns 0.96-0.97x, so they keep the burst).
    constexpr bool spread = C <= 2;
    if constexpr (!spread) {
      for (int r = 0; r < R; ++r) {
        const char* next = reinterpret_cast<const char*>(wb + r * rs + ahead);
        for (size_t o = 0; o < n * F::bytes; o += 64) _mm_prefetch(next + o, _MM_HINT_T0);
      }
    }
    const float* xb = x + b0 * 32;
    for (int j = 0; j < n; ++j) {
      if constexpr (spread) request_rows<R>(wb + ahead + j * F::bytes, rs);
#pragma GCC unroll 8
      for (int r = 0; r < R; ++r) {
        __m512 lo, hi;
        F::weights(wb + r * rs + j * F::bytes, &d[r][0][j], lo, hi);
#pragma GCC unroll 8
        for (int c = 0; c < C; ++c) {
          const float* xc = xb + c * xs + 32 * j;
          acc[r][c] = _mm512_fmadd_ps(lo, _mm512_loadu_ps(xc), acc[r][c]);
          acc[r][c] = _mm512_fmadd_ps(hi, _mm512_loadu_ps(xc + 16), acc[r][c]);
        }
      }
    }
  }
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 8
    for (int c = 0; c < C; ++c) y[c * ycs + r * ys] = vec16_avx512::fold(acc[r][c]);
}

// One activation column, in run_matvec's row-kernel shape.
template <class F, int R>
void rows_1(const uint8_t* w, size_t rs, size_t rb, const float* x, int64_t nb, float* y, int64_t ys) {
  rows<F, R, 1>(w, rs, rb, x, 0, nb, y, ys, 0);
}

constexpr int k_rows = 4;
// Columns one pass over a row group serves at most. Measured against 4 and 6 (in process, q4_0 2048x768 and
// 768x2048, 2-16 columns): 6 (24 accumulators) ran no faster than the tiles, 4 lost at 5 columns.
constexpr int k_group_cols = 5;

// rows<F, R, C> for a run-time C in [1, k_group_cols].
template <class F, int R>
cols_rows_fn rows_for_cols(int c) {
  static constexpr cols_rows_fn fns[k_group_cols] = {rows<F, R, 1>, rows<F, R, 2>, rows<F, R, 3>, rows<F, R, 4>,
                                                     rows<F, R, 5>};
  return fns[c - 1];
}

// One activation column of format F.
template <class F>
kstatus one_column(const matmul_args& a) {
  return run_matvec(a, 32, F::bytes, k_rows, rows_1<F, k_rows>, rows_1<F, 1>);
}

}  // namespace

kstatus matvec_legacy_avx512(const matmul_args& a) {
  if (a.n_cols != 1) {
    // q8_0 batches stay with the tiles: its conversion is the same work there (measured 0.8-1.1x here).
    if (a.w_type != tensor_type::q4_0) return kstatus::unsupported_type;
    return run_few_cols(a, 32, q4_0_fmt::bytes, k_rows, k_legacy_few_cols, k_group_cols,
                        rows_for_cols<q4_0_fmt, k_rows>, rows_for_cols<q4_0_fmt, 1>);
  }
  switch (a.w_type) {
    case tensor_type::q4_0: return one_column<q4_0_fmt>(a);
    case tensor_type::q4_1: return one_column<q4_1_fmt>(a);
    case tensor_type::q8_0: return one_column<q8_0_fmt>(a);
    default: return kstatus::unsupported_type;
  }
}

}  // namespace lime::cpu
