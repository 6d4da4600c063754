// attention's walk over the items of a call (ops_attention_body.h's chunks, one pass or two per set of joint items)
// and its entry point ops::attention<V>, the canonical chunk order of attention.h bit for bit.
#pragma once
#include <cstdint>

#include "kernels/cpu/attention.h"
#include "kernels/cpu/ops_attention_body.h"
#include "kernels/status.h"
#include "kernels/tensor_type.h"

namespace lime::cpu {
namespace {
namespace ops {

// Items it[0 .. ni) of kv head kvh with every chunk's (m_c, l_c, o_c) kept in saved (ni * n_chunks * (hd + 2)
// floats, n_chunks those of the item that sees most): the scores are computed once, and each item's chunks are
// merged once its M is known. s: ni * k_attn_chunk floats; o_sum: hd floats.
template <class V, class T>
void items_kept(const attention_args& a, const item* it, int32_t ni, int32_t n_chunks, float* saved,
                float* s, float* o_sum) {
  const int32_t hd = a.head_dim;
  const int64_t per_item = static_cast<int64_t>(n_chunks) * (hd + 2);  // [n_chunks] m_c, l_c; [n_chunks, hd] o_c
  float m_all[k_joint_items];
  float* o[k_joint_items];
  chunk_sums cs[k_joint_items];
  for (int32_t c = 0; c < n_chunks; ++c) {
    for (int32_t h = 0; h < ni; ++h) o[h] = saved + h * per_item + 2 * n_chunks + c * hd;
    const joint g = make_joint(it, ni, c, s, o);
    chunk<V, T>(a, g, m_all, cs);
    for (int32_t h = 0; h < ni; ++h) {
      if (g.seen(h) == 0) continue;
      saved[h * per_item + c] = cs[h].m;
      saved[h * per_item + n_chunks + c] = cs[h].l;
    }
  }
  for (int32_t h = 0; h < ni; ++h) {
    const float* ms = saved + h * per_item;
    for (int32_t d = 0; d < hd; ++d) o_sum[d] = 0.0f;
    float l_sum = 0.0f;
    for (int32_t c = 0; c < n_chunks_of(it[h].n_pos); ++c) {
      merge<V>(chunk_sums{ms[c], ms[n_chunks + c]}, ms + 2 * n_chunks + c * hd, m_all[h], hd, &l_sum, o_sum);
    }
    finish<V>(hd, it[h].out, o_sum, l_sum);
  }
}

// The same items when their per-chunk results do not fit: a first pass finds each item's M, the second merges each
// chunk as soon as it is done (the reference's way). s: ni * k_attn_chunk floats; o_c, o_sums: ni * hd each.
template <class V, class T>
void items_two_pass(const attention_args& a, const item* it, int32_t ni, int32_t n_chunks, float* o_c,
                    float* o_sums, float* s) {
  const int32_t hd = a.head_dim;
  float m_all[k_joint_items], l_sum[k_joint_items];
  float* o[k_joint_items];
  chunk_sums cs[k_joint_items];
  for (int32_t h = 0; h < ni; ++h) o[h] = o_c + static_cast<int64_t>(h) * hd;
  for (int32_t c = 0; c < n_chunks; ++c) {
    const joint g = make_joint(it, ni, c, s, o);
    scores<V, T>(a, g);
    for (int32_t h = 0; h < ni; ++h) {
      const int32_t n = g.seen(h);
      const float* sh = s + h * k_attn_chunk;
      if (n > 0) m_all[h] = g.j0 == 0 ? scan_max<V>(sh[0], sh + 1, n - 1) : scan_max<V>(m_all[h], sh, n);
    }
  }
  for (int64_t d = 0; d < static_cast<int64_t>(ni) * hd; ++d) o_sums[d] = 0.0f;
  for (int32_t h = 0; h < ni; ++h) l_sum[h] = 0.0f;
  for (int32_t c = 0; c < n_chunks; ++c) {
    const joint g = make_joint(it, ni, c, s, o);
    chunk<V, T>(a, g, nullptr, cs);
    for (int32_t h = 0; h < ni; ++h) {
      if (g.seen(h) == 0) continue;
      merge<V>(cs[h], o[h], m_all[h], hd, &l_sum[h], o_sums + static_cast<int64_t>(h) * hd);
    }
  }
  for (int32_t h = 0; h < ni; ++h) finish<V>(hd, it[h].out, o_sums + static_cast<int64_t>(h) * hd, l_sum[h]);
}

inline int64_t query_stride(const attention_args& a) {
  return a.q_stride > 0 ? a.q_stride : static_cast<int64_t>(a.n_head) * a.head_dim;
}
inline int64_t out_stride(const attention_args& a) {
  return a.out_stride > 0 ? a.out_stride : static_cast<int64_t>(a.n_head) * a.head_dim;
}

// Query heads [head_begin, h_end) of every query token, kv head by kv head, in sets of up to `step` items
// (token-major within a kv head: the tokens of a prompt share each chunk of K and V).
template <class V, class T>
void all_items(const attention_args& a, int32_t h_end, float* saved, int64_t saved_floats) {
  const int32_t group = a.n_head / a.n_head_kv, nq = a.n_query;
  const int64_t hd = a.head_dim, qs = query_stride(a), os = out_stride(a);
  const int32_t n_chunks = n_chunks_of(a.n_pos + nq - 1);  // of the last token, which sees most
  const int64_t fit = saved_floats / (static_cast<int64_t>(n_chunks) * (hd + 2));
  float s_stack[k_joint_items * k_attn_chunk];
  float o_stack[2 * k_joint_o_floats];
  const bool big = hd > k_joint_o_floats;  // one item at a time in the caller's scratch: s | o_c | o_sum
  float* s = big ? a.scratch : s_stack;
  float* o_c = big ? a.scratch + k_attn_chunk : o_stack;
  float* o_sums = big ? o_c + hd : o_stack + k_joint_o_floats;
  int64_t step = big ? 1 : k_joint_o_floats / hd;
  step = step < k_joint_items ? step : k_joint_items;
  if (fit >= 1 && fit < step) step = fit;
  item it[k_joint_items];
  auto run_set = [&](int32_t ni) {
    // Every item of the set sees the chunks up to its own last token's; the set's last item sees most.
    const int32_t nc = n_chunks_of(it[ni - 1].n_pos);
    if (fit >= 1) {
      items_kept<V, T>(a, it, ni, nc, saved, s, o_c);
    } else {
      items_two_pass<V, T>(a, it, ni, nc, o_c, o_sums, s);
    }
  };
  if (nq == 1 && (h_end - 1) / group > a.head_begin / group) {
    // One token over several kv heads (decode): sets of consecutive heads across kv heads, each walking whole
    // stretches of the K and V rows position by position rather than one head's slices 1-3 KiB apart.
    for (int32_t h = a.head_begin; h < h_end; h += static_cast<int32_t>(step)) {
      const int32_t ni = static_cast<int32_t>(h_end - h < step ? h_end - h : step);
      for (int32_t k = 0; k < ni; ++k) {
        it[k] = item{a.q + (h + k) * hd, a.out + (h + k) * hd, a.n_pos, (h + k) / group};
      }
      run_set(ni);
    }
    return;
  }
  for (int32_t h = a.head_begin; h < h_end;) {
    const int32_t kvh = h / group;
    const int32_t stop = (kvh + 1) * group < h_end ? (kvh + 1) * group : h_end;
    const int32_t nh = stop - h;
    const int64_t total = static_cast<int64_t>(nh) * nq;
    for (int64_t i0 = 0; i0 < total; i0 += step) {
      const int32_t ni = static_cast<int32_t>(total - i0 < step ? total - i0 : step);
      for (int32_t k = 0; k < ni; ++k) {
        const int32_t t = static_cast<int32_t>((i0 + k) / nh), hk = h + static_cast<int32_t>((i0 + k) % nh);
        it[k] = item{a.q + t * qs + hk * hd, a.out + t * os + hk * hd, a.n_pos + t, kvh};
      }
      run_set(ni);
    }
    h = stop;
  }
}

// saved: room for per-chunk results (any size works; more lets more heads share one pass over K and V).
template <class V>
kstatus attention(const attention_args& a, float* saved, int64_t saved_floats) {
  const kstatus st = attention_check_args(a);
  if (st != kstatus::ok) return st;
  const int32_t h_end = a.head_end < 0 ? a.n_head : a.head_end;
  if (a.kv_type == tensor_type::f32) {
    all_items<V, float>(a, h_end, saved, saved_floats);
  } else {
    all_items<V, uint16_t>(a, h_end, saved, saved_floats);
  }
  return kstatus::ok;
}

}  // namespace ops
}  // namespace
}  // namespace lime::cpu
