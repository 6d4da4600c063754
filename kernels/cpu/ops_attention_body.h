// The one SIMD body of attention's chunks (attention.h's canonical chunk order, bit for bit), over the traits of
// ops_body.h; the walk over a call's items and the entry point are in ops_attention.h. Every (query token, query
// head) pair is an item; up to k_joint_items items are walked chunk by chunk together: those of one kv head, so each
// chunk of K and V comes from memory once per set of items rather than once per head and token (a prompt's tokens
// share their K/V reads), or in decode the heads of several kv heads, which then read each row's adjacent slices
// together. Every item's own operations and their order stay the reference's.
#pragma once
#include <cstdint>

#include "kernels/cpu/attention.h"
#include "kernels/cpu/math.h"
#include "kernels/cpu/ops_attention_rows.h"
#include "kernels/cpu/ops_body.h"
#include "kernels/status.h"
#include "kernels/tensor_type.h"

namespace lime::cpu {
namespace {
namespace ops {

constexpr int32_t k_joint_items = 16;      // (query, head) items walked together, at most
constexpr int32_t k_rows_per_pass = 32;     // V rows weighed for every joint item before moving on (stay in L1)
constexpr int64_t k_joint_o_floats = 2048;  // o_c (and O) of the joint items on the two-pass path
constexpr int64_t k_saved_floats = 16384;   // per-chunk results the ISA entry points keep on their stack (64 KiB)

// One (query token, query head) pair.
struct item {
  const float* q;  // [head_dim]
  float* out;      // [head_dim]
  int32_t n_pos;   // attends positions [0, n_pos)
  int32_t kvh;     // the kv head it reads
};

inline int32_t n_chunks_of(int32_t n_pos) { return (n_pos - 1) / k_attn_chunk + 1; }

// The joint items it[0 .. ni) over the chunk starting at position j0, in kv head order from kvh (the first item's)
// to kvh + n_kvh - 1: s[k * k_attn_chunk + i] are item k's scores, then its e_i; o[k] its o_c; n the most positions
// of the chunk any item sees. Items of several kv heads (decode: n_kvh > 1) read the rows position by position
// across their heads' adjacent slices instead of one head's slice of every row after the other.
struct joint {
  const item* it;
  int32_t ni, kvh, n_kvh, j0, n;
  float* s;
  float* const* o;
  int32_t seen(int32_t k) const {  // positions of this chunk item k attends (0: none)
    const int32_t left = it[k].n_pos - j0;
    return left <= 0 ? 0 : left < k_attn_chunk ? left : k_attn_chunk;
  }
};

inline joint make_joint(const item* it, int32_t ni, int32_t c, float* s, float* const* o) {
  joint g{it, ni, it[0].kvh, it[ni - 1].kvh - it[0].kvh + 1, c * k_attn_chunk, 0, s, o};
  for (int32_t k = 0; k < ni; ++k) g.n = g.seen(k) > g.n ? g.seen(k) : g.n;
  return g;
}

// Lane-major scores (V::lane_scores): 16 positions of K staged transposed, kt[d][p] = k_p[d], so that the
// canonical lane l of 16 dot products is one vector over the positions (acc[l][p]) and the fold is 15 vertical
// adds for 16 scores, where folding each dot product's vector costs about 6 shuffles and adds per score. The
// transpose is paid once per kv head and shared by the joint items, hence the floor on their number.
constexpr int32_t k_lane_group = 16;      // positions per lane-major group
constexpr int32_t k_lane_max_hd = 256;    // head_dim kt holds (16 KiB)
// Fewer joint items fold per score: the transpose costs more than it saves. Measured (decode at 4096 positions,
// head_dim 64, in-process A/B): 1 item 20 % slower lane-major, 2 items even, 4 items (GQA 32/8) 4-11 % faster.
constexpr int32_t k_lane_min_items = 4;

// The next 16 rows of k -> kt[d][16] for d < hd (a multiple of 16); f16 rows are converted (exactly) into tmp
// [16][hd] first.
template <class V, class T>
void stage_k_lanes(row_cursor<T>& k, int32_t hd, float* kt, float* tmp) {
  const float* rows[k_lane_group];
  for (int p = 0; p < k_lane_group; ++p) {
    const T* r = k.next();
    if constexpr (sizeof(T) == sizeof(float)) {
      rows[p] = r;
    } else {
      float* t = tmp + p * hd;
      for (int32_t d = 0; d < hd; d += 16) V::store(t + d, ld<V>(r + d));
      rows[p] = t;
    }
  }
  for (int32_t d0 = 0; d0 < hd; d0 += 8) {
    for (int p0 = 0; p0 < k_lane_group; p0 += 8) {
      const float* s[8];
      float* d[8];
      for (int j = 0; j < 8; ++j) {
        s[j] = rows[p0 + j] + d0;
        d[j] = kt + (d0 + j) * k_lane_group + p0;
      }
      V::transpose8(s, d);
    }
  }
}

// s[p] = dot_canonical(q, k_p) * scale for the 16 positions staged in kt: lane l's fmas in d order from +0, then
// the halving fold with the lower lane first, each step one vector add over the 16 positions.
template <class V>
void lane_scores16(const float* q, const float* kt, int32_t hd, float scale, float* s) {
  using f = typename V::f;
  f acc[16];
#pragma GCC unroll 16
  for (int l = 0; l < 16; ++l) acc[l] = V::zero();
  for (int32_t d0 = 0; d0 < hd; d0 += 16) {
    const float* kd = kt + d0 * k_lane_group;
#pragma GCC unroll 16
    for (int l = 0; l < 16; ++l) acc[l] = V::fma(V::set1(q[d0 + l]), V::load(kd + l * k_lane_group), acc[l]);
  }
  // Written out: GCC kept the looped fold's accumulators on the stack.
  const f h0 = V::add(acc[0], acc[8]), h1 = V::add(acc[1], acc[9]), h2 = V::add(acc[2], acc[10]),
          h3 = V::add(acc[3], acc[11]), h4 = V::add(acc[4], acc[12]), h5 = V::add(acc[5], acc[13]),
          h6 = V::add(acc[6], acc[14]), h7 = V::add(acc[7], acc[15]);
  const f u0 = V::add(h0, h4), u1 = V::add(h1, h5), u2 = V::add(h2, h6), u3 = V::add(h3, h7);
  const f w0 = V::add(u0, u2), w1 = V::add(u1, u3);
  V::store(s, V::mul(V::add(w0, w1), V::set1(scale)));
}

// s_k[i] = dot_canonical(q_k, k_{j0+i}) * scale; 16 positions at a time lane-major when that pays (above), then
// four at a time, folded together (V::fold4); each group of rows used by every joint item while it is in L1. An
// item whose range ends inside a group gets the group's later scores too (rows that exist for the other items);
// it never reads them.
template <class V, class T>
void scores(const attention_args& a, const joint& g) {
  using f = typename V::f;
  const int32_t hd = a.head_dim, full = hd & ~15, rem = hd & 15;
  row_cursor<T> k(a, a.k_blocks, g.j0, g.kvh, g.j0 + g.n, g.n_kvh);
  int32_t i = 0;
  if constexpr (V::lane_scores) {
    // Every kv head of the set needs k_lane_min_items items (decode with GQA: each group of 16 positions is staged
    // once per kv head, the row slices of the other kv heads next to it in L1).
    bool lanes = rem == 0 && hd <= k_lane_max_hd && g.n >= k_lane_group;
    for (int32_t h0 = 0, h1 = 0; lanes && h0 < g.ni; h0 = h1) {
      while (h1 < g.ni && g.it[h1].kvh == g.it[h0].kvh) ++h1;
      lanes = h1 - h0 >= k_lane_min_items;
    }
    if (lanes) {
      alignas(64) float kt[k_lane_max_hd * k_lane_group];
      alignas(64) float tmp[sizeof(T) == sizeof(float) ? 1 : k_lane_max_hd * k_lane_group];
      for (; i + k_lane_group <= g.n; i += k_lane_group) {
        for (int32_t h0 = 0, h1 = 0; h0 < g.ni; h0 = h1) {
          while (h1 < g.ni && g.it[h1].kvh == g.it[h0].kvh) ++h1;
          if (g.n_kvh == 1) {
            stage_k_lanes<V, T>(k, hd, kt, tmp);
          } else {
            row_cursor<T> kh(a, a.k_blocks, g.j0 + i, g.it[h0].kvh, g.j0 + g.n);
            stage_k_lanes<V, T>(kh, hd, kt, tmp);
          }
          for (int32_t h = h0; h < h1; ++h) {
            if (i < g.seen(h)) lane_scores16<V>(g.it[h].q, kt, hd, a.scale, g.s + h * k_attn_chunk + i);
          }
        }
      }
      if (g.n_kvh > 1) k = row_cursor<T>(a, a.k_blocks, g.j0 + i, g.kvh, g.j0 + g.n, g.n_kvh);
    }
  }
  for (; i + 4 <= g.n; i += 4) {
    const T* r0 = k.next();
    const T* r1 = k.next();
    const T* r2 = k.next();
    const T* r3 = k.next();
    for (int32_t h = 0; h < g.ni; ++h) {
      if (i >= g.seen(h)) continue;
      const float* q = g.it[h].q;
      const int64_t o = static_cast<int64_t>(g.it[h].kvh - g.kvh) * hd;  // the item's slice of the rows
      f c0 = V::zero(), c1 = V::zero(), c2 = V::zero(), c3 = V::zero();
      for (int32_t d = 0; d < full; d += 16) {
        const f qv = V::load(q + d);
        c0 = V::fma(qv, ld<V>(r0 + o + d), c0);
        c1 = V::fma(qv, ld<V>(r1 + o + d), c1);
        c2 = V::fma(qv, ld<V>(r2 + o + d), c2);
        c3 = V::fma(qv, ld<V>(r3 + o + d), c3);
      }
      if (rem) {
        const f qv = V::load_n(q + full, rem);
        c0 = V::fma_first(qv, ld_n<V>(r0 + o + full, rem), c0, rem);
        c1 = V::fma_first(qv, ld_n<V>(r1 + o + full, rem), c1, rem);
        c2 = V::fma_first(qv, ld_n<V>(r2 + o + full, rem), c2, rem);
        c3 = V::fma_first(qv, ld_n<V>(r3 + o + full, rem), c3, rem);
      }
      float t[4];
      V::fold4(c0, c1, c2, c3, t);
      float* s = g.s + h * k_attn_chunk + i;
      for (int j = 0; j < 4; ++j) s[j] = t[j] * a.scale;
    }
  }
  for (; i < g.n; ++i) {
    const T* k0 = k.next();
    for (int32_t h = 0; h < g.ni; ++h) {
      if (i >= g.seen(h)) continue;
      const float* q = g.it[h].q;
      const T* kr = k0 + static_cast<int64_t>(g.it[h].kvh - g.kvh) * hd;
      f acc = V::zero();
      for (int32_t d = 0; d < full; d += 16) acc = V::fma(V::load(q + d), ld<V>(kr + d), acc);
      if (rem) acc = V::fma_first(V::load_n(q + full, rem), ld_n<V>(kr + full, rem), acc, rem);
      g.s[h * k_attn_chunk + i] = V::fold(acc) * a.scale;
    }
  }
}

// Rows [i0, i0 + cnt) of the chunk's V for kv head g.kvh -> out [cnt][head_dim] fp32 (f16: exact conversion).
template <class V, class T>
void stage_rows(const attention_args& a, const joint& g, int32_t i0, int32_t cnt, float* out) {
  const int32_t hd = a.head_dim;
  row_cursor<T> v(a, a.v_blocks, g.j0 + i0, g.kvh, g.j0 + g.n);
  for (int32_t r = 0; r < cnt; ++r, out += hd) {
    const T* src = v.next();
    int32_t d = 0;
    for (; d + 16 <= hd; d += 16) V::store(out + d, ld<V>(src + d));
    if (d < hd) V::store_n(out + d, ld_n<V>(src + d, hd - d), hd - d);
  }
}

// The reference's running maximum: r = init, then r = s[i] when s[i] > r, for i in [0, n). Only NaNs (skipped
// unless first) and ties of +0 with -0 make the order matter; without them the result is the largest value, whose
// bits are unique unless it is zero. So the vector maximum stands when no NaN was seen and it is not zero, and
// the sequential loop decides otherwise.
template <class V>
float scan_max(float init, const float* s, int32_t n) {
  using f = typename V::f;
  f mx = V::set1(init), nan = V::zero();  // nan: a lane that met a NaN keeps one
  int32_t i = 0;
  for (; i + 16 <= n; i += 16) {
    const f v = V::load(s + i);
    mx = V::select(V::cmp_gt(v, mx), v, mx);
    nan = V::select(V::is_nan(v), v, nan);
  }
  float lanes[16], nans[16];
  V::store(lanes, mx);
  V::store(nans, nan);
  float r = init;
  bool any_nan = init != init;
  for (int l = 0; l < 16; ++l) {
    if (lanes[l] > r) r = lanes[l];
    any_nan |= nans[l] != nans[l];
  }
  for (; i < n; ++i) {
    if (s[i] > r) r = s[i];
    any_nan |= s[i] != s[i];
  }
  if (!any_nan && r != 0.0f) return r;
  r = init;
  for (i = 0; i < n; ++i) {
    if (s[i] > r) r = s[i];
  }
  return r;
}

struct chunk_sums {
  float m;  // m_c: max score of the chunk (sequential)
  float l;  // l_c: sequential sum of e_j
};

// One chunk for the joint items that see it: scores, m_c, e_j = exp_f32(s_j - m_c), l_c into cs[k], o_c into
// g.o[k]; m_all[k] (when given) is carried on over the scores by the reference's rule. Items that see none of the
// chunk are left alone.
template <class V, class T>
void chunk(const attention_args& a, const joint& g, float* m_all, chunk_sums* cs) {
  using f = typename V::f;
  scores<V, T>(a, g);
  for (int32_t h = 0; h < g.ni; ++h) {
    const int32_t n = g.seen(h);
    if (n == 0) continue;
    float* s = g.s + h * k_attn_chunk;
    const float m_c = scan_max<V>(s[0], s + 1, n - 1);
    if (m_all) m_all[h] = g.j0 == 0 ? m_c : scan_max<V>(m_all[h], s, n);  // position 0 starts M
    cs[h] = chunk_sums{m_c, 0.0f};
    const f mc = V::set1(m_c);
    int32_t i = 0;
    for (; i + 16 <= n; i += 16) V::store(s + i, exp16<V>(V::sub(V::load(s + i), mc)));
    if (i < n) V::store_n(s + i, exp16<V>(V::sub(V::load_n(s + i, n - i), mc)), n - i);
  }
  // V in blocks of up to V::weigh_vectors vectors (enough independent fma chains to hide the fma latency: each
  // accumulator's chain runs through every position in order), k_rows_per_pass rows at a time for every item.
  const int32_t hd = a.head_dim, width = 16 * V::weigh_vectors;
  // One item, or items of several kv heads (decode): each reads its rows in place, no copy.
  const bool staged = g.ni > 1 && g.n_kvh == 1 && hd <= k_stage_floats;
  const int32_t per_pass = staged && k_stage_floats / hd < k_rows_per_pass ? static_cast<int32_t>(k_stage_floats / hd)
                                                                          : k_rows_per_pass;
  alignas(64) float stage[k_stage_floats];
  // Items weighed a few at a time (weigh_rows_multi): over the staged rows two that share a kv head, when half the
  // V block holds a head; in decode, items of adjacent kv heads, as many as V::multi_vectors accumulators hold (at
  // least two), each reading its slice of the same rows.
  constexpr int multi_nv = V::multi_vectors / 2;
  int group = 0;
  if (staged && hd % 16 == 0 && hd <= 16 * (V::weigh_vectors / 2)) group = 2;
  if (g.n_kvh > 1 && hd % 16 == 0 && hd <= 16 * multi_nv) group = multi_group(V::multi_vectors, hd / 16);
  for (int32_t i0 = 0; i0 < g.n; i0 += per_pass) {
    if (staged) stage_rows<V, T>(a, g, i0, g.n - i0 < per_pass ? g.n - i0 : per_pass, stage);
    auto rows_of = [&](int32_t h) {  // rows of this pass item h weighs
      const int32_t left_rows = g.seen(h) - i0;
      return left_rows <= 0 ? 0 : left_rows < per_pass ? left_rows : per_pass;
    };
    for (int32_t h = 0; h < g.ni; ++h) {
      const int32_t cnt = rows_of(h);
      if (cnt == 0) continue;
      if (group >= 2) {
        int gn = 1;
        while (gn < group && h + gn < g.ni && rows_of(h + gn) == cnt) ++gn;
        const float* e[4];
        float* o[4];
        float* l[4];
        int64_t off[4];
        for (int k = 0; k < gn; ++k) {
          e[k] = g.s + (h + k) * k_attn_chunk;
          o[k] = g.o[h + k];
          l[k] = &cs[h + k].l;
          off[k] = static_cast<int64_t>(g.it[h + k].kvh - g.it[h].kvh) * hd;  // 0 when staged (one kv head)
        }
        if (staged) {
          weigh_rows_multi_nv<V, float, multi_nv>(staged_rows{stage, hd}, hd / 16, gn, e, off, i0, cnt, o, l);
        } else {
          const int32_t span = g.it[h + gn - 1].kvh - g.it[h].kvh + 1;  // kv heads the group reads
          const row_cursor<T> rows(a, a.v_blocks, g.j0 + i0, g.it[h].kvh, g.j0 + g.n, span);
          weigh_rows_multi_nv<V, T, multi_nv>(rows, hd / 16, gn, e, off, i0, cnt, o, l);
        }
        h += gn - 1;
        continue;
      }
      for (int32_t d0 = 0; d0 < hd; d0 += width) {
        const int32_t left = hd - d0;
        const int nv = left >= width ? V::weigh_vectors : (left + 15) / 16;
        const int last = left >= width ? 16 : left - 16 * (nv - 1);
        float* l = d0 == 0 ? &cs[h].l : nullptr;
        const float* e = g.s + h * k_attn_chunk;
        if (staged) {
          weigh_rows_nv<V, float, V::weigh_vectors>(staged_rows{stage, hd}, e, i0, cnt, d0, nv, last, g.o[h], l);
        } else {
          const row_cursor<T> rows(a, a.v_blocks, g.j0 + i0, g.it[h].kvh, g.j0 + g.n);
          weigh_rows_nv<V, T, V::weigh_vectors>(rows, e, i0, cnt, d0, nv, last, g.o[h], l);
        }
      }
    }
  }
}

// Chunk c's share, merged in chunk order: w_c = exp_f32(m_c - M); L = fma(l_c, w_c, L); O[d] = fma(o_c[d], w_c, O[d]).
template <class V>
void merge(chunk_sums cs, const float* o_c, float m_all, int32_t hd, float* l_sum, float* o_sum) {
  using f = typename V::f;
  const float w = exp_f32(cs.m - m_all);
  *l_sum = V::fma_s(cs.l, w, *l_sum);
  const f wv = V::set1(w);
  int32_t d = 0;
  for (; d + 16 <= hd; d += 16) V::store(o_sum + d, V::fma(V::load(o_c + d), wv, V::load(o_sum + d)));
  if (d < hd) V::store_n(o_sum + d, V::fma(V::load_n(o_c + d, hd - d), wv, V::load_n(o_sum + d, hd - d)), hd - d);
}

// out[d] = O[d] / L.
template <class V>
void finish(int32_t hd, float* out, const float* o_sum, float l_sum) {
  const typename V::f lv = V::set1(l_sum);
  int32_t d = 0;
  for (; d + 16 <= hd; d += 16) V::store(out + d, V::div(V::load(o_sum + d), lv));
  if (d < hd) V::store_n(out + d, V::div(V::load_n(o_sum + d, hd - d), lv), hd - d);
}

}  // namespace ops
}  // namespace
}  // namespace lime::cpu
