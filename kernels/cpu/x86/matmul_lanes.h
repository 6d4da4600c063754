// The lane-major batched matmul (AVX2, AVX-512): the canonical order keeps each of the 16 lanes of a (row, col)
// dot product apart until the fold, so each lane l is its own small matmul over the elements k = 16i + l. Packed
// lane by lane, that matmul runs as outer products (a weight broadcast times 16 activation columns) in a
// register tile of V::lane_rows rows x V::lane_panels panels of 16 columns (AVX2 6 rows x 1 panel of 2 ymm,
// AVX-512 12 rows x 2 panels of 1 zmm): each loaded byte feeds 6 to 24 fmas instead of the 3 to 4 of the
// dot-product tiles, so K of 2048 no longer runs out of L2 bandwidth. Same operations per lane: same bits. The
// packed activations' layout does not depend on V.
#pragma once
#include <cstddef>
#include <cstdint>

#include "kernels/cpu/matmul.h"
#include "kernels/cpu/matmul_scratch.h"

namespace lime::cpu {
namespace {

// Bytes [pf, pf_end) requested into L2 ahead of use, `lines` cache lines per step (the tiles of matmul_tile.h and
// the lane path below spread the next strip's or row block's weights over the calls that compute this one).
struct prefetch_cursor {
  const uint8_t* pf = nullptr;
  const uint8_t* pf_end = nullptr;
  int64_t lines = 0;
  bool rows_ahead = false;  // matmul_tile.h: no strip to request, the part tiles request their rows ahead instead
  // Bytes [begin, begin + bytes) over `steps` calls of step(): an even share of the lines each, plus one so the last
  // lines are not left to the last call. Nothing when steps < 1.
  void spread(const uint8_t* begin, int64_t bytes, int64_t steps) {
    pf = begin;
    pf_end = begin + bytes;
    lines = steps > 0 ? (bytes / 64 + steps - 1) / steps + 1 : 0;
  }
  void step() {
    for (int64_t i = 0; i < lines && pf < pf_end; ++i, pf += 64) __builtin_prefetch(pf, 0, 2);
  }
};

namespace lanes {

constexpr int k_cols = 16;                    // activation columns per register tile (V::lane_vecs vectors)
// Batches this wide or wider take the lane path: packing the weights costs about what 16 columns of its tiles
// gain, so narrower batches keep the dot-product tiles (measured at 16-48 columns, stories110M shapes: the lane
// path wins from 32 columns at K = 2048, from 48 at K = 768).
constexpr int64_t min_cols(int64_t k) { return k >= 1536 ? 32 : 48; }
constexpr int64_t k_x_block_bytes = 2048 << 10;  // packed activations of one column block (from L3)
// Row blocks: each lane's packed activations are read once per row block, then serve every tile of the block from
// L1. When a column block's activations fit in L2 (k_x_l2_bytes) that read is cheap and blocks stay small (up to
// 48 rows, 256 KiB packed); larger ones take blocks of up to 192 rows (1 MiB), which read them a quarter as often
// (measured on a Xeon, 1 thread, row chunks as the forward pass makes them: 48 -> 192 rows gained 5-23 % at
// 768x768, 768x2048 and 2048x768 x 512 columns, same bits).
constexpr int64_t k_x_l2_bytes = 1024 << 10;
constexpr int64_t k_small_block_rows = 48, k_small_w_block_bytes = 256 << 10;
constexpr int64_t k_big_block_rows = 192, k_big_w_block_bytes = 1024 << 10;  // rows: multiples of every lane_rows

// Sizes of one call of up to n_cols columns: K in steps of 16 (i), a lane's weights of one panel of `rows` rows
// [kq][rows] (+ up to 8 floats the 8-wide stores spill past the last step), panels per block. Nothing here shrinks
// as n_cols grows, so a plan for the widest batch bounds the buffers of every narrower one.
struct plan {
  int64_t kq;           // k / 16: elements per lane
  int64_t rows;         // weight rows per panel: V::lane_rows
  int64_t w_lane;       // floats per lane of a packed weight panel: kq * rows + 8
  int64_t x_panel;      // floats of a packed activation panel: 16 lanes x kq x 16 columns
  int64_t w_panel;      // floats of a packed weight panel: 16 lanes x w_lane
  int64_t block_cols;   // columns per column block (a multiple of 16): the whole batch when x comes packed
  int64_t block_rows;   // rows per row block (a multiple of rows)
  int64_t k;

