// Causal grouped-query attention of query tokens against a paged KV cache, in fixed-size chunks of positions
// (never split by thread count), so the result is the same however the work is spread or the tokens are grouped.
#pragma once
#include <cstdint>

#include "kernels/status.h"
#include "kernels/tensor_type.h"

namespace lime::cpu {

// Positions per attention chunk: part of the canonical order (see attention_ref).
constexpr int32_t k_attn_chunk = 256;

struct attention_args {
  const float* q;             // [n_query][n_head, head_dim] (already roped), token t at q + t * q_stride
  tensor_type kv_type;        // f32 (default) or f16
  const void* const* k_blocks;  // block table: k_blocks[b] holds positions [b*block_size, (b+1)*block_size)
  const void* const* v_blocks;  // same for V
  int32_t block_size;         // positions per block
  int64_t kv_row_elems;       // elements per position in a block row (n_head_kv * head_dim)
  int32_t n_head;
  int32_t n_head_kv;          // n_head % n_head_kv == 0; query head h uses kv head h / (n_head / n_head_kv)
  int32_t head_dim;
  int32_t n_pos;              // token 0 attends to positions [0, n_pos) (causal: n_pos = its position + 1)
  float scale;                // usually 1/sqrt(head_dim)
  float* out;                 // [n_query][n_head, head_dim], token t at out + t * out_stride
  float* scratch;             // caller-provided, at least attention_scratch_floats(head_dim) floats
  int32_t head_begin = 0;     // compute query heads [head_begin, head_end) only (threads split here; -1: n_head)
  int32_t head_end = -1;
  // Consecutive tokens of one sequence: token t (t < n_query) attends to [0, n_pos + t). The same bits as n_query
  // calls of one token each; the SIMD variants read each chunk of K and V once for all of them.
  int32_t n_query = 1;
  int64_t q_stride = 0;       // floats from one token's q to the next (0: n_head * head_dim)
  int64_t out_stride = 0;     // floats from one token's out to the next (0: n_head * head_dim)
};

int64_t attention_scratch_floats(int32_t head_dim);

// The argument checks of every variant, in one order: ok, or the status each variant returns without touching out.
kstatus attention_check_args(const attention_args& a);

// Canonical order, per query head:
//   s_j = dot_canonical(q_h, k_j) * scale for each position j (k_j converted to fp32 first when f16).
//   Positions are cut into chunks [c*256, (c+1)*256) ∩ [0, n_pos). Per chunk c, in position order:
//     m_c = max_j s_j (sequential), e_j = exp_f32(s_j - m_c), l_c = sequential sum of e_j (l += e),
//     o_c[d] = sequential o_c[d] = fma(e_j, v_j[d], o_c[d]) starting from 0.
//   Then over chunks in order: M = max_c m_c; w_c = exp_f32(m_c - M); L = sum_c l_c * w_c (sequential,
//   l = fma(l_c, w_c, l)); O[d] = sequential O[d] = fma(o_c[d], w_c, O[d]); out[d] = O[d] / L.
kstatus attention_ref(const attention_args& a);

// The fastest variant this CPU runs (kernels/cpu/isa.h); bitwise equal to attention_ref.
kstatus attention(const attention_args& a);

}  // namespace lime::cpu
