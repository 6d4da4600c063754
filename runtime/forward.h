// The forward pass over a layer range [lo, hi) for a micro-batch of tokens from one or more sequences:
// embedding at layer 0, attention (paged KV) + SwiGLU FFN per layer, final norm + output head at the end.
// Every row is computed independently of the others (batch-invariant), so a token's activations and logits
// are bitwise the same whatever it is batched with and however the layers are split.
#pragma once
#include <cstdint>
#include <vector>

#include "runtime/kv_cache.h"
#include "runtime/model.h"
#include "runtime/result.h"
#include "runtime/thread_pool.h"

namespace lime {

struct layer_range {
  int32_t lo = 0;
  int32_t hi = 0;  // exclusive
};

struct micro_batch {
  std::vector<int32_t> tokens;       // [n] token ids; used when range.lo == 0
  std::vector<float> embd;           // [n, n_embd] input activations; used when range.lo > 0
  std::vector<int32_t> pos;          // [n] position of each token in its sequence
  std::vector<int32_t> seq;          // [n] sequence id of each token
  std::vector<uint8_t> want_logits;  // [n] 1 = compute logits for this row (when range.hi == n_layer)
  size_t size() const { return pos.size(); }
  void clear() { tokens.clear(); embd.clear(); pos.clear(); seq.clear(); want_logits.clear(); }
  void add(int32_t token, int32_t position, int32_t seq_id, bool logits) {
    tokens.push_back(token); pos.push_back(position); seq.push_back(seq_id); want_logits.push_back(logits ? 1 : 0);
  }
};

struct forward_output {
  std::vector<float> hidden;      // [n, n_embd] activations after layer hi-1, when hi < n_layer
  std::vector<float> logits;      // [n_out, n_vocab], one row per token with want_logits, in batch order
  std::vector<int32_t> logit_rows;  // [n_out] batch row of each logits row
};

class forward_pass {
 public:
  // kv must hold hi - lo layers with rows of n_embd_kv elements.
  forward_pass(const model& m, layer_range range, kv_cache& kv, thread_pool& pool);

  // Errors: invalid_argument (token id out of range, negative position, wrong activation size),
  // out_of_memory (the KV pool has no room for the batch's positions; nothing is written then).
  result<void> run(const micro_batch& batch, forward_output& out);

  layer_range range() const { return range_; }

 private:
  result<void> check_and_reserve(const micro_batch& batch);
  void embed(const micro_batch& batch);
  void attention_block(int32_t layer, const micro_batch& batch);
  void ffn_block(int32_t layer, size_t n);
  void output_head(const micro_batch& batch, forward_output& out);
  void matmul(const weight_view& w, const float* x, size_t n_cols, float* y);

  const model* model_;
  layer_range range_;
  kv_cache* kv_;
  thread_pool* pool_;
  // Scratch, grown on demand and reused between batches (forward_pass's thread only).
  std::vector<float> x_;      // [n, n_embd] residual stream
  std::vector<float> cur_;    // [n, n_embd] normed input
  std::vector<float> q_;      // [n, n_embd_q]
  std::vector<float> k_;      // [n, n_embd_kv]
  std::vector<float> v_;      // [n, n_embd_kv]
  std::vector<float> attn_;   // [n, n_embd_q]
  std::vector<float> proj_;   // [n, n_embd]
  std::vector<float> gate_;   // [n, n_ff]
  std::vector<float> up_;     // [n, n_ff]
  std::vector<float> attn_scratch_;  // [threads, attention_scratch_floats]
  std::vector<std::vector<const void*>> k_tables_, v_tables_;  // [threads] block tables
};

}  // namespace lime
