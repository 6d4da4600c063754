// Small quantized batches (k_min_cols columns up to the lane path's threshold) on a V without part tiles
// (AVX-512): up to 16 weight rows are staged one K chunk at a time as their exact fp32 values, so each weight is
// dequantized once per batch instead of once per column group of the register tiles, and the chunk's weights
// and activations stay in L1 while every column group reads them. Each (row, col) dot product gets tile_rc's
// operations in its order: same bits.
#pragma once
#include <cstddef>
#include <cstdint>

#include "kernels/cpu/matmul.h"

namespace lime::cpu {
namespace {
namespace small {

// Batches from k_min_cols columns at the least: below, staging costs more than the tiles' dequantizing per column
// group (measured in process, 512 x 768 and 256 x 2048: 0.64-0.94x at 2-4 columns and 0.85-1.13x at 8, 1.0-1.26x at
// 12-32, every quantized type).
constexpr int k_min_cols = 12;

// The narrowest batch of weight type t that takes this path. Once the tiles prefetched their rows (matmul_tile.h),
// they ran these types faster at the narrower widths: Zen 5, one thread, weights from DRAM, 2048x768 and 768x2048,
// same bits, tiles (q4_k, q6_k: the staged 4x4 tiles of matmul_kquants_avx512.cpp) against this path at 12 / 16 /
// 24 columns: q8_0 1.29-1.40 / 1.11-1.30 / 0.91-1.08x; q4_k 1.14-1.19 / 1.04-1.12 / 1.03-1.07x (1.0 at 40);
// q6_k 1.02-1.15 / 0.97-1.10 / 0.96-0.97x; q4_1 1.09-1.21 / 0.93-1.08 / 0.81-1.03x; q5_0 0.95-1.05 / 0.81-0.96x.
constexpr int64_t min_cols_for(tensor_type t) {
  switch (t) {
    case tensor_type::q8_0: return 24;
    case tensor_type::q4_k: return 32;
    case tensor_type::q6_k:
    case tensor_type::q4_1: return 16;
    default: return k_min_cols;
  }
}
constexpr int k_max_cols = 48;                    // batches up to this wide (lanes::min_cols(k) <= 48)
constexpr int k_max_rows = 8;                     // rows per tile (V::rows_for) at most
constexpr int64_t k_group_rows = 16;              // rows staged together (tiles that share activations in L1)
constexpr int64_t k_park_bytes = 16 << 10;        // lanes of a group's tiles between chunks (L1)
constexpr int64_t k_park_floats = k_max_rows * k_max_cols * 16;  // the park of one tile at the widest batch
constexpr int64_t k_max_chunk = 1024;             // K elements staged per row at most
constexpr int64_t k_stage_bytes = 16 << 10;       // the staged chunk of a row group (L1)
constexpr int64_t k_x_chunk_bytes = 24 << 10;     // the activations of one chunk, all columns (L1)

// K elements per chunk for `rows` staged rows and n columns: a multiple of 256 (so of every format's block),
// 256 to 1024.
inline int64_t chunk_elems(int64_t rows, int64_t n_cols) {
  int64_t kc = k_max_chunk;
  if (kc > k_stage_bytes / (4 * rows)) kc = k_stage_bytes / (4 * rows);
  if (kc > k_x_chunk_bytes / (4 * n_cols)) kc = k_x_chunk_bytes / (4 * n_cols);
  kc = kc / 256 * 256;
  return kc < 256 ? 256 : kc;
}

// park [R][C][16] (or +0 when first) += `steps` steps of 16 elements: rows w + r * ws times columns x + c * xs,
// step i's element 16 i + l into lane l, one fma each, in K order. Each weight vector serves C fmas, each
// activation vector R.
template <class V, int R, int C>
void feed(const float* w, int64_t ws, const float* x, int64_t xs, int64_t steps, bool first, float* park) {
  using vf = typename V::f;
  vf acc[R][C];
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 8
    for (int c = 0; c < C; ++c) acc[r][c] = first ? V::zero() : V::load_f32(park + (r * C + c) * 16);
  for (int64_t i = 0; i < steps; ++i) {
    vf wv[R];
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r) wv[r] = V::load_f32(w + r * ws + 16 * i);
#pragma GCC unroll 8
    for (int c = 0; c < C; ++c) {
      const vf xv = V::load_f32(x + c * xs + 16 * i);
#pragma GCC unroll 8
      for (int r = 0; r < R; ++r) acc[r][c] = V::fma(wv[r], xv, acc[r][c]);
    }
  }
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 8
    for (int c = 0; c < C; ++c) V::store_f32(park + (r * C + c) * 16, acc[r][c]);
}

// feed for a run-time group width nc (1 <= nc <= C).
template <class V, int R, int C>
void feed_n(int nc, const float* w, int64_t ws, const float* x, int64_t xs, int64_t steps, bool first, float* park) {
  if (nc == C) {
    feed<V, R, C>(w, ws, x, xs, steps, first, park);
  } else if constexpr (C > 1) {
    feed_n<V, R, C - 1>(nc, w, ws, x, xs, steps, first, park);
  }
}

// The shape of a call: weight rows of rb bytes, blocks of block_elems elements in block_bytes bytes.
struct layout {
  const uint8_t* w;
  size_t rb;
  int64_t block_elems, block_bytes;
  const uint8_t* at(int64_t row, int64_t k0) const { return w + row * rb + k0 / block_elems * block_bytes; }
};

// Rows [r0, r0 + m R) x every column of a, as m tiles of R rows. stage(w, rows, n, out) writes n elements of each
// of `rows` weight rows (the first at w, the next lo.rb bytes on) as exact fp32 to out [rows][n]. Per K chunk,
// each column group's activations serve the m tiles from L1. Tile t's column group at column c parks its lanes
// at park + (t * n_cols + c) * R * 16 as [R][nc][16].
template <class V, int R, class Stage>
void row_group(const matmul_args& a, const layout& lo, int64_t r0, int m, int64_t kc, Stage& stage, float* scratch,
               float* park) {
  constexpr int C = V::max_cols;
  const int rows = m * R;
  for (int64_t k0 = 0; k0 < a.k; k0 += kc) {
    const int64_t n = a.k - k0 < kc ? a.k - k0 : kc;
    // The same chunk of the next group's rows, requested while this one is staged and used (hardware
    // prefetchers lag on rows this short).
    if (r0 + 2 * rows <= a.row_end) {
      const int64_t bytes = n / lo.block_elems * lo.block_bytes;
      for (int r = 0; r < rows; ++r) {
        const uint8_t* p = lo.at(r0 + rows + r, k0);
        for (int64_t o = 0; o < bytes; o += 64) __builtin_prefetch(p + o, 0, 3);
      }
    }
    stage(lo.at(r0, k0), rows, n, scratch);
    for (int64_t c = 0; c < a.n_cols; c += C) {
      const int nc = a.n_cols - c < C ? static_cast<int>(a.n_cols - c) : C;
      for (int t = 0; t < m; ++t) {
        feed_n<V, R, C>(nc, scratch + t * R * n, n, a.x + c * a.k + k0, a.k, n / 16, k0 == 0,
                        park + (t * a.n_cols + c) * R * 16);
      }
    }
  }
  // The folds, 16 dot products at a time (V::fold16), the last few one by one.
  const float* src[16];
  float* dst[16];
  int nf = 0;
  auto flush = [&] {
    if (nf == 16) {
      typename V::f v[16];
      alignas(64) float s[16];
#pragma GCC unroll 16
      for (int i = 0; i < 16; ++i) v[i] = V::load_f32(src[i]);
      V::fold16(v, s);
      for (int i = 0; i < 16; ++i) *dst[i] = s[i];
    } else {
      for (int i = 0; i < nf; ++i) *dst[i] = V::fold(V::load_f32(src[i]));
    }
    nf = 0;
  };
  for (int t = 0; t < m; ++t) {
    for (int64_t c = 0; c < a.n_cols; c += C) {
      const int64_t nc = a.n_cols - c < C ? a.n_cols - c : C;
      const float* pk = park + (t * a.n_cols + c) * R * 16;
      for (int r = 0; r < R; ++r) {
        for (int64_t j = 0; j < nc; ++j) {
          src[nf] = pk + (r * nc + j) * 16;
          dst[nf] = a.y + (c + j) * a.n_rows + r0 + t * R + r;
          if (++nf == 16) flush();
        }
      }
    }
  }
  flush();
}

// Tiles per group: up to k_group_rows rows whose lanes fit the park.
inline int tiles_per_group(int R, int64_t n_cols) {
  int m = static_cast<int>(k_group_rows / R);
  while (m > 1 && static_cast<int64_t>(m) * R * n_cols * 16 * 4 > k_park_bytes) --m;
  return m;
}

template <class V, int R, class Stage>
void run_rows(const matmul_args& a, const layout& lo, Stage& stage, float* scratch, float* park) {
  const int m = tiles_per_group(R, a.n_cols);
  int64_t r = a.row_begin;
  for (; r + m * R <= a.row_end; r += m * R) {
    row_group<V, R>(a, lo, r, m, chunk_elems(m * R, a.n_cols), stage, scratch, park);
  }
  const int mt = static_cast<int>((a.row_end - r) / R);
  if (mt > 0) {
    row_group<V, R>(a, lo, r, mt, chunk_elems(mt * R, a.n_cols), stage, scratch, park);
    r += mt * R;
  }
  const int m1 = static_cast<int>(a.row_end - r);
  if (m1 > 0) row_group<V, 1>(a, lo, r, m1, chunk_elems(m1, a.n_cols), stage, scratch, park);
}

// All of a when it is a small batch (min_cols_for(a.w_type) to k_max_cols columns, K a multiple of 16); false (nothing
// written) otherwise. stage: as row_group's.
template <class V, class Stage>
bool run(const matmul_args& a, const layout& lo, Stage&& stage) {
  if (a.n_cols < min_cols_for(a.w_type) || a.n_cols > k_max_cols || a.k <= 0 || a.k % 16 != 0) return false;
  alignas(64) float scratch[k_stage_bytes / 4];
  alignas(64) float park[k_park_floats];
  constexpr int R = V::rows_for(V::max_cols);  // every batch here fills the widest column group
  static_assert(R <= k_max_rows && V::max_cols <= k_min_cols, "park and tile shapes");
  run_rows<V, R>(a, lo, stage, scratch, park);
  return true;
}

}  // namespace small
}  // namespace
}  // namespace lime::cpu
