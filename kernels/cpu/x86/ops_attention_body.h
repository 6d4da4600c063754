// The one SIMD body of attention (attention.h's canonical chunk order, bit for bit), over the traits of ops_body.h.
// Query heads that share a kv head are walked chunk by chunk together, so each chunk of K and V comes from memory
// once per group rather than once per head; every head's own operations and their order stay the reference's.
#pragma once
#include <cstdint>

#include "kernels/cpu/attention.h"
#include "kernels/cpu/math.h"
#include "kernels/cpu/x86/ops_body.h"
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

// Walks the rows of one kv head position by position through the block table (no division per position).
template <class T>
struct row_cursor {
  row_cursor(const attention_args& a, const void* const* blocks, int32_t j, int32_t kvh)
      : blocks_(blocks), row_elems_(a.kv_row_elems), head_off_(static_cast<int64_t>(kvh) * a.head_dim),
        block_size_(a.block_size), b_(j / a.block_size), r_(j % a.block_size) {}
  const T* get() const { return static_cast<const T*>(blocks_[b_]) + r_ * row_elems_ + head_off_; }
  const T* next() {  // the current row, then steps to the next position
    const T* row = get();
    if (++r_ == block_size_) {
      r_ = 0;
      ++b_;
    }
    return row;
  }
  const void* const* blocks_;
  int64_t row_elems_, head_off_;
  int32_t block_size_, b_;
  int64_t r_;
};

constexpr int32_t k_joint_heads = 8;        // query heads of one kv head walked together, at most
constexpr int32_t k_rows_per_pass = 32;     // V rows weighed for every joint head before moving on (stay in L1)
constexpr int64_t k_joint_o_floats = 2048;  // o_c (and O) of the joint heads on the two-pass path
constexpr int64_t k_saved_floats = 16384;   // per-chunk results the ISA entry points keep on their stack (64 KiB)

// The joint heads h0 .. h0+nh-1 of kv head kvh over one chunk: s[k * k_attn_chunk + i] are head k's scores, then
// its e_i; o[k] its o_c; m_all (when given) is carried on over the scores by the reference's rule.
struct joint {
  int32_t h0, nh, kvh, j0, n;
  float* s;
  float* const* o;
};

