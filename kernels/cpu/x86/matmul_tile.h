// The one body of lime's SIMD matmuls, written against a 16-lane fp32 vector traits type V (vec16_avx2.h,
// vec16_avx512.h; tests add a scalar one), so every ISA walks K in the canonical order the same way. Never
// allocates (the dequantized strips of quantized batches use a 64 KiB stack array). Everything is in an unnamed
// namespace on purpose: each ISA file compiles a private copy with its own flags, so the linker can never pick an
// AVX-512 instantiation for code that runs elsewhere.
#pragma once
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <type_traits>

#include "kernels/cpu/matmul.h"
#include "kernels/cpu/x86/matmul_lanes.h"
#include "kernels/cpu/x86/matmul_small.h"
#include "kernels/status.h"
#include "kernels/tensor_type.h"

namespace lime::cpu {
namespace {
namespace tile {

inline uint16_t read_u16(const uint8_t* p) {
  uint16_t v;
  std::memcpy(&v, p, sizeof v);
  return v;
}
inline uint32_t read_u32(const uint8_t* p) {
  uint32_t v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

// ---- Weight formats: one block of a row -> `halves` vectors of 16 exact fp32 weights (the reference values,
// by the reference's operations in its order: kernels/cpu/quants_legacy.cpp, fp16.cpp).
// elems: K elements per block (16 or 32); bytes: block size; type_elems: the type's own block (alignment of K);
// prep: per-block constants; half(h): elements 16h .. 16h+15 of the block.

enum class float_kind { f32, f16, bf16 };

template <class V, float_kind Kind>
struct fmt_float {
  static constexpr int elems = 16, halves = 1, type_elems = 1;
  static constexpr int elem_bytes = Kind == float_kind::f32 ? 4 : 2;  // nonzero: a float format (has K tails)
  static constexpr int bytes = 16 * elem_bytes;
  struct blk {};
  static blk prep(const uint8_t*) { return {}; }
  static typename V::f half(const blk&, const uint8_t* p, int) {
    if constexpr (Kind == float_kind::f32) return V::load_f32(p);
    else if constexpr (Kind == float_kind::f16) return V::load_f16(p);
    else return V::load_bf16(p);
  }
};
template <class V> using fmt_f32 = fmt_float<V, float_kind::f32>;
template <class V> using fmt_f16 = fmt_float<V, float_kind::f16>;
template <class V> using fmt_bf16 = fmt_float<V, float_kind::bf16>;

template <class V>
struct fmt_legacy_base {
  static constexpr int elems = 32, halves = 2, type_elems = 32, elem_bytes = 0;
};

// q8_0: (float)q * d.
template <class V>
struct fmt_q8_0 : fmt_legacy_base<V> {
  static constexpr int bytes = 34;
  struct blk { typename V::f d; };
  static blk prep(const uint8_t* p) { return {V::set1(V::half_to_float(read_u16(p)))}; }
  static typename V::f half(const blk& b, const uint8_t* p, int h) { return V::mul(V::i8(p + 2 + 16 * h), b.d); }
};

// Type-0 formats (q4_0: x = (q - 8) * d, q5_0: (q - 16) * d) as fma(q, d, -8d): q*d and 8d are exact, and so is
// (q - 8) * d (at most 5 + 11 significant bits), so the one rounding of the fma returns that exact value: the same
// bits as the reference's cvt(q - 8) * d, one vector op fewer. Only an infinite d breaks the identity (inf - inf),
// so such a block takes the reference's own operations (a predictable branch, never taken on real weights).
template <class V>
struct type0_scale {
  typename V::f d, off;  // d and -bias * d
  bool finite;
  static type0_scale make(uint16_t h, float bias) {
    const float d = V::half_to_float(h);
    return {V::set1(d), V::set1(-bias * d), (h & 0x7c00u) != 0x7c00u};
  }
  typename V::f apply(typename V::f q, float bias) const {
    if (finite) return V::fma(q, d, off);
    return V::mul(V::sub(q, V::set1(bias)), d);
  }
};

// q4_0: (float)(q - 8) * d.
template <class V>
struct fmt_q4_0 : fmt_legacy_base<V> {
  static constexpr int bytes = 18;
  using blk = type0_scale<V>;
  static blk prep(const uint8_t* p) { return blk::make(read_u16(p), 8.f); }
  static typename V::f half(const blk& b, const uint8_t* p, int h) {
    return b.apply(h == 0 ? V::u4_lo(p + 2) : V::u4_hi(p + 2), 8.f);
  }
};

// Type-1 formats: ((float)q * d) + m, one rounding in the sum (the product is exact), so fma(q, d, m) is the
// same value for every d and m, inf and NaN included.
// q4_1: 4-bit q.
template <class V>
struct fmt_q4_1 : fmt_legacy_base<V> {
  static constexpr int bytes = 20;
  struct blk { typename V::f d, m; };
  static blk prep(const uint8_t* p) {
    return {V::set1(V::half_to_float(read_u16(p))), V::set1(V::half_to_float(read_u16(p + 2)))};
  }
  static typename V::f half(const blk& b, const uint8_t* p, int h) {
    return V::fma(h == 0 ? V::u4_lo(p + 4) : V::u4_hi(p + 4), b.d, b.m);
  }
};

// q5_0: (float)(q - 16) * d, q = nibble | qh bit << 4.
template <class V>
struct fmt_q5_0 : fmt_legacy_base<V> {
  static constexpr int bytes = 22;
  struct blk { type0_scale<V> s; uint32_t qh; };
  static blk prep(const uint8_t* p) { return {type0_scale<V>::make(read_u16(p), 16.f), read_u32(p + 2)}; }
  static typename V::f half(const blk& b, const uint8_t* p, int h) {
    return b.s.apply(h == 0 ? V::u5_lo(p + 6, b.qh & 0xffffu) : V::u5_hi(p + 6, b.qh >> 16), 16.f);
  }
};

// q5_1: ((float)q * d) + m, 5-bit q.
template <class V>
struct fmt_q5_1 : fmt_legacy_base<V> {
  static constexpr int bytes = 24;
  struct blk { typename V::f d, m; uint32_t qh; };
  static blk prep(const uint8_t* p) {
    return {V::set1(V::half_to_float(read_u16(p))), V::set1(V::half_to_float(read_u16(p + 2))), read_u32(p + 4)};
  }
  static typename V::f half(const blk& b, const uint8_t* p, int h) {
    return V::fma(h == 0 ? V::u5_lo(p + 8, b.qh & 0xffffu) : V::u5_hi(p + 8, b.qh >> 16), b.d, b.m);
  }
};

// ---- The register tile: R weight rows x C activation rows, one 16-lane accumulator per (row, col), fed in
// K order (element k into lane k % 16), folded by halving. w: first of the R rows (row stride rb bytes);
// x: first of the C activation rows (stride k floats); y: &y[c0][r0] (row stride ys floats).
template <class V, class F, int R, int C>
void tile_rc(const uint8_t* w, size_t rb, const float* x, int64_t k, float* y, int64_t ys) {
  using vf = typename V::f;
  vf acc[R][C];
#pragma GCC unroll 16
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 16
    for (int c = 0; c < C; ++c) acc[r][c] = V::zero();

  const int64_t nb = k / F::elems;
  for (int64_t b = 0; b < nb; ++b) {
    const float* xb = x + b * F::elems;
#pragma GCC unroll 16
    for (int r = 0; r < R; ++r) {
      const uint8_t* p = w + r * rb + b * F::bytes;
      // A tile streams each weight once per column group: request the same bytes four tiles on (4R rows) as this
      // block crosses into a new cache line; the hardware prefetchers alone lag behind on short rows. Measured
      // with C = 1 (matvec) and, on Zen 5 from DRAM, for batches of 2-8 columns: q8_0 2048x768 x 2-4 columns
      // 31-46 -> 85-160 GFLOP/s, f16 x 4 49 -> 130-144, f32 x 4-8 1.26-1.4x. Weights already in cache lose up to
      // 0.75x (f32 x 2, one prefetch per 16 weights), which real models, larger than the caches, do not see.
      if (((b * F::bytes) & 63) < static_cast<int64_t>(F::bytes)) __builtin_prefetch(p + 4 * R * rb, 0, 3);
      const typename F::blk blk = F::prep(p);
#pragma GCC unroll 2
      for (int h = 0; h < F::halves; ++h) {
        const vf wv = F::half(blk, p, h);
#pragma GCC unroll 16
        for (int c = 0; c < C; ++c) acc[r][c] = V::fma(wv, V::load_f32(xb + c * k + 16 * h), acc[r][c]);
      }
    }
  }

  // Float formats only (elems 16, type_elems 1): the last k % 16 elements, masked into lanes 0..rem-1.
  const int rem = static_cast<int>(k - nb * F::elems);
  if constexpr (F::elem_bytes != 0) {
    if (rem > 0) {
      float xt[C][16];
#pragma GCC unroll 16
      for (int c = 0; c < C; ++c) {
        for (int i = 0; i < 16; ++i) xt[c][i] = 0.f;
        std::memcpy(xt[c], x + c * k + nb * 16, static_cast<size_t>(rem) * sizeof(float));
      }
      constexpr int eb = F::elem_bytes;
#pragma GCC unroll 16
      for (int r = 0; r < R; ++r) {
        uint8_t wt[16 * eb] = {};
        std::memcpy(wt, w + r * rb + nb * F::bytes, static_cast<size_t>(rem) * eb);
        const vf wv = F::half(F::prep(wt), wt, 0);
#pragma GCC unroll 16
        for (int c = 0; c < C; ++c) acc[r][c] = V::fma_first(wv, V::load_f32(xt[c]), acc[r][c], rem);
      }
    }
  }

#pragma GCC unroll 16
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 16
    for (int c = 0; c < C; ++c) y[c * ys + r] = V::fold(acc[r][c]);
}

// ---- The part tile (V::parts > 1: AVX2), for float weights in batches. Lanes l and l + 8 of the canonical 16
// never mix until the fold, so each (row, col) accumulator can run as V::parts passes of 16 / parts lanes: one
// ymm per (row, col) instead of two, so a 3 x 4 tile fits the 16 registers (3 weight and 1 activation loads
// per 12 fmas, against 10 per 12 in the 2 x 3 tile above). K goes in chunks of k_part_chunk elements: part 0
// then part 1 of a chunk, so the second pass finds the chunk's rows and columns in L1; the lanes are parked
// in a small array between passes. Each lane still gets its elements in K order: same bits as tile_rc.
constexpr int64_t k_part_chunk = 256;

template <class V, class F, int R, int C>
void tile_parts(const uint8_t* w, size_t rb, const float* x, int64_t k, float* y, int64_t ys, bool ahead) {
  using vp = typename V::p;
  constexpr int n_parts = V::parts, lanes = 16 / V::parts;
  alignas(64) float park[R][C][16];  // the 16 canonical lanes of each (row, col) between passes
  const int64_t nb = k / F::elems;
  constexpr int64_t chunk_blocks = k_part_chunk / F::elems;
  for (int64_t b0 = 0; b0 < nb; b0 += chunk_blocks) {
    const int64_t b1 = nb - b0 < chunk_blocks ? nb : b0 + chunk_blocks;
    for (int j = 0; j < n_parts; ++j) {
      vp acc[R][C];
#pragma GCC unroll 16
      for (int r = 0; r < R; ++r)
#pragma GCC unroll 16
        for (int c = 0; c < C; ++c) acc[r][c] = b0 == 0 ? V::p_zero() : V::p_load(&park[r][c][lanes * j]);
      for (int64_t b = b0; b < b1; ++b) {
#pragma GCC unroll 2
        for (int h = 0; h < F::halves; ++h) {
          // Part j of each row's 16 weights (the other part's loads and conversions are dead code).
          vp wv[R];
#pragma GCC unroll 16
          for (int r = 0; r < R; ++r) {
            const uint8_t* pw = w + r * rb + b * F::bytes;
            // With `ahead`, the first pass requests the rows four tiles on, as tile_rc does.
            if (ahead && j == 0 && h == 0 && ((b * F::bytes) & 63) < static_cast<int64_t>(F::bytes))
              __builtin_prefetch(pw + 4 * R * rb, 0, 3);
            wv[r] = V::part(F::half(F::prep(pw), pw, h), j);
          }
          const float* xb = x + b * F::elems + 16 * h + lanes * j;
#pragma GCC unroll 16
          for (int c = 0; c < C; ++c) {
            const vp xv = V::p_load(xb + c * k);
#pragma GCC unroll 16
            for (int r = 0; r < R; ++r) acc[r][c] = V::p_fma(wv[r], xv, acc[r][c]);
          }
        }
      }
#pragma GCC unroll 16
      for (int r = 0; r < R; ++r)
#pragma GCC unroll 16
        for (int c = 0; c < C; ++c) V::p_store(&park[r][c][lanes * j], acc[r][c]);
    }
  }
#pragma GCC unroll 16
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 16
    for (int c = 0; c < C; ++c) y[c * ys + r] = nb > 0 ? V::fold(V::load_f32(park[r][c])) : 0.f;
}

// n_rows weight rows at w (row stride rb) x C activation rows at x (stride k) -> y (row stride ys): tiles of R
// rows (part tiles if Parts), then single rows; pf (if any) steps once per full tile.
template <class V, class F, int R, int C, bool Parts>
void tile_rows(const uint8_t* w, size_t rb, int64_t n_rows, const float* x, int64_t k, float* y, int64_t ys,
               prefetch_cursor* pf) {
  const bool ahead = pf && pf->rows_ahead;
  auto tile = [&](auto rows, int64_t r) {
    if constexpr (Parts) tile_parts<V, F, decltype(rows)::value, C>(w + r * rb, rb, x, k, y + r, ys, ahead);
    else tile_rc<V, F, decltype(rows)::value, C>(w + r * rb, rb, x, k, y + r, ys);
  };
  int64_t r = 0;
  for (; r + R <= n_rows; r += R) {
    tile(std::integral_constant<int, R>{}, r);
    if (pf) pf->step();
  }
  for (; r < n_rows; ++r) tile(std::integral_constant<int, 1>{}, r);
}

// tile_rows for a run-time column count n (1 <= n <= C), in the tile height of its kind.
template <class V, class F, bool Parts, int C>
void tile_rows_n(int n, const uint8_t* w, size_t rb, int64_t n_rows, const float* x, int64_t k, float* y,
                 int64_t ys, prefetch_cursor* pf) {
  if (n == C) {
    tile_rows<V, F, Parts ? V::part_rows : V::rows_for(C), C, Parts>(w, rb, n_rows, x, k, y, ys, pf);
  } else if constexpr (C > 1) {
    tile_rows_n<V, F, Parts, C - 1>(n, w, rb, n_rows, x, k, y, ys, pf);
  }
}

constexpr int64_t k_strip_rows = 24;          // weight rows reused (from L1/L2) across a column block's tiles
constexpr int64_t k_col_block_bytes = 96 << 10;  // activations of one column block (stay in L2)

template <class F>
size_t row_bytes(int64_t k) {
  return F::elem_bytes != 0 ? static_cast<size_t>(k) * F::elem_bytes : static_cast<size_t>(k / F::elems) * F::bytes;
}

// Columns per block: activations of about `bytes` (k fp32 each), a multiple of the group width g, at least g.
inline int64_t col_block(int64_t k, int64_t n_cols, int64_t bytes, int64_t g) {
  const int64_t cb = k > 0 ? bytes / (k * 4) : n_cols;
  return cb < g ? g : cb / g * g;
}

// ---- Quantized weights in batches on a V with the lane path. Batches of at least lanes::min_cols(k) columns take
// it (matmul_lanes.h), given the rows dequantized a block at a time. Smaller ones (decode of a few sequences), on
// a V with part tiles (AVX2): a strip of rows is dequantized once into an fp32 scratch (the reference's exact
// values, so the same bits), which the float part tile then reads for every column group of the block: the
// dequantizing work is shared by all the block's columns instead of the 3 of a 16-lane tile.
constexpr int64_t k_scratch_floats = 16384;  // 64 KiB on the stack: rows of the strip x k
constexpr int64_t k_min_scratch_cols = 8;    // fewer columns keep the 16-lane tiles (no scratch traffic)
// Activations of one column block here: twice the tiles' (the weights now come from the 64 KiB scratch, not from
// a strip in L2; measured 1.05-1.18x at k = 2048 over 96 KiB).
constexpr int64_t k_scratch_col_block_bytes = 192 << 10;

template <class V, class F>
void dequantize_strip(const uint8_t* w, size_t rb, int64_t n_rows, int64_t k, float* out) {
  const int64_t nb = k / F::elems;
  for (int64_t r = 0; r < n_rows; ++r) {
    for (int64_t b = 0; b < nb; ++b) {
      const uint8_t* p = w + r * rb + b * F::bytes;
      const typename F::blk blk = F::prep(p);
      float* o = out + r * k + b * F::elems;
#pragma GCC unroll 2
      for (int h = 0; h < F::halves; ++h) V::store_f32(o + 16 * h, F::half(blk, p, h));
    }
  }
}

// The batches run_dequantized_with leaves to the part tiles (V::parts > 1): strips dequantized into a stack
// scratch, read by the float part tiles for every column group of a block.
template <class V, class Dequant>
bool run_part_scratch(const matmul_args& a, Dequant& dequant) {
  const int64_t fit = a.k > 0 ? k_scratch_floats / a.k : 0;
  const int64_t strip = (fit < k_strip_rows ? fit : k_strip_rows) / V::part_rows * V::part_rows;
  if (a.n_cols < k_min_scratch_cols || strip < V::part_rows) return false;
  alignas(64) float scratch[k_scratch_floats];
  const uint8_t* sw = reinterpret_cast<const uint8_t*>(scratch);
  const size_t srb = static_cast<size_t>(a.k) * sizeof(float);
  constexpr int64_t gc = V::part_cols;
  const int64_t cb = col_block(a.k, a.n_cols, k_scratch_col_block_bytes, gc);
  const uint8_t* w = static_cast<const uint8_t*>(a.w);  // the weights as stored: rb bytes a row
  const size_t rb = tensor_row_bytes(a.w_type, a.k);
  for (int64_t c0 = 0; c0 < a.n_cols; c0 += cb) {
    const int64_t c1 = a.n_cols - c0 < cb ? a.n_cols : c0 + cb;
    for (int64_t r0 = a.row_begin; r0 < a.row_end; r0 += strip) {
      const int64_t n_rows = a.row_end - r0 < strip ? a.row_end - r0 : strip;
      dequant(r0, n_rows, scratch);
      // The next strip's stored weights, requested a slice per tile while this strip's tiles run, so that its
      // dequantizing reads them from L2 (AVX2 q8_0 2048x768 x 8 columns from DRAM: 61 -> 92 GFLOP/s).
      prefetch_cursor pf;
      const int64_t n_next = a.row_end - (r0 + n_rows) < strip ? a.row_end - (r0 + n_rows) : strip;
      const int64_t tiles = (c1 - c0 + gc - 1) / gc * (n_rows / V::part_rows);
      if (n_next > 0) pf.spread(w + (r0 + n_rows) * rb, n_next * static_cast<int64_t>(rb), tiles);
      for (int64_t c = c0; c < c1; c += gc) {
        const int n = c1 - c < gc ? static_cast<int>(c1 - c) : static_cast<int>(gc);
        tile_rows_n<V, fmt_f32<V>, true, gc>(n, sw, srb, n_rows, a.x + c * a.k, a.k, a.y + c * a.n_rows + r0,
                                             a.n_rows, &pf);
      }
    }
  }
  return true;
}

// All of a through the scratch, strip by strip: dequant(r0, n_rows, scratch) writes rows [r0, r0 + n_rows) as
// [n_rows, k] fp32 with the reference's exact values. False (nothing done) when the batch is too small or a row
// too long for the scratch. Also the K-quants' batch path (matmul_kquants_avx2.cpp / _avx512.cpp). Without part
// tiles (AVX-512) only the lane path's batches take it.
template <class V, class Dequant>
bool run_dequantized_with(const matmul_args& a, Dequant&& dequant) {
  if constexpr (V::has_lanes) {
    if (lanes::run<V, false>(a, [&](int64_t r0, int64_t n_rows, float* rows) {
          dequant(r0, n_rows, rows);
          return static_cast<const float*>(rows);
        })) {
      return true;
    }
  }
  if constexpr (V::parts > 1) return run_part_scratch<V>(a, dequant);
  return false;
}

template <class V, class F>
bool run_dequantized(const matmul_args& a) {
  const size_t rb = row_bytes<F>(a.k);
  const uint8_t* w = static_cast<const uint8_t*>(a.w);
  return run_dequantized_with<V>(a, [&](int64_t r0, int64_t n_rows, float* scratch) {
    dequantize_strip<V, F>(w + r0 * rb, rb, n_rows, a.k, scratch);
  });
}

// Float weights in batches on a V with the lane path (matmul_lanes.h) reads f32 rows in place and
// converts f16/bf16 rows a row block at a time.
template <class V, class F>
bool run_float_lanes(const matmul_args& a) {
  const uint8_t* w = static_cast<const uint8_t*>(a.w);
  const size_t rb = row_bytes<F>(a.k);
  constexpr bool in_place = std::is_same_v<F, fmt_f32<V>>;
  return lanes::run<V, in_place>(a, [&](int64_t r0, int64_t n_rows, float* rows) {
    if constexpr (in_place) {
      (void)n_rows;
      (void)rows;
      return reinterpret_cast<const float*>(w + r0 * rb);
    } else {
      dequantize_strip<V, F>(w + r0 * rb, rb, n_rows, a.k, rows);
      return static_cast<const float*>(rows);
    }
  });
}

// All of a (checked by the caller) in register tiles. Batches (prefill) reuse each dequantized weight vector
// across the tile's columns. Float weights on a V with parts take part tiles (K a multiple of 16); columns left
// over from the part tiles' groups take the 16-lane tiles. (Batches of lanes::min_cols(k) or more columns on such a V
// take the lane path before this; smaller quantized batches normally go through
// run_dequantized first: with the old 16-lane tiles a scratch measured no faster, with the part tiles 1.0-2.8x:
// q8_0 least, q4_0 1.4-1.8x, q5_0 most.)
template <class V, class F>
void run_tiles(const matmul_args& a) {
  const size_t rb = row_bytes<F>(a.k);
  constexpr int64_t cmax = V::max_cols;
  constexpr bool parts = V::parts > 1 && F::elem_bytes != 0;
  const bool use_parts = parts && a.k % 16 == 0;
  const int64_t gcols = use_parts ? V::part_cols : cmax;                 // columns per group
  const int64_t trows = use_parts ? V::part_rows : V::rows_for(cmax);  // rows per tile
  const int64_t cb = col_block(a.k, a.n_cols, k_col_block_bytes, gcols);
  const uint8_t* w = static_cast<const uint8_t*>(a.w);
  for (int64_t c0 = 0; c0 < a.n_cols; c0 += cb) {
    const int64_t c1 = a.n_cols - c0 < cb ? a.n_cols : c0 + cb;
    const int64_t groups = (c1 - c0 + gcols - 1) / gcols;
    for (int64_t r0 = a.row_begin; r0 < a.row_end; r0 += k_strip_rows) {
      const int64_t r1 = a.row_end - r0 < k_strip_rows ? a.row_end : r0 + k_strip_rows;
      // The next strip's weights come from memory while this strip is reused from L2 by every column group;
      // requested a slice per tile so the strip is in L2 before its first group needs it.
      // One column group streams the strip once: its part tiles then request their rows ahead themselves (AVX2
      // f16 2048x768 x 4 columns from DRAM: 45 -> 113 GFLOP/s; with more groups, or rows from a scratch, that
      // lost 5-14 %).
      prefetch_cursor pf;
      pf.rows_ahead = groups == 1;
      if (groups > 1) {
        const int64_t r2 = a.row_end - r1 < k_strip_rows ? a.row_end : r1 + k_strip_rows;
        pf.spread(w + r1 * rb, (r2 - r1) * static_cast<int64_t>(rb), groups * ((r1 - r0) / trows));
      }
      auto y_at = [&](int64_t c) { return a.y + c * a.n_rows + r0; };
      int64_t c = c0;
      if constexpr (parts) {
        if (use_parts) {
          for (; c + V::part_cols <= c1; c += V::part_cols) {
            tile_rows<V, F, V::part_rows, V::part_cols, true>(w + r0 * rb, rb, r1 - r0, a.x + c * a.k, a.k, y_at(c),
                                                              a.n_rows, &pf);
          }
        }
      }
      for (; c < c1; c += cmax) {
        const int n = c1 - c < cmax ? static_cast<int>(c1 - c) : static_cast<int>(cmax);
        tile_rows_n<V, F, false, V::max_cols>(n, w + r0 * rb, rb, r1 - r0, a.x + c * a.k, a.k, y_at(c), a.n_rows,
                                              &pf);
      }
    }
  }
}

// Small quantized batches on a V with the lane path and no part tiles (AVX-512): rows staged a K chunk at a time
// as their exact fp32 values (matmul_small.h). Float weights keep the tiles, which convert them in registers
// (measured: staging f16 was 0.7-1.0x of the tiles at 8-24 columns).
template <class V, class F>
bool run_small(const matmul_args& a) {
  const small::layout lo{static_cast<const uint8_t*>(a.w), row_bytes<F>(a.k), F::elems, F::bytes};
  return small::run<V>(a, lo, [&](const uint8_t* w, int n_rows, int64_t n, float* out) {
    dequantize_strip<V, F>(w, lo.rb, n_rows, n, out);
  });
}

template <class V, class F>
kstatus run(const matmul_args& a) {
  if (!a.w || !a.x || !a.y) return kstatus::bad_argument;
  if (a.n_rows < 0 || a.k < 0 || a.n_cols < 0 || a.k % F::type_elems != 0) return kstatus::bad_shape;
  if (a.row_begin < 0 || a.row_end > a.n_rows || a.row_begin > a.row_end) return kstatus::bad_argument;
  if constexpr ((V::has_lanes || V::parts > 1) && F::elem_bytes == 0) {
    if (run_dequantized<V, F>(a)) return kstatus::ok;
  }
  if constexpr (V::has_lanes && F::elem_bytes != 0) {
    if (run_float_lanes<V, F>(a)) return kstatus::ok;
  }
  if constexpr (V::has_lanes && V::parts == 1 && F::elem_bytes == 0) {
    if (run_small<V, F>(a)) return kstatus::ok;
  }
  run_tiles<V, F>(a);
  return kstatus::ok;
}

// The float and legacy-quant types this body covers; unsupported_type for any other.
template <class V>
kstatus run_float(const matmul_args& a) {
  switch (a.w_type) {
    case tensor_type::f32: return run<V, fmt_f32<V>>(a);
    case tensor_type::f16: return run<V, fmt_f16<V>>(a);
    case tensor_type::bf16: return run<V, fmt_bf16<V>>(a);
    default: return kstatus::unsupported_type;
  }
}

template <class V>
kstatus run_legacy(const matmul_args& a) {
  switch (a.w_type) {
    case tensor_type::q8_0: return run<V, fmt_q8_0<V>>(a);
    case tensor_type::q4_0: return run<V, fmt_q4_0<V>>(a);
    case tensor_type::q4_1: return run<V, fmt_q4_1<V>>(a);
    case tensor_type::q5_0: return run<V, fmt_q5_0<V>>(a);
    case tensor_type::q5_1: return run<V, fmt_q5_1<V>>(a);
    default: return kstatus::unsupported_type;
  }
}

}  // namespace tile
}  // namespace
}  // namespace lime::cpu