  // x_packed: the caller packed x (matmul_args::x_lanes), which then takes no room in the thread buffer, so one
  // column block spans the batch and each weight row is packed once per row block (K = 2048 x 512 columns: 2
  // blocks -> 1, 3-6 % faster on a Xeon).
  plan(int64_t k_, int64_t n_cols, int rows_, bool x_packed) : rows(rows_), k(k_) {
    kq = k / 16;
    w_lane = kq * rows + 8;
    x_panel = 16 * kq * k_cols;
    w_panel = 16 * w_lane;
    const int64_t xp = k_x_block_bytes / (x_panel * 4), batch_panels = (n_cols + k_cols - 1) / k_cols;
    block_cols = (x_packed || xp >= batch_panels ? batch_panels : xp < 1 ? 1 : xp) * k_cols;
    const bool big = block_cols * k * 4 > k_x_l2_bytes;
    const int64_t max_tiles = (big ? k_big_block_rows : k_small_block_rows) / rows;
    const int64_t wp = (big ? k_big_w_block_bytes : k_small_w_block_bytes) / (w_panel * 4);
    block_rows = (wp < 1 ? 1 : wp > max_tiles ? max_tiles : wp) * rows;
  }
  // Floats of the thread buffer: packed activations, packed weights, the tiles' lanes for np panels of 16
  // columns (park: [np][8][block_rows][16]), one tile of dequantized rows.
  size_t x_floats() const { return static_cast<size_t>(block_cols / k_cols * x_panel); }
  size_t w_floats() const { return static_cast<size_t>(block_rows / rows * w_panel); }
  size_t park_floats(int np) const { return static_cast<size_t>(np * 8 * block_rows * k_cols); }
  size_t rows_floats() const { return static_cast<size_t>(rows * k); }
  // Floats of a whole thread buffer: packed weights and the tiles' lanes, plus the packed activations when the
  // caller did not pack them, plus a tile of dequantized rows when the weights are not fp32 already.
  size_t buffer_floats(int np, bool with_x, bool with_rows) const {
    return (with_x ? x_floats() : 0) + w_floats() + park_floats(np) + (with_rows ? rows_floats() : 0);
  }
};

// Columns [c, c + n) of x (n <= 16; missing columns read as zeros) -> xp [lane][i][16].
template <class V>
void pack_x(const plan& pl, const float* x, int64_t n, float* xp) {
  alignas(64) static constexpr float zeros[16] = {};
  const float* src[16];
  for (int c = 0; c < k_cols; ++c) src[c] = c < n ? x + c * pl.k : nullptr;
  for (int64_t i = 0; i < pl.kq; ++i) {
    for (int cb = 0; cb < k_cols; cb += 8) {
      for (int kb = 0; kb < 16; kb += 8) {
        const float* s[8];
        float* d[8];
        for (int j = 0; j < 8; ++j) {
          s[j] = src[cb + j] ? src[cb + j] + 16 * i + kb : zeros;
          d[j] = xp + ((kb + j) * pl.kq + i) * k_cols + cb;
        }
        V::p_transpose8(s, d);
      }
    }
  }
}

// Panels [p0, p1) of x [n_cols, k] (16 columns each, the last one padded with zeros) -> xl, panel p at
// xl + p * 16 * k as pack_x lays it out: the layout matmul_args::x_lanes holds (matmul_pack_lanes).
template <class V>
void pack_panels(const float* x, int64_t k, int64_t n_cols, int64_t p0, int64_t p1, float* xl) {
  const plan pl(k, n_cols, V::lane_rows, true);
  for (int64_t p = p0; p < p1; ++p) {
    const int64_t c = p * k_cols;
    pack_x<V>(pl, x + c * k, n_cols - c < k_cols ? n_cols - c : k_cols, xl + p * pl.x_panel);
  }
}

// Rows [0, n) of rows (n <= V::lane_rows, row stride k floats) -> wp [lane][i][lane_rows] (rows past n hold
// copies of row 0), 8 rows at a time; each 8-float store may spill into step i + 1, which is written after it.
// Packing with a 16 x 16 zmm transpose instead (4 steps of 12 rows = 3 transposes, no padding rows; half the
// shuffles a float): f32 x 128 columns from DRAM 1.01-1.07x on one Zen 5 core, other types 1.00-1.01x, stories110M
// F32 pp128 within the noise (1098 against 1089 t/s, medians of 5): packing waits on the rows' reads, not shuffles.
template <class V>
void pack_w(const plan& pl, const float* rows, int64_t n, float* wp) {
  constexpr int R = V::lane_rows, R8 = (R + 7) / 8 * 8;
  const float* src[R8];
  for (int r = 0; r < R8; ++r) src[r] = rows + (r < n ? r : 0) * pl.k;
  for (int64_t i = 0; i < pl.kq; ++i) {
    for (int rb = 0; rb < R; rb += 8) {
      for (int kb = 0; kb < 16; kb += 8) {
        const float* s[8];
        float* d[8];
        for (int j = 0; j < 8; ++j) {
          s[j] = src[rb + j] + 16 * i + kb;
          d[j] = wp + (kb + j) * pl.w_lane + i * R + rb;
        }
        V::p_transpose8(s, d);
      }
    }
  }
}

// One lane of a lane_rows x (16 NP) tile, NP panels of 16 columns (panel q's packed lane at x + q * xs):
// s[r][c] = sum over i of w[i][r] * x[i][c] by fmas in i order from +0, stored to out + q * os (lanes 0-7), or
// the fold's first step for lanes 8-15: out = out + s (out holding lane l - 8). Each weight broadcast feeds NP
// fmas (V::lane_panels: AVX-512 takes 2, so a step is 2 loads and 12 broadcasts for 24 fmas; one panel would
// leave it bound by its 13 loads per 12 fmas).
template <class V, bool AddInto, int NP>
void lane_tile(const float* w, const float* x, int64_t xs, int64_t kq, float* out, int64_t os) {
  using vc = typename V::c;
  constexpr int R = V::lane_rows, NV = V::lane_vecs * NP, W = k_cols / V::lane_vecs;
  vc acc[R][NV];
#pragma GCC unroll 16
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) acc[r][v] = V::c_zero();
  for (int64_t i = 0; i < kq; ++i) {
    vc xv[NV];
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) xv[v] = V::c_load(x + (v / V::lane_vecs) * xs + i * k_cols + (v % V::lane_vecs) * W);
#pragma GCC unroll 16
    for (int r = 0; r < R; ++r) {
      const vc wv = V::c_bcast(w + i * R + r);
#pragma GCC unroll 4
      for (int v = 0; v < NV; ++v) acc[r][v] = V::c_fma(wv, xv[v], acc[r][v]);
    }
  }
#pragma GCC unroll 16
  for (int r = 0; r < R; ++r) {
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) {
      float* o = out + (v / V::lane_vecs) * os + r * k_cols + (v % V::lane_vecs) * W;
      if constexpr (AddInto) acc[r][v] = V::c_add(V::c_load(o), acc[r][v]);
      V::c_store(o, acc[r][v]);
    }
  }
}

