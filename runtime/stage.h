// One pipeline stage in one process: the forward pass over a layer range [lo, hi) with its own paged KV, and, when
// the range ends at the model's last layer, sampling of the rows that ask for it. The layer_group actor wraps it;
// the stage knows nothing of actors, sockets or where its input came from.
#pragma once
#include <cstdint>
#include <memory>
#include <vector>

#include "runtime/backend.h"
#include "runtime/forward.h"
#include "runtime/kv_cache.h"
#include "runtime/model.h"
#include "runtime/result.h"
#include "runtime/sampler.h"
#include "runtime/thread_pool.h"
#include "runtime/vocab.h"

namespace lime {

// What the last stage needs to sample one row (mirrors msg::seq_sampling).
struct row_sampling {
  sampling_params params;
  uint64_t checksum = 0;          // logits-checksum chain before this token
  std::vector<int32_t> history;   // the sequence's tokens so far (or at least the repetition window), oldest first
  bool ignore_eog = false;        // end-of-generation ids are masked (after the checksum step)
};

struct sampled_row {
  int32_t seq_id = 0;
  int32_t position = 0;    // position the sampled token will occupy (the row's position + 1)
  int32_t token = 0;
  uint64_t checksum = 0;   // chain after this token's logits
};

struct stage_config {
  layer_range range;
  int32_t n_threads = 0;        // 0: all online CPUs
  int32_t kv_block_size = 32;   // positions per KV block
  int32_t kv_max_blocks = 0;    // hard KV pool limit for this stage (blocks over all sequences)
  tensor_type kv_type = tensor_type::f32;
  // Streamed weights (runtime/weight_store.h) covering exactly `range`; must outlive the stage. nullptr: the
  // model's mapped views.
  weight_source* weights = nullptr;
  // Where the forward pass runs (runtime/backend.h); shared by a node's stages. nullptr: the CPU forward_pass.
  std::shared_ptr<backend> device;
  int32_t max_batch = 512;  // rows per batch the device reserves activations for (larger batches grow them)
};

class pipeline_stage {
 public:
  // m and voc must outlive the stage. Errors: invalid_argument (empty or out-of-range layer range, max_blocks < 1).
  static result<std::unique_ptr<pipeline_stage>> create(const model& m, const vocab& voc, const stage_config& cfg);

  // Runs the batch through [lo, hi). When hi < n_layer, *hidden receives the activations [n, n_embd] for the next
  // stage. When hi == n_layer, every row with want_logits is sampled in row order with sampling[i] (one entry per
  // such row): the checksum chain steps over the raw logits, eog ids are masked when ignore_eog, then
  // sample_token(logits, params, history, position = row pos + 1) exactly as session::generate does; *sampled gets
  // one entry per such row. Errors: invalid_argument (sizes do not match), out_of_memory (KV pool full; nothing
  // written). Bitwise: a row's activations, logits and sample do not depend on the rest of the batch.
  result<void> run(const micro_batch& batch, const std::vector<row_sampling>& sampling, std::vector<float>* hidden,
                   std::vector<sampled_row>* sampled);

  void release(int32_t seq_id);    // frees the sequence's KV blocks (unknown ids are ignored)
  void release_all();
  bool is_last() const;
  layer_range range() const { return cfg_.range; }
  int32_t kv_blocks_in_use() const;
  int32_t kv_blocks_limit() const { return cfg_.kv_max_blocks; }
  // Changes the KV pool limit between runs (kv_cache::set_max_blocks: lowering it frees unused blocks' memory at
  // once). Errors: invalid_argument (below the blocks in use, or < 1; nothing changes).
  result<void> set_kv_max_blocks(int32_t n);
  uint64_t kv_block_bytes() const;

 private:
  pipeline_stage() = default;
  const model* model_ = nullptr;
  const vocab* vocab_ = nullptr;
  stage_config cfg_;
  std::unique_ptr<thread_pool> pool_;
  std::unique_ptr<kv_cache> kv_;
  std::unique_ptr<forward_engine> fwd_;
  forward_output out_;
  std::vector<float> row_;      // [n_vocab] logits of one row, eog-masked copy
  sampler_scratch scratch_;
};

// Bytes a stage's weights take: the layers' tensors, plus token_embd when lo == 0, plus output_norm and output
// when hi == n_layer (token_embd counted once when the embeddings are tied and both ends are held).
uint64_t stage_weight_bytes(const model& m, layer_range range);

}  // namespace lime
