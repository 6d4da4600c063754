// AVX2+FMA matmul/matvec for the K-quants q4_k, q5_k, q6_k, bitwise equal to matmul_ref (canonical order).
// Self-contained: intrinsics and functions in an unnamed namespace only (see kernels/CMakeLists.txt).
// GCC 12's intrinsic headers trip its own (maybe-)uninitialized warnings (the `__Y = __Y` idiom of
// _mm*_undefined_*), attributed to the header lines; they say nothing about this file.
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>

#include <cstddef>
#include <cstdint>
#include <cstring>

#include "kernels/cpu/x86/kquant_scales_x86.h"
#include "kernels/cpu/x86/matmul_tile.h"
#include "kernels/cpu/x86/matmul_x86.h"
#include "kernels/cpu/x86/matvec_x86.h"
#include "kernels/cpu/x86/vec16_avx2.h"
#include "kernels/quant_blocks.h"

// The matvec stages then feeds, without overlap. A matvec that staged each row's next super-block during the
// current one's 16 steps (as matvec_kpipe_avx512.cpp) ran 0.95-0.98x on Zen 5 under LIME_ISA=avx2 (768x2048 hot:
// q4_k 41.9 against 44.2, q5_k 39.7 against 40.9, q6_k 39.7 against 40.7 GFLOP/s): there the 256-bit
// conversions, multiplies and fmas bound it, not the staging. Not kept; not measured on an AVX2-only CPU.
//
// How it works. A chunk of up to 8 super-blocks of R weight rows is first unpacked ("staged") with byte
// operations into an L1 scratch: one byte per weight in element order (q4_k/q5_k: q; q6_k: q - 32) plus the fp32
// scales (and offsets) per sub-block. The dot-product loop then turns 8 staged bytes at a time into the weights'
// exact fp32 values in registers and feeds the canonical lanes (lane k % 16; lanes 0-7 in one ymm, 8-15 in
// another), reusing each weight vector across C columns; a staged chunk serves a block of up to 64 columns.
// That is the matvec (decode) and the fallback for batches; batches of 8+ columns whose rows fit normally take
// matmul_tile.h's dequantized strips: rows staged the same way, turned into fp32 once, read by float part tiles.
// Values, in the reference's operations:
//   q4_k/q5_k: y = d1 * q - m1 with d1 = d * sc, m1 = dmin * m. d * sc (17 bits) and d1 * q (22 bits) are exact
//              in fp32, so fmsub(d1, q, m1), a single rounding of the same exact difference, is bit-identical to
//              the reference's multiply-then-subtract (signed zeros included: IEEE gives an fma's exact zero the
//              sign the addition of the exact product would get).
//   q6_k:      y = (d * sc) * (q - 32), two multiplies as in the reference (no fma: the sign of a zero would
//              differ for negative scales).
// Scale halves are converted with F16C, exact for every finite half (NaN payloads come out quieted, which the
// reference's first multiply does anyway).

namespace lime::cpu {
namespace {

enum class kq { q4, q5, q6 };

constexpr int64_t k_qk = 256;                 // elements per super-block
constexpr int k_chunk_blocks = 8;             // super-blocks staged at once
constexpr int k_chunk = k_chunk_blocks * 256; // elements per chunk
constexpr int k_groups = k_chunk / 16;        // 16-element groups per chunk (one scale each)

template <kq T>
constexpr int64_t block_bytes() {
  return T == kq::q4 ? 144 : T == kq::q5 ? 176 : 210;
}

// One row's staged chunk.
struct stage {
  alignas(32) uint8_t q[k_chunk];  // q (q4_k/q5_k, 0..31) or q - 32 as int8 (q6_k), element order
  alignas(32) float a[k_groups];   // q4_k/q5_k: d1 per 32-element sub-block; q6_k: d * sc per 16 elements
  alignas(32) float b[k_groups];   // q4_k/q5_k: m1 per sub-block; unused for q6_k
};

float half_to_float(const uint8_t* p) {
  uint16_t h;
  std::memcpy(&h, p, sizeof h);
  return _mm_cvtss_f32(_mm_cvtph_ps(_mm_cvtsi32_si128(h)));
}

__m256i load256(const uint8_t* p) { return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)); }
void store256(uint8_t* p, __m256i v) { _mm256_store_si256(reinterpret_cast<__m256i*>(p), v); }