// Lane l of the tile: lanes 0-7 store, lanes 8-15 add into lane l - 8 (the fold's first step).
template <class V, int NP>
void lane_tile_at(int l, const float* w, const float* x, int64_t xs, int64_t kq, float* out, int64_t os) {
  if (l < 8) {
    lane_tile<V, false, NP>(w, x, xs, kq, out, os);
  } else {
    lane_tile<V, true, NP>(w, x, xs, kq, out, os);
  }
}

// The rest of the canonical fold (lanes l += l + 4, then + 2, + 1) of park [8][park_rows][16] (lane slot l holds
// lanes l + l + 8 already), for rows [r, r + n) (n <= 8) -> s[n][16].
template <class V>
void fold8(const float* park, int64_t park_rows, int64_t r, int64_t n, float (*s)[k_cols]) {
  using vc = typename V::c;
  constexpr int NV = V::lane_vecs, W = k_cols / NV;
  for (int64_t i = 0; i < n; ++i) {
    vc t[8][NV];
#pragma GCC unroll 8
    for (int l = 0; l < 8; ++l)
#pragma GCC unroll 2
      for (int v = 0; v < NV; ++v) t[l][v] = V::c_load(park + (l * park_rows + r + i) * k_cols + v * W);
#pragma GCC unroll 8
    for (int w = 4; w >= 1; w /= 2) {
#pragma GCC unroll 8
      for (int l = 0; l < w; ++l)
#pragma GCC unroll 2
        for (int v = 0; v < NV; ++v) t[l][v] = V::c_add(t[l][v], t[l + w][v]);
    }
#pragma GCC unroll 2
    for (int v = 0; v < NV; ++v) V::c_store(s[i] + v * W, t[0][v]);
  }
}

