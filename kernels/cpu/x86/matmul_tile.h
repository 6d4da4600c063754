// The one body of lime's SIMD matmuls, written against a 16-lane fp32 vector traits type V (vec16_avx2.h,
// vec16_avx512.h; tests add a scalar one), so every ISA walks K in the canonical order the same way. Never
// allocates. Everything is in an unnamed namespace on purpose: each ISA file compiles a private copy with its
// own flags, so the linker can never pick an AVX-512 instantiation for code that runs elsewhere.
#pragma once
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "kernels/cpu/matmul.h"
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
      // Matvec streams each weight once: request the same bytes four tiles on (4R rows) as this block crosses
      // into a new cache line; the hardware prefetchers alone lag behind on short rows (measured).
      if constexpr (C == 1) {
        if (((b * F::bytes) & 63) < static_cast<int64_t>(F::bytes)) __builtin_prefetch(p + 4 * R * rb, 0, 3);
      }
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

// One column tile of C columns at c over rows [r0, r1): tiles of V::rows_for(C) rows, then single rows.
template <class V, class F, int C>
void rows_of(const matmul_args& a, size_t rb, int64_t r0, int64_t r1, int64_t c) {
  constexpr int R = V::rows_for(C);
  const uint8_t* w = static_cast<const uint8_t*>(a.w);
  const float* x = a.x + c * a.k;
  float* y = a.y + c * a.n_rows;
  int64_t r = r0;
  for (; r + R <= r1; r += R) tile_rc<V, F, R, C>(w + r * rb, rb, x, a.k, y + r, a.n_rows);
  for (; r < r1; ++r) tile_rc<V, F, 1, C>(w + r * rb, rb, x, a.k, y + r, a.n_rows);
}

// rows_of for a run-time column count n (1 <= n <= C).
template <class V, class F, int C>
void rows_of_n(const matmul_args& a, size_t rb, int64_t r0, int64_t r1, int64_t c, int n) {
  if (n == C) {
    rows_of<V, F, C>(a, rb, r0, r1, c);
  } else if constexpr (C > 1) {
    rows_of_n<V, F, C - 1>(a, rb, r0, r1, c, n);
  }
}

constexpr int64_t k_strip_rows = 24;          // weight rows reused (from L1/L2) across a column block's tiles
constexpr int64_t k_col_block_bytes = 96 << 10;  // activations of one column block (stay in L2)

template <class F>
size_t row_bytes(int64_t k) {
  return F::elem_bytes != 0 ? static_cast<size_t>(k) * F::elem_bytes : static_cast<size_t>(k / F::elems) * F::bytes;
}

// All of a (checked by the caller) in register tiles. Batches (prefill) reuse each dequantized weight vector
// across the tile's columns; a variant that dequantized K chunks into an L1 scratch for whole column blocks
// measured no faster on Zen 3 (AVX2) and was dropped.
template <class V, class F>
void run_tiles(const matmul_args& a) {
  const size_t rb = row_bytes<F>(a.k);
  constexpr int64_t cmax = V::max_cols;
  int64_t cb = a.k > 0 ? k_col_block_bytes / (a.k * 4) : a.n_cols;
  cb = cb < cmax ? cmax : cb / cmax * cmax;
  for (int64_t c0 = 0; c0 < a.n_cols; c0 += cb) {
    const int64_t c1 = a.n_cols - c0 < cb ? a.n_cols : c0 + cb;
    for (int64_t r0 = a.row_begin; r0 < a.row_end; r0 += k_strip_rows) {
      const int64_t r1 = a.row_end - r0 < k_strip_rows ? a.row_end : r0 + k_strip_rows;
      for (int64_t c = c0; c < c1; c += cmax) {
        const int n = c1 - c < cmax ? static_cast<int>(c1 - c) : static_cast<int>(cmax);
        rows_of_n<V, F, V::max_cols>(a, rb, r0, r1, c, n);
      }
    }
  }
}

template <class V, class F>
kstatus run(const matmul_args& a) {
  if (!a.w || !a.x || !a.y) return kstatus::bad_argument;
  if (a.n_rows < 0 || a.k < 0 || a.n_cols < 0 || a.k % F::type_elems != 0) return kstatus::bad_shape;
  if (a.row_begin < 0 || a.row_end > a.n_rows || a.row_begin > a.row_end) return kstatus::bad_argument;
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