// q4_k / q5_k: d1 = d * sc and m1 = dmin * m of the 8 sub-blocks, from the 6-bit scales and mins
// (kquant_scales_x86.h).
void stage_scales_type1(const uint8_t* blk, float* a, float* b) {
  const float d = half_to_float(blk);
  const float dmin = half_to_float(blk + 2);
  const k4_scale_words k = unpack_k4_scales(blk + 4);
  const __m128i sc = _mm_setr_epi32(static_cast<int>(k.sc_lo), static_cast<int>(k.sc_hi), 0, 0);
  const __m128i m = _mm_setr_epi32(static_cast<int>(k.m_lo), static_cast<int>(k.m_hi), 0, 0);
  _mm256_store_ps(a, _mm256_mul_ps(_mm256_set1_ps(d), _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(sc))));
  _mm256_store_ps(b, _mm256_mul_ps(_mm256_set1_ps(dmin), _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(m))));
}

// Bit j of each qh byte moved to bit 4 (16-bit shifts: the mask keeps only bits that stayed in their byte).
template <int J>
__m256i q5_high_bit(__m256i qh) {
  const __m256i bit4 = _mm256_set1_epi8(0x10);
  if (J <= 4) return _mm256_and_si256(_mm256_slli_epi16(qh, 4 - J), bit4);
  return _mm256_and_si256(_mm256_srli_epi16(qh, J - 4), bit4);
}

template <int C>
void stage_q5_chunk(const uint8_t* qs, __m256i qh, uint8_t* q) {
  const __m256i low4 = _mm256_set1_epi8(0x0f);
  const __m256i v = load256(qs + 32 * C);
  const __m256i lo = _mm256_and_si256(v, low4);
  const __m256i hi = _mm256_and_si256(_mm256_srli_epi16(v, 4), low4);
  store256(q + 64 * C, _mm256_or_si256(lo, q5_high_bit<2 * C>(qh)));
  store256(q + 64 * C + 32, _mm256_or_si256(hi, q5_high_bit<2 * C + 1>(qh)));
}

// One super-block of type T -> 256 staged bytes and 16 (a, b) pairs.
template <kq T>
void stage_block(const uint8_t* blk, uint8_t* q, float* a, float* b) {
  const __m256i low4 = _mm256_set1_epi8(0x0f);
  if constexpr (T == kq::q4) {
    stage_scales_type1(blk, a, b);
    const uint8_t* qs = blk + 16;
    for (int c = 0; c < 4; ++c) {  // qs[32c + l]: low nibble -> element 64c + l, high -> 64c + 32 + l
      const __m256i v = load256(qs + 32 * c);
      store256(q + 64 * c, _mm256_and_si256(v, low4));
      store256(q + 64 * c + 32, _mm256_and_si256(_mm256_srli_epi16(v, 4), low4));
    }
  } else if constexpr (T == kq::q5) {
    stage_scales_type1(blk, a, b);
    const __m256i qh = load256(blk + 16);
    const uint8_t* qs = blk + 48;
    stage_q5_chunk<0>(qs, qh, q);
    stage_q5_chunk<1>(qs, qh, q);
    stage_q5_chunk<2>(qs, qh, q);
    stage_q5_chunk<3>(qs, qh, q);
  } else {
    const uint8_t* ql = blk;
    const uint8_t* qh = blk + 128;
    const __m256 d = _mm256_set1_ps(half_to_float(blk + 208));
    const __m128i sc16 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(blk + 192));
    _mm256_store_ps(a, _mm256_mul_ps(d, _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(sc16))));
    _mm256_store_ps(a + 8, _mm256_mul_ps(d, _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_srli_si128(sc16, 8)))));
    const __m256i bits45 = _mm256_set1_epi8(0x30);
    const __m256i bias = _mm256_set1_epi8(32);
    for (int h = 0; h < 2; ++h) {  // element 128h + 32g + l (see block_q6_k)
      const __m256i l0 = load256(ql + 64 * h);
      const __m256i l1 = load256(ql + 64 * h + 32);
      const __m256i hb = load256(qh + 32 * h);
      const __m256i g0 = _mm256_or_si256(_mm256_and_si256(l0, low4),
                                         _mm256_and_si256(_mm256_slli_epi16(hb, 4), bits45));
      const __m256i g1 = _mm256_or_si256(_mm256_and_si256(l1, low4),
                                         _mm256_and_si256(_mm256_slli_epi16(hb, 2), bits45));
      const __m256i g2 = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l0, 4), low4),
                                         _mm256_and_si256(hb, bits45));
      const __m256i g3 = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l1, 4), low4),
                                         _mm256_and_si256(_mm256_srli_epi16(hb, 2), bits45));
      uint8_t* o = q + 128 * h;
      store256(o, _mm256_sub_epi8(g0, bias));
      store256(o + 32, _mm256_sub_epi8(g1, bias));
      store256(o + 64, _mm256_sub_epi8(g2, bias));
      store256(o + 96, _mm256_sub_epi8(g3, bias));
    }
  }
}