// Folded rows [0, n_rows) x columns [0, n_cols) -> y[c][r] (row stride ys): 8 rows at a time, transposed so
// each full column group is written as 8 consecutive floats.
template <class V>
void fold_to_y(const float* park, int64_t park_rows, int64_t n_rows, int64_t n_cols, float* y, int64_t ys) {
  alignas(64) float s[8][k_cols];
  for (int64_t r = 0; r < n_rows; r += 8) {
    const int64_t nr = n_rows - r < 8 ? n_rows - r : 8;
    fold8<V>(park, park_rows, r, nr, s);
    for (int cb = 0; cb < k_cols; cb += 8) {
      if (nr == 8 && cb + 8 <= n_cols) {
        const float* src[8];
        float* dst[8];
        for (int j = 0; j < 8; ++j) {
          src[j] = s[j] + cb;
          dst[j] = y + (cb + j) * ys + r;
        }
        V::p_transpose8(src, dst);
      } else {
        for (int64_t c = cb; c < cb + 8 && c < n_cols; ++c)
          for (int64_t i = 0; i < nr; ++i) y[c * ys + r + i] = s[i][c];
      }
    }
  }
}

// All of a, if its shape suits the lane path (K a multiple of 16, a batch of at least min_cols(k)) and the
// thread buffer could be had; false (nothing written) otherwise. rows(r0, n, scratch) returns rows [r0, r0 + n)
// (n <= V::lane_rows) of the weights as fp32 [n, k]: a pointer into the weights (f32: InPlace, no scratch) or into
// scratch, written there. Thread buffer: at most ~2 MiB of packed activations (none when the caller packed them:
// a.x_lanes) + up to 1 MiB of packed weights + the tiles' lanes (up to 192 KiB) + one tile of scratch rows.
template <class V, bool InPlace, class Rows>
bool run(const matmul_args& a, Rows&& rows) {
  static_assert(V::has_lanes, "V has no lane tile");
  constexpr int R = V::lane_rows;
  if (a.k <= 0 || a.k % 16 != 0 || a.n_cols < min_cols(a.k)) return false;
  const bool packed = a.x_lanes != nullptr;
  const plan pl(a.k, a.n_cols, R, packed);
  constexpr int NP = V::lane_panels;
  const size_t x_floats = packed ? 0 : pl.x_floats();
  float* buf = matmul_thread_scratch(pl.buffer_floats(NP, !packed, !InPlace));
  if (!buf) return false;
  float* wp = buf + x_floats;
  // Lanes l + l + 8 of each (row, column) of a tile pass, per panel: [NP][8][block_rows][16].
  float* park = wp + pl.w_floats();
  const int64_t park_panel = 8 * pl.block_rows * k_cols;
  float* scratch = park + pl.park_floats(NP);
  const uint8_t* w = static_cast<const uint8_t*>(a.w);  // the weights as stored: rb bytes a row
  const size_t rb = tensor_row_bytes(a.w_type, a.k);

  for (int64_t c0 = 0; c0 < a.n_cols; c0 += pl.block_cols) {
    const int64_t c1 = a.n_cols - c0 < pl.block_cols ? a.n_cols : c0 + pl.block_cols;
    const int64_t n_panels = (c1 - c0 + k_cols - 1) / k_cols;
    const float* xp = packed ? a.x_lanes + c0 / k_cols * pl.x_panel : buf;
    for (int64_t p = 0; p < n_panels && !packed; ++p) {
      const int64_t c = c0 + p * k_cols;
      pack_x<V>(pl, a.x + c * a.k, c1 - c < k_cols ? c1 - c : k_cols, buf + p * pl.x_panel);
    }
    for (int64_t r0 = a.row_begin; r0 < a.row_end; r0 += pl.block_rows) {
      const int64_t n_rows = a.row_end - r0 < pl.block_rows ? a.row_end - r0 : pl.block_rows;
      const int64_t n_tiles = (n_rows + R - 1) / R;
      // The next row block's weights are requested while this block computes, a few lines before each tile call:
      // its rows are then packed from L2. f32 rows are packed straight from the weights, which otherwise stalled on
      // memory (2048x768 x 64 columns, one thread: 146 GFLOP/s from DRAM against 202 from cache).
      prefetch_cursor pf;
      const int64_t n_next = a.row_end - (r0 + n_rows) < pl.block_rows ? a.row_end - (r0 + n_rows) : pl.block_rows;
      const int64_t tile_calls = 16 * n_tiles * ((n_panels + NP - 1) / NP);
      if (n_next > 0) pf.spread(w + (r0 + n_rows) * rb, n_next * static_cast<int64_t>(rb), tile_calls);
      for (int64_t t = 0; t < n_tiles; ++t) {
        const int64_t nr = n_rows - t * R < R ? n_rows - t * R : R;
        pack_w<V>(pl, rows(r0 + t * R, nr, scratch), nr, wp + t * pl.w_panel);
      }
      for (int64_t p = 0; p < n_panels; p += NP) {
        const float* xpp = xp + p * pl.x_panel;
        const bool full = p + NP <= n_panels;  // else one panel (the only remainder when NP is 2)
        for (int l = 0; l < 16; ++l) {
          for (int64_t t = 0; t < n_tiles; ++t) {
            pf.step();
            const float* wl = wp + t * pl.w_panel + l * pl.w_lane;
            const float* xl = xpp + l * pl.kq * k_cols;
            float* o = park + ((l % 8) * pl.block_rows + t * R) * k_cols;
            if (full) {
              lane_tile_at<V, NP>(l, wl, xl, pl.x_panel, pl.kq, o, park_panel);
            } else {
              lane_tile_at<V, 1>(l, wl, xl, pl.x_panel, pl.kq, o, park_panel);
            }
          }
        }
        for (int q = 0; q < NP && p + q < n_panels; ++q) {
          const int64_t c = c0 + (p + q) * k_cols;
          fold_to_y<V>(park + q * park_panel, pl.block_rows, n_rows, c1 - c < k_cols ? c1 - c : k_cols,
                       a.y + c * a.n_rows + r0, a.n_rows);
        }
      }
    }
  }
  return true;
}

// Floats of x packed for the lane path (matmul_args::x_lanes), 0 when the shape does not take it.
inline int64_t packed_floats(int64_t k, int64_t n_cols) {
  if (k <= 0 || k % 16 != 0 || n_cols < min_cols(k)) return 0;
  return (n_cols + k_cols - 1) / k_cols * k_cols * k;
}

// Bytes of V's thread buffer for batches of up to n_cols columns when x comes packed: one row block of packed
// weights and of the tiles' lanes, one tile of dequantized rows.
template <class V>
uint64_t thread_buffer_bytes(int64_t k, int64_t n_cols) {
  if (k <= 0 || k % 16 != 0) return 0;
  const plan pl(k, n_cols > min_cols(k) ? n_cols : min_cols(k), V::lane_rows, true);
  return pl.buffer_floats(V::lane_panels, false, true) * sizeof(float) + 64;  // + the allocation's rounding
}

}  // namespace lanes
}  // namespace
}  // namespace lime::cpu
