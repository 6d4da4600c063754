// The forward pass over a layer range [lo, hi) for a micro-batch of tokens from one or more sequences:
// embedding at layer 0, attention (paged KV) + SwiGLU FFN per layer, final norm + output head at the end.
// Every row is computed independently of the others (batch-invariant), so a token's activations and logits
// are bitwise the same whatever it is batched with and however the layers are split.
#pragma once
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <string>
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

// A block of output-head rows: w holds rows [row0, row0 + w.n_rows) of the output matrix.
struct weight_rows {
  weight_view w;
  int64_t row0 = 0;
};

// Where a forward pass gets its weights when they are not all in the model's mapped file (weight streaming,
// runtime/weight_store.h). Called by the forward pass's thread only, in this order per run: begin_pass, embed (when
// lo == 0), then per layer acquire / prefetch(next) / release, then (when hi == n_layer) output_norm and
// acquire_head / release_head for blocks 0..head_blocks()-1. Views stay valid until their release.
class weight_source {
 public:
  virtual ~weight_source() = default;
  virtual layer_range range() const = 0;  // the layers it serves (and the head when hi == n_layer)
  virtual result<void> begin_pass() = 0;  // nothing is held here: the source may apply pending changes
  virtual result<void> embed(const int32_t* tokens, int64_t n, float* out) = 0;  // out: [n, n_embd] fp32 rows
  virtual void prefetch(int32_t layer) = 0;  // a hint, never blocks; layer == n_layer means the head
  virtual result<const layer_weights*> acquire(int32_t layer) = 0;  // blocks until the layer's reads are done
  virtual void release(int32_t layer) = 0;
  virtual const weight_view& output_norm() const = 0;
  virtual int32_t head_blocks() const = 0;  // fixed between begin_pass calls
  virtual result<weight_rows> acquire_head(int32_t block) = 0;
  virtual void release_head(int32_t block) = 0;
};

// Bytes of the forward pass's matmul scratch for batches of up to n_rows tokens on n_threads threads: one matmul
// input packed for the batched kernels (cpu::matmul_pack_lanes) and the kernels' per-thread buffers
// (cpu::matmul_thread_buffer_bytes). Part of the activations term of the memory budgets.
uint64_t forward_matmul_scratch_bytes(const model_hparams& hp, uint64_t n_rows, int n_threads);

// Floats of the forward pass's per-token scratch: residual, norm, projection (3 n_embd), q and attention output
// (2 n_embd_q), k/v (2 n_embd_kv), gate/up (2 n_ff), rope (c, s) (n_rot). The memory budgets' per-token term.
int64_t forward_token_scratch_floats(const model_hparams& hp);

// A forward pass over a layer range on some backend (runtime/backend.h): forward_pass on the CPU, cuda_forward on a
// GPU. Every engine gives the same bits for the same batch. One thread at a time.
class forward_engine {
 public:
  virtual ~forward_engine() = default;
  // Errors as forward_pass::run, plus the device's (out_of_memory past its budget, io_error with the CUDA error).
  virtual result<void> run(const micro_batch& batch, forward_output& out) = 0;
  virtual layer_range range() const = 0;
  // Where a device engine keeps the weights (one line; empty for the CPU pass) and the bytes it copies to the
  // device per pass when they do not all fit (0: all resident, or no device).
  virtual std::string describe_weights() const { return {}; }
  virtual uint64_t streamed_bytes_per_pass() const { return 0; }
};

// The checks every engine makes before computing (token ids, sizes, positions) and the KV reservation for the
// batch's positions (all or nothing): the errors forward_pass::run documents. range: the engine's layers.
result<void> forward_check_and_reserve(const model& m, layer_range range, kv_cache& kv, const micro_batch& batch);

class forward_pass final : public forward_engine {
 public:
  // kv must hold hi - lo layers with rows of n_embd_kv elements. weights: nullptr reads the model's views (the
  // mapped file); otherwise it must cover exactly `range` and outlive the pass.
  forward_pass(const model& m, layer_range range, kv_cache& kv, thread_pool& pool, weight_source* weights = nullptr);

  // Errors: invalid_argument (token id out of range, negative position, wrong activation size),
  // out_of_memory (the KV pool has no room for the batch's positions; nothing is written then), and the weight
  // source's errors (io_error: a streamed read failed; KV rows of this batch may be written then).
  result<void> run(const micro_batch& batch, forward_output& out) override;

  layer_range range() const override { return range_; }

 private:
  result<void> embed(const micro_batch& batch);
  void attention_block(int32_t layer, const layer_weights& w, const micro_batch& batch);
  void ffn_block(const layer_weights& w, size_t n);
  // Tokens [t0, t1): rope on q_ and k_, then k_/v_ into the KV rows of layer kv_layer (relative to range_.lo).
  void rope_and_store(int32_t kv_layer, const micro_batch& batch, size_t t0, size_t t1);
  void norm_rows(const weight_view& norm, size_t n);  // cur_ = rmsnorm(x_) * norm over n tokens
  void add_residual(size_t n);  // x_ += proj_ over n tokens
  // fn(t0, t1) over token ranges covering [0, n): on the pool for large batches, else on this thread in one call.
  // For per-token work only: what a token gets never depends on the split.
  void per_token(size_t n, const std::function<void(size_t, size_t)>& fn);
  result<void> output_head(const micro_batch& batch, forward_output& out);
  result<void> output_head_streamed(size_t n_out, float* logits);
  void matmul(const weight_view& w, const float* x, size_t n_cols, float* y);
  // y_i = w_i x for matrices sharing one input (q/k/v, gate/up), in one parallel loop over chunks of every matrix's
  // rows, so the pool is woken once instead of once per matrix (more than 3: one loop each). matmul() is the case
  // of one matrix. Small work runs on the calling thread. Where rows are computed never changes their bits.
  struct matmul_out {
    const weight_view* w;
    float* y;  // [n_cols, w->n_rows]
  };
  void matmuls(std::initializer_list<matmul_out> outs, const float* x, size_t n_cols);
  // x [n_cols, k] packed into x_lanes_ for the batched kernels (cpu::matmul_pack_lanes), over the pool when
  // parallel; nullptr (nothing done) when the kernels in use take no packed activations at this shape.
  const float* pack_lanes(const float* x, int64_t k, size_t n_cols, bool parallel);

  const model* model_;
  layer_range range_;
  kv_cache* kv_;
  thread_pool* pool_;
  weight_source* weights_ = nullptr;  // not owned; nullptr: the model's views
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
  std::vector<float> rope_cs_;  // [n, n_rot / 2, 2] each token's rope (cos, sin), shared by the layers
  std::vector<float> x_lanes_;  // [ceil(n / 16) * 16, max k] a matmul input packed lane-major (pack_lanes)
  std::vector<float> head_tmp_;  // [n_out, block rows] one streamed head block's logits before the scatter
  std::vector<float> attn_scratch_;  // [threads, attention_scratch_floats]
  std::vector<std::vector<const void*>> k_tables_, v_tables_;  // [threads] block tables
  // Attention's runs: tokens first .. first + n - 1 of the batch are one sequence at consecutive positions.
  struct token_run {
    size_t first;
    int32_t n;
  };
  static constexpr size_t k_attn_run = 16;  // tokens per run at most (the SIMD kernels walk 16 items together)
  std::vector<token_run> runs_;
};

}  // namespace lime
