// Reference causal GQA attention of one query token over a paged fp32/fp16 KV cache, in fixed chunks of
// k_attn_chunk positions merged in chunk order (attention.h defines the order). Uses only caller scratch.
#include "kernels/cpu/attention.h"

#include <cmath>
#include <cstddef>

#include "kernels/cpu/canonical.h"
#include "kernels/cpu/math.h"
#include "kernels/cpu/quants.h"

namespace lime::cpu {
namespace {

// Scratch layout (floats): s[k_attn_chunk] | kbuf[head_dim] | vbuf[head_dim] | o_c[head_dim] | o_sum[head_dim].
constexpr int64_t k_scratch_vectors = 4;

// Row of head `kvh` at position j in the block table `blocks`, as fp32 (converted into buf when fp16).
const float* kv_row(const attention_args& a, const void* const* blocks, int32_t j, int32_t kvh, float* buf) {
  const int64_t in_block = (static_cast<int64_t>(j % a.block_size) * a.kv_row_elems +
                            static_cast<int64_t>(kvh) * a.head_dim);
  const void* block = blocks[j / a.block_size];
  if (a.kv_type == tensor_type::f32) return static_cast<const float*>(block) + in_block;
  const uint16_t* h = static_cast<const uint16_t*>(block) + in_block;
  for (int32_t d = 0; d < a.head_dim; ++d) buf[d] = fp16_to_fp32(h[d]);
  return buf;
}

}  // namespace

kstatus attention_check_args(const attention_args& a) {
  if (!a.q || !a.k_blocks || !a.v_blocks || !a.out || !a.scratch) return kstatus::bad_argument;
  if (a.kv_type != tensor_type::f32 && a.kv_type != tensor_type::f16) return kstatus::unsupported_type;
  if (a.block_size <= 0 || a.n_head <= 0 || a.n_head_kv <= 0 || a.head_dim <= 0 || a.n_pos <= 0) {
    return kstatus::bad_shape;
  }
  if (a.n_head % a.n_head_kv != 0) return kstatus::bad_shape;
  if (a.kv_row_elems < static_cast<int64_t>(a.n_head_kv) * a.head_dim) return kstatus::bad_shape;
  if (a.n_query < 1 || a.q_stride < 0 || a.out_stride < 0) return kstatus::bad_shape;
  if (a.n_pos > INT32_MAX - (a.n_query - 1)) return kstatus::bad_shape;
  const int32_t n_blocks = (a.n_pos + a.n_query - 2) / a.block_size + 1;
  for (int32_t b = 0; b < n_blocks; ++b) {
    if (!a.k_blocks[b] || !a.v_blocks[b]) return kstatus::bad_argument;
  }
  const int32_t h_end = a.head_end < 0 ? a.n_head : a.head_end;
  if (a.head_begin < 0 || h_end > a.n_head || a.head_begin > h_end) return kstatus::bad_argument;
  return kstatus::ok;
}

int64_t attention_scratch_floats(int32_t head_dim) {
  return k_attn_chunk + k_scratch_vectors * static_cast<int64_t>(head_dim);
}

namespace {

// One query token (n_query 1), arguments checked.
void one_token(const attention_args& a) {
  const int32_t hd = a.head_dim;
  float* s = a.scratch;
  float* kbuf = s + k_attn_chunk;
  float* vbuf = kbuf + hd;
  float* o_c = vbuf + hd;
  float* o_sum = o_c + hd;
  const int32_t group = a.n_head / a.n_head_kv;
  const int32_t n_chunks = (a.n_pos - 1) / k_attn_chunk + 1;

  const int32_t h_end = a.head_end < 0 ? a.n_head : a.head_end;
  for (int32_t h = a.head_begin; h < h_end; ++h) {
    const int32_t kvh = h / group;
    const float* qh = a.q + static_cast<int64_t>(h) * hd;
    // M = max over all positions (= max over the chunk maxima). With several chunks it is needed before the
    // first chunk can be weighted, so the scores are computed twice rather than stored for every position.
    float m_all = 0.0f;
    if (n_chunks > 1) {
      for (int32_t j = 0; j < a.n_pos; ++j) {
        const float sj = dot_canonical(qh, kv_row(a, a.k_blocks, j, kvh, kbuf), hd) * a.scale;
        if (j == 0 || sj > m_all) m_all = sj;
      }
    }
    float l_sum = 0.0f;
    for (int32_t d = 0; d < hd; ++d) o_sum[d] = 0.0f;
    for (int32_t c = 0; c < n_chunks; ++c) {
      const int32_t j0 = c * k_attn_chunk;
      const int32_t n = a.n_pos - j0 < k_attn_chunk ? a.n_pos - j0 : k_attn_chunk;
      for (int32_t i = 0; i < n; ++i) {
        s[i] = dot_canonical(qh, kv_row(a, a.k_blocks, j0 + i, kvh, kbuf), hd) * a.scale;
      }
      float m_c = s[0];
      for (int32_t i = 1; i < n; ++i) {
        if (s[i] > m_c) m_c = s[i];
      }
      if (n_chunks == 1) m_all = m_c;
      float l_c = 0.0f;
      for (int32_t d = 0; d < hd; ++d) o_c[d] = 0.0f;
      for (int32_t i = 0; i < n; ++i) {
        const float e = exp_f32(s[i] - m_c);
        l_c = l_c + e;
        const float* vj = kv_row(a, a.v_blocks, j0 + i, kvh, vbuf);
        for (int32_t d = 0; d < hd; ++d) o_c[d] = std::fma(e, vj[d], o_c[d]);
      }
      const float w_c = exp_f32(m_c - m_all);
      l_sum = std::fma(l_c, w_c, l_sum);
      for (int32_t d = 0; d < hd; ++d) o_sum[d] = std::fma(o_c[d], w_c, o_sum[d]);
    }
    float* oh = a.out + static_cast<int64_t>(h) * hd;
    for (int32_t d = 0; d < hd; ++d) oh[d] = o_sum[d] / l_sum;
  }
}

}  // namespace

kstatus attention_ref(const attention_args& args) {
  const kstatus st = attention_check_args(args);
  if (st != kstatus::ok) return st;
  const int64_t per_token = static_cast<int64_t>(args.n_head) * args.head_dim;
  for (int32_t t = 0; t < args.n_query; ++t) {  // token by token: the definition
    attention_args a = args;
    a.q = args.q + t * (args.q_stride > 0 ? args.q_stride : per_token);
    a.out = args.out + t * (args.out_stride > 0 ? args.out_stride : per_token);
    a.n_pos = args.n_pos + t;
    a.n_query = 1;
    one_token(a);
  }
  return kstatus::ok;
}

}  // namespace lime::cpu