// s_k[i] = dot_canonical(q_k, k_{j0+i}) * scale; four positions at a time, folded together (V::fold4), each group
// of rows used by every joint head while it is in L1.
template <class V, class T>
void scores(const attention_args& a, const joint& g) {
  using f = typename V::f;
  const int32_t hd = a.head_dim, full = hd & ~15, rem = hd & 15;
  row_cursor<T> k(a, a.k_blocks, g.j0, g.kvh);
  int32_t i = 0;
  for (; i + 4 <= g.n; i += 4) {
    const T* r0 = k.next();
    const T* r1 = k.next();
    const T* r2 = k.next();
    const T* r3 = k.next();
    for (int32_t h = 0; h < g.nh; ++h) {
      const float* q = a.q + static_cast<int64_t>(g.h0 + h) * hd;
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
    for (int32_t h = 0; h < g.nh; ++h) {
      const float* q = a.q + static_cast<int64_t>(g.h0 + h) * hd;
      f acc = V::zero();
      for (int32_t d = 0; d < full; d += 16) acc = V::fma(V::load(q + d), ld<V>(kr + d), acc);
      if (rem) acc = V::fma_first(V::load_n(q + full, rem), ld_n<V>(kr + full, rem), acc, rem);
      g.s[h * k_attn_chunk + i] = V::fold(acc) * a.scale;
    }
  }
}

// Carries the sequential fma(e_i, v_i[d], o[d]) of positions [i0, i0 + cnt) on from the values in o (from 0 when
// i0 == 0) for d in [d0, d0 + 16*NV) (of the last vector only its first `last` lanes), in registers.
// SumL: also carries l = l + e_i on (hidden under the fmas).
template <class V, class T, int NV, bool Tail, bool SumL>
void weigh_rows(const attention_args& a, const joint& g, const float* e, int32_t i0, int32_t cnt, int32_t d0,
                int last, float* o, float* l) {
  using f = typename V::f;
  f acc[NV];
  float* od = o + d0;
  for (int t = 0; t < NV; ++t) {
    const bool part = Tail && t == NV - 1;
    acc[t] = i0 == 0 ? V::zero() : part ? V::load_n(od + 16 * t, last) : V::load(od + 16 * t);
  }
  float l_c = (SumL && i0 != 0) ? *l : 0.0f;  // l may be null when SumL is false
  row_cursor<T> v(a, a.v_blocks, g.j0 + i0, g.kvh);
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

template <class V, class T, int NV>
void weigh_rows_nv(const attention_args& a, const joint& g, const float* e, int32_t i0, int32_t cnt, int32_t d0,
                   int nv, int last, float* o, float* l) {
  if constexpr (NV > 1) {
    if (nv < NV) return weigh_rows_nv<V, T, NV - 1>(a, g, e, i0, cnt, d0, nv, last, o, l);
  }
  if (last == 16) {
    if (l) {
      weigh_rows<V, T, NV, false, true>(a, g, e, i0, cnt, d0, last, o, l);
    } else {
      weigh_rows<V, T, NV, false, false>(a, g, e, i0, cnt, d0, last, o, l);
    }
  } else if (l) {
    weigh_rows<V, T, NV, true, true>(a, g, e, i0, cnt, d0, last, o, l);
  } else {
    weigh_rows<V, T, NV, true, false>(a, g, e, i0, cnt, d0, last, o, l);
  }
}

struct chunk_sums {
  float m;  // m_c: max score of the chunk (sequential)
  float l;  // l_c: sequential sum of e_j
};

// One chunk for the joint heads: scores, m_c, e_j = exp_f32(s_j - m_c), l_c into cs[k], o_c into g.o[k].
template <class V, class T>
void chunk(const attention_args& a, const joint& g, float* m_all, chunk_sums* cs) {
  using f = typename V::f;
  scores<V, T>(a, g);
  for (int32_t h = 0; h < g.nh; ++h) {
    float* s = g.s + h * k_attn_chunk;
    if (m_all) {
      for (int32_t i = 0; i < g.n; ++i) {
        if (g.j0 + i == 0 || s[i] > m_all[h]) m_all[h] = s[i];
      }
    }
    float m_c = s[0];
    for (int32_t i = 1; i < g.n; ++i) {
      if (s[i] > m_c) m_c = s[i];
    }
    cs[h] = chunk_sums{m_c, 0.0f};
    const f mc = V::set1(m_c);
    int32_t i = 0;
    for (; i + 16 <= g.n; i += 16) V::store(s + i, exp16<V>(V::sub(V::load(s + i), mc)));
    if (i < g.n) V::store_n(s + i, exp16<V>(V::sub(V::load_n(s + i, g.n - i), mc)), g.n - i);
  }
  // V in blocks of up to V::weigh_vectors vectors (enough independent fma chains to hide the fma latency: each
  // accumulator's chain runs through every position in order), k_rows_per_pass rows at a time for every head.
  const int32_t hd = a.head_dim, width = 16 * V::weigh_vectors;
  for (int32_t i0 = 0; i0 < g.n; i0 += k_rows_per_pass) {
    const int32_t cnt = g.n - i0 < k_rows_per_pass ? g.n - i0 : k_rows_per_pass;
    for (int32_t h = 0; h < g.nh; ++h) {
      for (int32_t d0 = 0; d0 < hd; d0 += width) {
        const int32_t left = hd - d0;
        const int nv = left >= width ? V::weigh_vectors : (left + 15) / 16;
        const int last = left >= width ? 16 : left - 16 * (nv - 1);
        weigh_rows_nv<V, T, V::weigh_vectors>(a, g, g.s + h * k_attn_chunk, i0, cnt, d0, nv, last, g.o[h],
                                              d0 == 0 ? &cs[h].l : nullptr);
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

// out_h[d] = O[d] / L.
template <class V>
void finish(const attention_args& a, int32_t h, const float* o_sum, float l_sum) {
  const int32_t hd = a.head_dim;
  float* out = a.out + static_cast<int64_t>(h) * hd;
  const typename V::f lv = V::set1(l_sum);
  int32_t d = 0;
  for (; d + 16 <= hd; d += 16) V::store(out + d, V::div(V::load(o_sum + d), lv));
  if (d < hd) V::store_n(out + d, V::div(V::load_n(o_sum + d, hd - d), lv), hd - d);
}

inline int32_t n_chunks_of(const attention_args& a) { return (a.n_pos - 1) / k_attn_chunk + 1; }
inline int32_t chunk_len(const attention_args& a, int32_t c) {
  const int32_t left = a.n_pos - c * k_attn_chunk;
  return left < k_attn_chunk ? left : k_attn_chunk;
}

// Heads [h0, h0 + nh) of kv head kvh with every chunk's (m_c, l_c, o_c) kept in saved (nh * n_chunks * (hd + 2)
// floats): the scores are computed once, and each head's chunks are merged once M is known.
// s: nh * k_attn_chunk floats; o_sum: hd floats.
template <class V, class T>
void heads_kept(const attention_args& a, int32_t h0, int32_t nh, int32_t kvh, float* saved, float* s,
                float* o_sum) {
  const int32_t hd = a.head_dim, n_chunks = n_chunks_of(a);
  const int64_t per_head = static_cast<int64_t>(n_chunks) * (hd + 2);  // [n_chunks] m_c, l_c; [n_chunks, hd] o_c
  float m_all[k_joint_heads];
  float* o[k_joint_heads];
  chunk_sums cs[k_joint_heads];
  for (int32_t c = 0; c < n_chunks; ++c) {
    for (int32_t h = 0; h < nh; ++h) o[h] = saved + h * per_head + 2 * n_chunks + c * hd;
    chunk<V, T>(a, joint{h0, nh, kvh, c * k_attn_chunk, chunk_len(a, c), s, o}, m_all, cs);
    for (int32_t h = 0; h < nh; ++h) {
      saved[h * per_head + c] = cs[h].m;
      saved[h * per_head + n_chunks + c] = cs[h].l;
    }
  }
  for (int32_t h = 0; h < nh; ++h) {
    const float* ms = saved + h * per_head;
    for (int32_t d = 0; d < hd; ++d) o_sum[d] = 0.0f;
    float l_sum = 0.0f;
    for (int32_t c = 0; c < n_chunks; ++c) {
      merge<V>(chunk_sums{ms[c], ms[n_chunks + c]}, ms + 2 * n_chunks + c * hd, m_all[h], hd, &l_sum, o_sum);
    }
    finish<V>(a, h0 + h, o_sum, l_sum);
  }
}

// The same heads when their per-chunk results do not fit: a first pass finds each head's M, the second merges each
// chunk as soon as it is done (the reference's way). s: nh * k_attn_chunk floats; o_c, o_sums: nh * hd each.
template <class V, class T>
void heads_two_pass(const attention_args& a, int32_t h0, int32_t nh, int32_t kvh, float* o_c, float* o_sums,
                    float* s) {
  const int32_t hd = a.head_dim, n_chunks = n_chunks_of(a);
  float m_all[k_joint_heads], l_sum[k_joint_heads];
  float* o[k_joint_heads];
  chunk_sums cs[k_joint_heads];
  for (int32_t h = 0; h < nh; ++h) o[h] = o_c + static_cast<int64_t>(h) * hd;
  for (int32_t c = 0; c < n_chunks; ++c) {
    const joint g{h0, nh, kvh, c * k_attn_chunk, chunk_len(a, c), s, o};
    scores<V, T>(a, g);
    for (int32_t h = 0; h < nh; ++h) {
      for (int32_t i = 0; i < g.n; ++i) {
        const float si = s[h * k_attn_chunk + i];
        if (g.j0 + i == 0 || si > m_all[h]) m_all[h] = si;
      }
    }
  }
  for (int64_t d = 0; d < static_cast<int64_t>(nh) * hd; ++d) o_sums[d] = 0.0f;
  for (int32_t h = 0; h < nh; ++h) l_sum[h] = 0.0f;
  for (int32_t c = 0; c < n_chunks; ++c) {
    chunk<V, T>(a, joint{h0, nh, kvh, c * k_attn_chunk, chunk_len(a, c), s, o}, nullptr, cs);
    for (int32_t h = 0; h < nh; ++h) {
      merge<V>(cs[h], o[h], m_all[h], hd, &l_sum[h], o_sums + static_cast<int64_t>(h) * hd);
    }
  }
  for (int32_t h = 0; h < nh; ++h) finish<V>(a, h0 + h, o_sums + static_cast<int64_t>(h) * hd, l_sum[h]);
}

template <class V, class T>
void all_heads(const attention_args& a, int32_t h_end, float* saved, int64_t saved_floats) {
  const int32_t group = a.n_head / a.n_head_kv;
  const int64_t hd = a.head_dim;
  const int64_t fit = saved_floats / (static_cast<int64_t>(n_chunks_of(a)) * (hd + 2));
  float s_stack[k_joint_heads * k_attn_chunk];
  float o_stack[2 * k_joint_o_floats];
  const bool big = hd > k_joint_o_floats;  // one head at a time in the caller's scratch: s | o_c | o_sum
  float* s = big ? a.scratch : s_stack;
  float* o_c = big ? a.scratch + k_attn_chunk : o_stack;
  float* o_sums = big ? o_c + hd : o_stack + k_joint_o_floats;
  int64_t step = big ? 1 : k_joint_o_floats / hd;
  step = step < k_joint_heads ? step : k_joint_heads;
  if (fit >= 1 && fit < step) step = fit;
  for (int32_t h = a.head_begin; h < h_end;) {
    const int32_t kvh = h / group;
    const int32_t stop = (kvh + 1) * group < h_end ? (kvh + 1) * group : h_end;
    const int32_t nh = step < stop - h ? static_cast<int32_t>(step) : stop - h;
    if (fit >= 1) {
      heads_kept<V, T>(a, h, nh, kvh, saved, s, o_c);
    } else {
      heads_two_pass<V, T>(a, h, nh, kvh, o_c, o_sums, s);
    }
    h += nh;
  }
}

// attention_ref's argument checks, in its order, with its statuses.
inline kstatus check_attention_args(const attention_args& a) {
  if (!a.q || !a.k_blocks || !a.v_blocks || !a.out || !a.scratch) return kstatus::bad_argument;
  if (a.kv_type != tensor_type::f32 && a.kv_type != tensor_type::f16) return kstatus::unsupported_type;
  if (a.block_size <= 0 || a.n_head <= 0 || a.n_head_kv <= 0 || a.head_dim <= 0 || a.n_pos <= 0) {
    return kstatus::bad_shape;
  }
  if (a.n_head % a.n_head_kv != 0) return kstatus::bad_shape;
  if (a.kv_row_elems < static_cast<int64_t>(a.n_head_kv) * a.head_dim) return kstatus::bad_shape;
  const int32_t n_blocks = (a.n_pos - 1) / a.block_size + 1;
  for (int32_t b = 0; b < n_blocks; ++b) {
    if (!a.k_blocks[b] || !a.v_blocks[b]) return kstatus::bad_argument;
  }
  const int32_t h_end = a.head_end < 0 ? a.n_head : a.head_end;
  if (a.head_begin < 0 || h_end > a.n_head || a.head_begin > h_end) return kstatus::bad_argument;
  return kstatus::ok;
}

// saved: room for per-chunk results (any size works; more lets more heads share one pass over K and V).
template <class V>
kstatus attention(const attention_args& a, float* saved, int64_t saved_floats) {
  const kstatus st = check_attention_args(a);
  if (st != kstatus::ok) return st;
  const int32_t h_end = a.head_end < 0 ? a.n_head : a.head_end;
  if (a.kv_type == tensor_type::f32) {
    all_heads<V, float>(a, h_end, saved, saved_floats);
  } else {
    all_heads<V, uint16_t>(a, h_end, saved, saved_floats);
  }
  return kstatus::ok;
}

}  // namespace ops
}  // namespace
}  // namespace lime::cpu
