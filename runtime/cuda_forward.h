// cuda_forward: the forward pass over a layer range on a CUDA device, with lime's CUDA kernels (kernels/cuda/ops.h)
// in the CPU pass's order, so activations and logits are bitwise forward_pass's. The KV cache lives in device memory
// (kv_cache with the backend's allocator); weights come from cuda_weights (resident, streamed or in place); per-batch
// inputs (embedding rows, rope cos/sin, positions, KV tables) are built on the host in one page-locked buffer and
// uploaded with one copy. Built only with LIME_HAVE_CUDA; forward_engine's thread only.
#pragma once
#include <cstdint>
#include <memory>
#include <vector>

#include "runtime/backend.h"
#include "runtime/cuda_weights.h"
#include "runtime/forward.h"
#include "runtime/weight_store.h"

namespace lime {

// The engine for backend_cuda. Errors: invalid_argument (range, a KV cache not from the backend's allocator),
// out_of_memory (the device budget cannot hold the KV pool, the activations for max_batch rows and one streaming
// slot: the message gives each term), and the backend's.
result<std::unique_ptr<forward_engine>> make_cuda_forward(std::shared_ptr<backend> be, const forward_engine_args& a);

class cuda_forward final : public forward_engine {
 public:
  static result<std::unique_ptr<cuda_forward>> create(std::shared_ptr<backend> be, const forward_engine_args& a);
  ~cuda_forward() override;
  cuda_forward(const cuda_forward&) = delete;
  cuda_forward& operator=(const cuda_forward&) = delete;

  result<void> run(const micro_batch& batch, forward_output& out) override;
  layer_range range() const override { return range_; }
  const cuda_weights_stats& weight_stats() const { return weights_->stats(); }
  std::string describe_weights() const override { return weights_->stats().describe(); }
  uint64_t streamed_bytes_per_pass() const override { return weights_->stats().streamed_per_pass; }

 private:
  // Offsets of one batch's inputs in the staging buffer (host) and its device twin. Bytes, 256-aligned.
  struct input_layout {
    uint64_t x = 0;       // [n, n_embd] f32: embedding rows or the previous stage's activations
    uint64_t cs = 0;      // [n, n_rot / 2, 2] f32: rope (cos, sin)
    uint64_t n_pos = 0;   // [n] i32: positions each token attends to (pos + 1)
    uint64_t ids = 0;     // [n_out] i32: batch rows that want logits
    uint64_t dst = 0;     // [n_layer, 2, n] pointers: KV rows each token's K (then V) goes to
    uint64_t tab = 0;     // [n_layer, 2, n, max_blocks] pointers: each token's K (then V) block table
    uint64_t total = 0;
    int32_t max_blocks = 1;
  };
  struct scratch {        // device activations for up to `rows` tokens, logits for up to `out_rows`
    float *x = nullptr, *cur = nullptr, *q = nullptr, *k = nullptr, *v = nullptr, *attn = nullptr, *proj = nullptr,
          *gate = nullptr, *up = nullptr, *logits = nullptr;
    size_t rows = 0, out_rows = 0;
  };

  cuda_forward() = default;
  static uint64_t activation_bytes(const model_hparams& hp, size_t rows, size_t out_rows, bool last);
  status grow_scratch(size_t rows, size_t out_rows);
  status grow_inputs(uint64_t bytes);
  // --fast-prefill: scratch for cuda::matmul_fast at n rows (fp16 x and weight tiles), grown like the activations.
  static uint64_t fast_scratch_bytes(const model_hparams& hp, size_t rows);
  status grow_fast_scratch(size_t rows);
  input_layout layout(size_t n, size_t n_out, int32_t max_blocks) const;
  // cuda_forward_batch.cpp: fills the staging buffer for the batch and queues its upload on the compute stream.
  status stage_inputs(const micro_batch& b, const input_layout& lay);
  // cuda_forward.cpp: the kernels of one layer and of the head, queued on the compute stream.
  // y[n, m.n_rows] = x[n, m.k] * m^T: the canonical kernel, or cuBLAS for n >= k_fast_prefill_rows with --fast-prefill.
  status matmul(const weight_view& m, const float* x, size_t n, float* y);
  status attention_block(int32_t layer, const layer_weights& w, size_t n, const input_layout& lay);
  status ffn_block(const layer_weights& w, size_t n);
  status output_head(size_t n, size_t n_out, const input_layout& lay, forward_output& out);
  status run_pass(const micro_batch& b, forward_output& out);

  std::shared_ptr<backend> be_;
  const model* model_ = nullptr;
  layer_range range_;
  kv_cache* kv_ = nullptr;
  thread_pool* pool_ = nullptr;
  weight_source* src_ = nullptr;             // the weights' source, if any (external or own_store_)
  std::unique_ptr<weight_store> own_store_;  // unified without a source: reads the file into registered memory
  stream_handle compute_ = nullptr, copy_ = nullptr;
  std::unique_ptr<cuda_weights> weights_;    // after the streams (destroyed before them)
  scratch s_;
  void* act_ = nullptr;                      // device block holding the scratch arrays
  void* in_dev_ = nullptr;                   // device inputs [in_cap_]
  void* in_host_ = nullptr;                  // page-locked staging [in_cap_]
  uint64_t in_cap_ = 0;
  void* out_host_ = nullptr;                 // page-locked logits / activations on their way back
  uint64_t out_cap_ = 0;
  std::vector<double> inv_freq_;             // [n_rot / 2] the model's rope table
  std::vector<const void*> kt_, vt_;         // one sequence's block table (host scratch)
  void* blas_ = nullptr;                     // --fast-prefill: a cuBLAS handle
  void* fast_scratch_ = nullptr;             // --fast-prefill: device scratch [fast_rows_ rows' worth]
  size_t fast_rows_ = 0;
};

}  // namespace lime