// The exact fp32 weights of the 8 staged bytes at q, with scale a (and offset b).
template <kq T>
__m256 weights8(const uint8_t* q, __m256 a, __m256 b) {
  const __m128i b8 = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(q));
  if constexpr (T == kq::q6) {
    return _mm256_mul_ps(a, _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(b8)));
  } else {
    return _mm256_fmsub_ps(a, _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(b8)), b);
  }
}

// Feeds n_groups staged groups of R rows into the R x C accumulators acc[r][c][16 lanes] (in memory between
// chunks) for the columns at x + c * ldx (x already offset to the chunk). NH = 2 runs both 8-lane halves in one
// pass (2RC ymm), NH = 1 one half per pass (RC ymm), so that a larger tile fits the 16 registers. Each lane
// still gets its elements in K order. Columns come as base + stride: with an array of column pointers instead,
// GCC 12.2 -O3 (ipa-modref) dropped the array's stores in the caller and the kernel read garbage.
template <kq T, int R, int C, int NH>
void feed_chunk(const stage* st, const float* x, int64_t ldx, int n_groups, float* acc) {
  for (int h0 = 0; h0 < 2; h0 += NH) {
    __m256 v[R][C][NH];
#pragma GCC unroll 16
    for (int r = 0; r < R; ++r)
#pragma GCC unroll 16
      for (int c = 0; c < C; ++c)
#pragma GCC unroll 2
        for (int h = 0; h < NH; ++h) v[r][c][h] = _mm256_load_ps(acc + (r * C + c) * 16 + 8 * (h0 + h));
    for (int j = 0; j < n_groups; ++j) {
      const int off = 16 * j + 8 * h0;
      __m256 xv[C][NH];
#pragma GCC unroll 16
      for (int c = 0; c < C; ++c)
#pragma GCC unroll 2
        for (int h = 0; h < NH; ++h) xv[c][h] = _mm256_loadu_ps(x + c * ldx + off + 8 * h);
      // Row by row, so only one row's scale and offset are live.
#pragma GCC unroll 16
      for (int r = 0; r < R; ++r) {
        const int js = T == kq::q6 ? j : j >> 1;  // q4_k/q5_k scales are per 32 elements
        const __m256 av = _mm256_broadcast_ss(&st[r].a[js]);
        const __m256 bv = T == kq::q6 ? av : _mm256_broadcast_ss(&st[r].b[js]);
#pragma GCC unroll 2
        for (int h = 0; h < NH; ++h) {
          const __m256 w = weights8<T>(st[r].q + off + 8 * h, av, bv);
#pragma GCC unroll 16
          for (int c = 0; c < C; ++c) v[r][c][h] = _mm256_fmadd_ps(w, xv[c][h], v[r][c][h]);
        }
      }
    }
#pragma GCC unroll 16
    for (int r = 0; r < R; ++r)
#pragma GCC unroll 16
      for (int c = 0; c < C; ++c)
#pragma GCC unroll 2
        for (int h = 0; h < NH; ++h) _mm256_store_ps(acc + (r * C + c) * 16 + 8 * (h0 + h), v[r][c][h]);
  }
}

// A group of nc < N columns (one lane half per pass).
template <kq T, int R, int N>
void feed_tail(int nc, const stage* st, const float* x, int64_t ldx, int n_groups, float* acc) {
  if constexpr (N > 1) {
    if (nc == N - 1) {
      feed_chunk<T, R, N - 1, 1>(st, x, ldx, n_groups, acc);
    } else {
      feed_tail<T, R, N - 1>(nc, st, x, ldx, n_groups, acc);
    }
  }
}

// The canonical halving fold of the 16 lanes at l: 8 (the two ymm), 4, 2, 1, lower lanes as first operands.
float fold16(const float* l) {
  const __m256 t8 = _mm256_add_ps(_mm256_load_ps(l), _mm256_load_ps(l + 8));
  const __m128 t4 = _mm_add_ps(_mm256_castps256_ps128(t8), _mm256_extractf128_ps(t8, 1));
  const __m128 t2 = _mm_add_ps(t4, _mm_movehl_ps(t4, t4));
  return _mm_cvtss_f32(_mm_add_ss(t2, _mm_movehdup_ps(t2)));
}

