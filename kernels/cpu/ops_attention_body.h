// The one SIMD body of attention's chunks (attention.h's canonical chunk order, bit for bit), over the traits of
// ops_body.h; the walk over a call's items and the entry point are in ops_attention.h. Every (query token, query
// head) pair that reads the same kv head is an item; up to k_joint_items items are walked chunk by chunk together,
// so each chunk of K and V comes from memory once per set of items rather than once per head and token (a
// prompt's tokens share their K/V reads); every item's own operations and their order stay the reference's.
#pragma once
#include <cstdint>

#include "kernels/cpu/attention.h"
#include "kernels/cpu/math.h"
#include "kernels/cpu/ops_body.h"
#include "kernels/status.h"
#include "kernels/tensor_type.h"

namespace lime::cpu {
namespace {
namespace ops {

// Rows are float (f32 KV) or uint16_t (f16 KV, converted exactly on load).
template <class V>
typename V::f ld(const float* p) { return V::load(p); }
template <class V>
typename V::f ld(const uint16_t* p) { return V::load_h(p); }
template <class V>
typename V::f ld_n(const float* p, int n) { return V::load_n(p, n); }
template <class V>
typename V::f ld_n(const uint16_t* p, int n) { return V::load_h_n(p, n); }

// Positions ahead of its reads a cursor with an end requests its rows (see row_cursor). Measured with lime-bench
// kernels on one Zen 4 core, decode attention at 4096 positions, head_dim 64: stories110M's 12 heads 9.6-11.7 GB/s
// without, 16.7 / 17.4-18.3 / 16.0 GB/s with 8 / 16 / 32; Llama-3.2-1B's 32/8 heads (the lane-major scores)
// 11.9-12.8 -> 12.9-13.8 GB/s at 16; prefill unchanged.
constexpr int32_t k_prefetch_rows = 16;

// Walks the rows of one kv head position by position through the block table (no division per position). Given
// end (positions [j, end) exist), each step also requests the head's slice of the row k_prefetch_rows positions on
// while that row is before end: a kv head's rows are a whole KV row apart (3 KiB at stories110M's shape), a
// stride the hardware prefetchers follow late. Prefetches change no value.
template <class T>
struct row_cursor {
  row_cursor(const attention_args& a, const void* const* blocks, int32_t j, int32_t kvh, int32_t end = -1)
      : blocks_(blocks), row_elems_(a.kv_row_elems), head_off_(static_cast<int64_t>(kvh) * a.head_dim),
        block_size_(a.block_size), b_(j / a.block_size), r_(j % a.block_size),
        row_bytes_(static_cast<int32_t>(a.head_dim * sizeof(T))),
        ahead_left_(end - j - k_prefetch_rows), ahead_b_((j + k_prefetch_rows) / a.block_size),
        ahead_r_((j + k_prefetch_rows) % a.block_size) {}
  const T* get() const { return static_cast<const T*>(blocks_[b_]) + r_ * row_elems_ + head_off_; }
  const T* next() {  // the current row, then steps to the next position
    if (ahead_left_ > 0) request_ahead();
    const T* row = get();
    step(b_, r_);
    return row;
  }
  void step(int32_t& b, int64_t& r) const {  // position (block b, row r) -> the next one
    if (++r == block_size_) {
      r = 0;
      ++b;
    }
  }
  void request_ahead() {
    const char* p = reinterpret_cast<const char*>(static_cast<const T*>(blocks_[ahead_b_]) + ahead_r_ * row_elems_ +
                                                  head_off_);
    for (int32_t o = 0; o < row_bytes_; o += 64) __builtin_prefetch(p + o, 0, 3);
    --ahead_left_;
    step(ahead_b_, ahead_r_);
  }
  const void* const* blocks_;
  int64_t row_elems_, head_off_;
  int32_t block_size_, b_;
  int64_t r_;
  int32_t row_bytes_, ahead_left_, ahead_b_;
  int64_t ahead_r_;
};

constexpr int32_t k_joint_items = 16;      // (query, head) items of one kv head walked together, at most
constexpr int32_t k_rows_per_pass = 32;     // V rows weighed for every joint item before moving on (stay in L1)
constexpr int64_t k_joint_o_floats = 2048;  // o_c (and O) of the joint items on the two-pass path
constexpr int64_t k_saved_floats = 16384;   // per-chunk results the ISA entry points keep on their stack (64 KiB)

// One (query token, query head) pair.
struct item {
  const float* q;  // [head_dim]
  float* out;      // [head_dim]
  int32_t n_pos;   // attends positions [0, n_pos)
};

inline int32_t n_chunks_of(int32_t n_pos) { return (n_pos - 1) / k_attn_chunk + 1; }

// The joint items it[0 .. ni) of kv head kvh over the chunk starting at position j0: s[k * k_attn_chunk + i] are item
// k's scores, then its e_i; o[k] its o_c; n the most positions of the chunk any item sees.
struct joint {
  const item* it;
  int32_t ni, kvh, j0, n;
  float* s;
  float* const* o;
  int32_t seen(int32_t k) const {  // positions of this chunk item k attends (0: none)
    const int32_t left = it[k].n_pos - j0;
    return left <= 0 ? 0 : left < k_attn_chunk ? left : k_attn_chunk;
  }
};

inline joint make_joint(const item* it, int32_t ni, int32_t kvh, int32_t c, float* s, float* const* o) {
  joint g{it, ni, kvh, c * k_attn_chunk, 0, s, o};
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
  row_cursor<T> k(a, a.k_blocks, g.j0, g.kvh, g.j0 + g.n);
  int32_t i = 0;
  if constexpr (V::lane_scores) {
    if (g.ni >= k_lane_min_items && rem == 0 && hd <= k_lane_max_hd && g.n >= k_lane_group) {
      alignas(64) float kt[k_lane_max_hd * k_lane_group];
      alignas(64) float tmp[sizeof(T) == sizeof(float) ? 1 : k_lane_max_hd * k_lane_group];
      for (; i + k_lane_group <= g.n; i += k_lane_group) {
        stage_k_lanes<V, T>(k, hd, kt, tmp);
        for (int32_t h = 0; h < g.ni; ++h) {
          if (i < g.seen(h)) lane_scores16<V>(g.it[h].q, kt, hd, a.scale, g.s + h * k_attn_chunk + i);
        }
      }
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
      f c0 = V::zero(), c1 = V::zero(), c2 = V::zero(), c3 = V::zero();
      for (int32_t d = 0; d < full; d += 16) {
        const f qv = V::load(q + d);
        c0 = V::fma(qv, ld<V>(r0 + d), c0);
        c1 = V::fma(qv, ld<V>(r1 + d), c1);
        c2 = V::fma(qv, ld<V>(r2 + d), c2);
        c3 = V::fma(qv, ld<V>(r3 + d), c3);
      }
      if (rem) {
        const f qv = V::load_n(q + full, rem);
        c0 = V::fma_first(qv, ld_n<V>(r0 + full, rem), c0, rem);
        c1 = V::fma_first(qv, ld_n<V>(r1 + full, rem), c1, rem);
        c2 = V::fma_first(qv, ld_n<V>(r2 + full, rem), c2, rem);
        c3 = V::fma_first(qv, ld_n<V>(r3 + full, rem), c3, rem);
      }
      float t[4];
      V::fold4(c0, c1, c2, c3, t);
      float* s = g.s + h * k_attn_chunk + i;
      for (int j = 0; j < 4; ++j) s[j] = t[j] * a.scale;
    }
  }
  for (; i < g.n; ++i) {
    const T* kr = k.next();
    for (int32_t h = 0; h < g.ni; ++h) {
      if (i >= g.seen(h)) continue;
      const float* q = g.it[h].q;
      f acc = V::zero();
      for (int32_t d = 0; d < full; d += 16) acc = V::fma(V::load(q + d), ld<V>(kr + d), acc);
      if (rem) acc = V::fma_first(V::load_n(q + full, rem), ld_n<V>(kr + full, rem), acc, rem);
      g.s[h * k_attn_chunk + i] = V::fold(acc) * a.scale;
    }
  }
}

// The V rows of one pass staged contiguously in fp32 (f16 converted exactly): row i0 + r at rows + r * stride.
// Rows of a kv head are a whole KV row apart in the cache (n_head_kv * head_dim floats: 3 KiB at stories110M's
// shape), which maps a pass's rows onto a few L1 sets; staged, every item re-reads them from L1. A single item
// reads them once, in place.
struct staged_rows {
  const float* rows;
  int64_t stride;
  const float* next() {
    const float* r = rows;
    rows += stride;
    return r;
  }
};
constexpr int64_t k_stage_floats = 4096;  // 16 KiB: 32 rows of head_dim 128, 16 of 256

// Carries the sequential fma(e_i, v_i[d], o[d]) of positions [i0, i0 + cnt) on from the values in o (from 0 when
// i0 == 0) for d in [d0, d0 + 16*NV) (of the last vector only its first `last` lanes), in registers, reading the
// rows from src (a row_cursor<T> at position j0 + i0, or staged_rows with T = float). SumL: also carries
// l = l + e_i on (hidden under the fmas).
template <class V, class T, int NV, bool Tail, bool SumL, class Src>
void weigh_rows(Src v, const float* e, int32_t i0, int32_t cnt, int32_t d0, int last, float* o, float* l) {
  using f = typename V::f;
  f acc[NV];
  float* od = o + d0;
  for (int t = 0; t < NV; ++t) {
    const bool part = Tail && t == NV - 1;
    acc[t] = i0 == 0 ? V::zero() : part ? V::load_n(od + 16 * t, last) : V::load(od + 16 * t);
  }
  float l_c = (SumL && i0 != 0) ? *l : 0.0f;  // l may be null when SumL is false
  for (int32_t i = i0; i < i0 + cnt; ++i) {
    const T* vr = v.next() + d0;
    const f ei = V::set1(e[i]);
    if (SumL) l_c = l_c + e[i];
    for (int t = 0; t < NV - 1; ++t) acc[t] = V::fma(ei, ld<V>(vr + 16 * t), acc[t]);
    const T* vl = vr + 16 * (NV - 1);
    acc[NV - 1] = V::fma(ei, Tail ? ld_n<V>(vl, last) : ld<V>(vl), acc[NV - 1]);
  }
  for (int t = 0; t < NV - 1; ++t) V::store(od + 16 * t, acc[t]);
  if (Tail) {
    V::store_n(od + 16 * (NV - 1), acc[NV - 1], last);
  } else {
    V::store(od + 16 * (NV - 1), acc[NV - 1]);
  }
  if (SumL) *l = l_c;
}

template <class V, class T, int NV, class Src>
void weigh_rows_nv(Src v, const float* e, int32_t i0, int32_t cnt, int32_t d0, int nv, int last, float* o, float* l) {
  if constexpr (NV > 1) {
    if (nv < NV) return weigh_rows_nv<V, T, NV - 1>(v, e, i0, cnt, d0, nv, last, o, l);
  }
  if (last == 16) {
    if (l) {
      weigh_rows<V, T, NV, false, true>(v, e, i0, cnt, d0, last, o, l);
    } else {
      weigh_rows<V, T, NV, false, false>(v, e, i0, cnt, d0, last, o, l);
    }
  } else if (l) {
    weigh_rows<V, T, NV, true, true>(v, e, i0, cnt, d0, last, o, l);
  } else {
    weigh_rows<V, T, NV, true, false>(v, e, i0, cnt, d0, last, o, l);
  }
}

// weigh_rows (SumL, no tail, d0 = 0) of two items over the same staged rows, head_dim 16 * NV: 2 NV chains of
// fmas instead of NV. A head_dim of 64 alone gives 4 chains, and a chain waits for its previous fma (4 cycles),
// so one item leaves half the fma throughput unused; each item's own fmas and their order are unchanged.
template <class V, int NV>
void weigh_rows_pair(staged_rows v, const float* e0, const float* e1, int32_t i0, int32_t cnt, float* o0, float* o1,
                     float* l0, float* l1) {
  using f = typename V::f;
  f a0[NV], a1[NV];
  for (int t = 0; t < NV; ++t) {
    a0[t] = i0 == 0 ? V::zero() : V::load(o0 + 16 * t);
    a1[t] = i0 == 0 ? V::zero() : V::load(o1 + 16 * t);
  }
  float s0 = i0 == 0 ? 0.0f : *l0, s1 = i0 == 0 ? 0.0f : *l1;
  for (int32_t i = i0; i < i0 + cnt; ++i) {
    const float* vr = v.next();
    const f w0 = V::set1(e0[i]), w1 = V::set1(e1[i]);
    s0 = s0 + e0[i];
    s1 = s1 + e1[i];
    for (int t = 0; t < NV; ++t) {
      const f vv = V::load(vr + 16 * t);
      a0[t] = V::fma(w0, vv, a0[t]);
      a1[t] = V::fma(w1, vv, a1[t]);
    }
  }
  for (int t = 0; t < NV; ++t) {
    V::store(o0 + 16 * t, a0[t]);
    V::store(o1 + 16 * t, a1[t]);
  }
  *l0 = s0;
  *l1 = s1;
}

// weigh_rows_pair for nv = head_dim / 16 <= NV.
template <class V, int NV>
void weigh_rows_pair_nv(staged_rows v, const float* e0, const float* e1, int32_t i0, int32_t cnt, int nv, float* o0,
                        float* o1, float* l0, float* l1) {
  if constexpr (NV > 1) {
    if (nv < NV) return weigh_rows_pair_nv<V, NV - 1>(v, e0, e1, i0, cnt, nv, o0, o1, l0, l1);
  }
  weigh_rows_pair<V, NV>(v, e0, e1, i0, cnt, o0, o1, l0, l1);
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
  const bool staged = g.ni > 1 && hd <= k_stage_floats;  // one item (decode without GQA): read in place, no copy
  const int32_t per_pass = staged && k_stage_floats / hd < k_rows_per_pass ? static_cast<int32_t>(k_stage_floats / hd)
                                                                          : k_rows_per_pass;
  alignas(64) float stage[k_stage_floats];
  // Two items at a time when one V block of half the accumulators holds the whole head (weigh_rows_pair).
  constexpr int pair_vectors = V::weigh_vectors / 2;
  const bool paired = staged && hd % 16 == 0 && hd <= 16 * pair_vectors;
  for (int32_t i0 = 0; i0 < g.n; i0 += per_pass) {
    if (staged) stage_rows<V, T>(a, g, i0, g.n - i0 < per_pass ? g.n - i0 : per_pass, stage);
    for (int32_t h = 0; h < g.ni; ++h) {
      const int32_t left_rows = g.seen(h) - i0;
      if (left_rows <= 0) continue;
      const int32_t cnt = left_rows < per_pass ? left_rows : per_pass;
      if (paired && h + 1 < g.ni) {
        const int32_t left_next = g.seen(h + 1) - i0;
        if ((left_next < per_pass ? left_next : per_pass) == cnt) {
          const float* e = g.s + h * k_attn_chunk;
          weigh_rows_pair_nv<V, pair_vectors>(staged_rows{stage, hd}, e, e + k_attn_chunk, i0, cnt, hd / 16, g.o[h],
                                              g.o[h + 1], &cs[h].l, &cs[h + 1].l);
          ++h;
          continue;
        }
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
          const row_cursor<T> rows(a, a.v_blocks, g.j0 + i0, g.kvh, g.j0 + g.n);
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
