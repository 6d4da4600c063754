// How attention's SIMD body reads and weighs KV rows (ops_attention_body.h): rows of f32 or f16, a cursor walking one
// kv head's (or a few adjacent kv heads') slices through the block table with requests ahead, and the sequential
// fma chains that weigh V rows into a chunk's o_c, one item at a time or a few at once.
#pragma once
#include <cstdint>

#include "kernels/cpu/attention.h"

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
// A cursor over the adjacent slices of several kv heads (decode: stories110M's 12 heads, 3 KiB a row) requests its
// rows about this many bytes ahead, at least 2 rows. Measured (12 layers' KV read from DRAM, one Zen 5 core, 12
// heads in one call): at 128 / 1024 positions no requests 24-27 / 26 GB/s, 2 rows 29-30 / 29, 16 rows 27-34 / 28-29;
// with the KV in L2 the 16 rows cost 15 % (48 prefetches a row). 4, 16 and 32 KiB ahead: within the noise of 8.
constexpr int64_t k_prefetch_span_bytes = 8192;

// Walks the rows of one kv head position by position through the block table (no division per position). Given
// end (positions [j, end) exist), each step also requests the head's slice of the row k_prefetch_rows positions on
// while that row is before end: a kv head's rows are a whole KV row apart (3 KiB at stories110M's shape), a
// stride the hardware prefetchers follow late. Prefetches change no value.
template <class T>
struct row_cursor {
  // n_kvh: kv heads from kvh on whose slices (adjacent in a row) the walk reads, and requests ahead.
  row_cursor(const attention_args& a, const void* const* blocks, int32_t j, int32_t kvh, int32_t end = -1,
             int32_t n_kvh = 1)
      : blocks_(blocks), row_elems_(a.kv_row_elems), head_off_(static_cast<int64_t>(kvh) * a.head_dim),
        block_size_(a.block_size), b_(j / a.block_size), r_(j % a.block_size),
        row_bytes_(static_cast<int32_t>(static_cast<int64_t>(n_kvh) * a.head_dim * sizeof(T))),
        ahead_(ahead_rows(n_kvh, row_bytes_)), ahead_left_(end - j - ahead_), ahead_b_((j + ahead_) / a.block_size),
        ahead_r_((j + ahead_) % a.block_size) {}
  // Rows ahead a walk requests: k_prefetch_rows for one kv head, about k_prefetch_span_bytes for a span of several.
  static int32_t ahead_rows(int32_t n_kvh, int32_t row_bytes) {
    if (n_kvh <= 1) return k_prefetch_rows;
    const int64_t rows = k_prefetch_span_bytes / row_bytes;
    return rows < 2 ? 2 : rows > k_prefetch_rows ? k_prefetch_rows : static_cast<int32_t>(rows);
  }
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
  int32_t row_bytes_, ahead_, ahead_left_, ahead_b_;
  int64_t ahead_r_;
};

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

// weigh_rows (SumL, no tail, d0 = 0) of G items at once, head_dim 16 * NV, each reading its slice of the same rows
// at off[k] floats from src's (a row_cursor<T>: decode, items of adjacent kv heads; or staged_rows with T = float
// and every offset 0: items sharing a kv head): G * NV chains of fmas instead of NV. A chain waits for its previous
// fma (4 cycles), so a head of 64 alone leaves most of the fma throughput unused; each item's own fmas and their
// order are unchanged.
template <class V, class T, int NV, int G, class Src>
void weigh_rows_multi(Src v, const float* const* e, const int64_t* off, int32_t i0, int32_t cnt, float* const* o,
                      float* const* l) {
  using f = typename V::f;
  f acc[G][NV];
  float sum[G];
#pragma GCC unroll 8
  for (int k = 0; k < G; ++k) {
    sum[k] = i0 == 0 ? 0.0f : *l[k];
#pragma GCC unroll 16
    for (int t = 0; t < NV; ++t) acc[k][t] = i0 == 0 ? V::zero() : V::load(o[k] + 16 * t);
  }
  for (int32_t i = i0; i < i0 + cnt; ++i) {
    const T* row = v.next();
#pragma GCC unroll 8
    for (int k = 0; k < G; ++k) {
      const f w = V::set1(e[k][i]);
      sum[k] = sum[k] + e[k][i];
#pragma GCC unroll 16
      for (int t = 0; t < NV; ++t) acc[k][t] = V::fma(w, ld<V>(row + off[k] + 16 * t), acc[k][t]);
    }
  }
#pragma GCC unroll 8
  for (int k = 0; k < G; ++k) {
#pragma GCC unroll 16
    for (int t = 0; t < NV; ++t) V::store(o[k] + 16 * t, acc[k][t]);
    *l[k] = sum[k];
  }
}

// Items a group holds at most for nv = head_dim / 16 vectors each: V::multi_vectors accumulators in all, at most 4.
constexpr int multi_group(int multi_vectors, int nv) {
  return multi_vectors / nv < 4 ? multi_vectors / nv : 4;
}

// weigh_rows_multi for nv <= NV vectors and g <= multi_group(V::multi_vectors, nv) items.
template <class V, class T, int NV, class Src>
void weigh_rows_multi_nv(Src v, int nv, int g, const float* const* e, const int64_t* off, int32_t i0, int32_t cnt,
                         float* const* o, float* const* l) {
  if constexpr (NV > 1) {
    if (nv < NV) return weigh_rows_multi_nv<V, T, NV - 1>(v, nv, g, e, off, i0, cnt, o, l);
  }
  constexpr int G = multi_group(V::multi_vectors, NV);
  if constexpr (G >= 1) {
    if constexpr (G >= 4) {
      if (g == 4) return weigh_rows_multi<V, T, NV, 4>(v, e, off, i0, cnt, o, l);
    }
    if constexpr (G >= 3) {
      if (g == 3) return weigh_rows_multi<V, T, NV, 3>(v, e, off, i0, cnt, o, l);
    }
    if constexpr (G >= 2) {
      if (g == 2) return weigh_rows_multi<V, T, NV, 2>(v, e, off, i0, cnt, o, l);
    }
    weigh_rows_multi<V, T, NV, 1>(v, e, off, i0, cnt, o, l);
  }
}

}  // namespace ops
}  // namespace
}  // namespace lime::cpu