// Rows of at least this many bytes (K >= 2048 for every K-quant) request, super-block by super-block as they are
// staged, the same super-block of the row two on in their stream, into L2; shorter rows request their successor's
// chunk into L1 at once, as before. A burst of a whole long chunk (27 lines a row for q6_k at K = 2048) did nothing
// on Zen 4: under LIME_ISA=avx2 (one core, in process, bits unchanged, weights cycled through 256 MiB) it ran as
// with no requests at all, q6_k 768x2048 14.4-14.8 GFLOP/s against 25-27 with the matrix in cache. The successor's
// blocks spread over the staging, into L1: 16.4-18.1; into L2: 18.2-19.7; two rows on, into L2: 21.3-22.3 (2048x2048
// 14.1 -> 21.3-22.1, 8192x2048 11.6-14.4 -> 21.2-21.3, 2048x8192 14.2-14.6 -> 22.2-22.3; q4_k 768x2048 18.1-19.7 ->
// 20.7-23.8, 8192x2048 18.6-19.8 -> 23.4-24.5; q5_k 768x2048 15.6 -> 20.0-21.8). At K = 768 (430-630 byte rows) the
// new requests cost 0-15 % (q6_k 32000x768 24.0-25.5 -> 19.9-23.3), so those rows keep the burst.
constexpr int64_t k_long_row_bytes = 1024;

// Requests the lines of the super-block of type T at p into L2 (a request never faults: p may lie past the weights).
template <kq T>
inline void request_block_l2(const uint8_t* p) {
  for (int64_t o = 0; o < block_bytes<T>(); o += 64) _mm_prefetch(reinterpret_cast<const char*>(p + o), _MM_HINT_T1);
}

// Tile shapes. Matvec: 4 rows, both lane halves at once (8 accumulators). Batch: 3 rows x 4 columns, one lane
// half at a time (12 accumulators; each weight vector feeds 4 columns, each x vector 3 rows).
constexpr int k_mv_rows = 4;
constexpr int k_mm_rows = 3;
constexpr int k_mm_cols = 4;
constexpr int k_max_rows = k_mv_rows > k_mm_rows ? k_mv_rows : k_mm_rows;
constexpr int k_col_block = 64;  // columns sharing one staging of a weight chunk

// Rows r0 + r * step (r < R) x all columns: for each block of up to 64 columns, the whole K chunk by chunk; each
// chunk of the R rows is staged once and fed to every C-column group of the block. A matvec takes its rows in
// the CPU's staged_row_order (cpu_tuning.h): row streams (step q, for_row_streams in matvec_x86.h) or adjacent
// rows (step 1), as a batch always does.
template <kq T, int R, int C, int NH>
void rows(const matmul_args& a, int64_t r0, stage* st, int64_t step = 1) {
  constexpr kq TF = T == kq::q6 ? kq::q6 : kq::q4;  // q5_k feeds like q4_k (identical code, one instantiation)
  const int64_t row_bytes = a.k / k_qk * block_bytes<T>();
  const uint8_t* w = static_cast<const uint8_t*>(a.w) + r0 * row_bytes;
  // Offset of each row's successor: the next row of its stream, or the row R on.
  const int64_t next = (step == 1 ? R : 1) * row_bytes;
  const bool long_rows = row_bytes >= k_long_row_bytes;  // requests block by block (k_long_row_bytes)
  alignas(32) float acc[k_col_block * R * 16];  // group of columns [c, c + C): [R][C][16] at acc + c * R * 16
  for (int64_t cb = 0; cb < a.n_cols; cb += k_col_block) {
    const int64_t nc = a.n_cols - cb < k_col_block ? a.n_cols - cb : k_col_block;
    std::memset(acc, 0, sizeof(float) * nc * R * 16);
    for (int64_t k0 = 0; k0 < a.k; k0 += k_chunk) {
      const int nb = static_cast<int>((a.k - k0 < k_chunk ? a.k - k0 : k_chunk) / k_qk);
      for (int r = 0; r < R; ++r) {
        const uint8_t* src = w + r * step * row_bytes + (k0 / k_qk) * block_bytes<T>();
        // The same chunk of each row's successor, requested now: the hardware prefetchers alone leave a matvec
        // streaming from memory well below the core's rate (measured on Zen 3). Long rows: see k_long_row_bytes.
        if (!long_rows) {
          for (int64_t o = 0; o < nb * block_bytes<T>(); o += 64)
            _mm_prefetch(reinterpret_cast<const char*>(src + next + o), _MM_HINT_T0);
        }
        for (int i = 0; i < nb; ++i) {
          const int ns = T == kq::q6 ? 16 : 8;  // scales per super-block
          const uint8_t* blk = src + i * block_bytes<T>();
          if (long_rows) request_block_l2<T>(blk + 2 * next);
          stage_block<T>(blk, st[r].q + i * k_qk, st[r].a + ns * i, st[r].b + ns * i);
        }
      }
      const float* x = a.x + cb * a.k + k0;
      int64_t c = 0;
      for (; c + C <= nc; c += C) feed_chunk<TF, R, C, NH>(st, x + c * a.k, a.k, nb * 16, acc + c * R * 16);
      if (c < nc) feed_tail<TF, R, C>(static_cast<int>(nc - c), st, x + c * a.k, a.k, nb * 16, acc + c * R * 16);
    }
    for (int64_t c = 0; c < nc; c += C) {
      const int64_t cg = nc - c < C ? nc - c : C;
      for (int r = 0; r < R; ++r) {
        for (int64_t j = 0; j < cg; ++j) {
          a.y[(cb + c + j) * a.n_rows + r0 + r * step] = fold16(acc + c * R * 16 + (r * cg + j) * 16);
        }
      }
    }
  }
}

// n_rows rows of type T (row r at w + r * row_bytes, k elements) -> out [n_rows, k] fp32: each super-block staged,
// then its weights turned into their exact values 8 at a time, as the dot-product loop does.
template <kq T>
void dequantize_rows(const uint8_t* w, int64_t row_bytes, int64_t n_rows, int64_t k, float* out) {
  constexpr kq TF = T == kq::q6 ? kq::q6 : kq::q4;
  alignas(32) uint8_t q[k_qk];
  alignas(32) float sa[16], sb[16];
  for (int64_t r = 0; r < n_rows; ++r) {
    for (int64_t i = 0; i < k / k_qk; ++i) {
      stage_block<T>(w + r * row_bytes + i * block_bytes<T>(), q, sa, sb);
      float* o = out + r * k + i * k_qk;
      for (int g = 0; g < k_qk / 8; ++g) {
        const int js = T == kq::q6 ? g >> 1 : g >> 2;  // q6_k: a scale per 16 elements; q4_k/q5_k per 32
        const __m256 av = _mm256_broadcast_ss(&sa[js]);
        _mm256_storeu_ps(o + 8 * g, weights8<TF>(q + 8 * g, av, T == kq::q6 ? av : _mm256_broadcast_ss(&sb[js])));
      }
    }
  }
}

template <kq T>
kstatus run(const matmul_args& a) {
  if (!a.w || !a.x || !a.y) return kstatus::bad_argument;
  if (a.n_rows < 0 || a.k < 0 || a.n_cols < 0 || a.k % k_qk != 0) return kstatus::bad_shape;
  if (a.row_begin < 0 || a.row_end > a.n_rows || a.row_begin > a.row_end) return kstatus::bad_argument;
  // Batches: strips dequantized once into fp32 and read by the float part tiles of matmul_tile.h (when the
  // batch and a row fit its scratch); otherwise the staged tiles below.
  if (a.n_cols > 1) {
    const uint8_t* w = static_cast<const uint8_t*>(a.w);
    const int64_t rb = a.k / k_qk * block_bytes<T>();
    const bool done = tile::run_dequantized_with<vec16_avx2>(a, [&](int64_t r0, int64_t n_rows, float* scratch) {
      dequantize_rows<T>(w + r0 * rb, rb, n_rows, a.k, scratch);
    });
    if (done) return kstatus::ok;
  }
  stage st[k_max_rows];
  if (a.n_cols == 1) {
    for_rows_in_order(
        staged_row_order(), a.row_begin, a.row_end, k_mv_rows,
        [&](int64_t r0, int64_t q) { rows<T, k_mv_rows, 1, 2>(a, r0, st, q); },
        [&](int64_t r1) { rows<T, 1, 1, 2>(a, r1, st); });
    return kstatus::ok;
  }
  int64_t r = a.row_begin;
  for (; r + k_mm_rows <= a.row_end; r += k_mm_rows) rows<T, k_mm_rows, k_mm_cols, 1>(a, r, st);
  for (; r < a.row_end; ++r) rows<T, 1, k_mm_cols, 1>(a, r, st);
  return kstatus::ok;
}

}  // namespace

kstatus matmul_kquant_avx2(const matmul_args& a) {
  switch (a.w_type) {
    case tensor_type::q4_k: return run<kq::q4>(a);
    case tensor_type::q5_k: return run<kq::q5>(a);
    case tensor_type::q6_k: return run<kq::q6>(a);
    default: return kstatus::unsupported_type;
  }
}

}  // namespace lime::cpu
