// The memory budget of one lime-node: how its bytes split between its layer groups' weights (the model's mapped
// pages when everything fits, else a weight store's budget per group), their KV pools and their activations; the
// bytes a node needs to hold a layer range (what placement asks); the KV watermarks memory pressure acts at.
// Pure planning: it allocates nothing (the node, loader and layer groups apply it; actors/node.cpp).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "kernels/tensor_type.h"
#include "runtime/forward.h"
#include "runtime/model.h"
#include "runtime/result.h"
#include "runtime/weight_store.h"

namespace lime {

// KV watermarks of a node, as fractions of its KV pools: kv_manager reports pressure high when use reaches
// k_kv_high and normal again at k_kv_low. The loader then resizes each streaming group's pool so that its use is
// k_kv_target of it: between the two, so neither watermark fires again at once (a growth multiplies the pool by
// k_kv_high / k_kv_target = 1.5 at least; a shrink never goes below the pool the split gave).
constexpr double k_kv_high = 0.90;
constexpr double k_kv_low = 0.50;
constexpr double k_kv_target = 0.60;

struct node_budget_config {
  uint64_t budget = 0;                  // bytes for weights + KV + activations; 0: no limit
  int32_t n_rows = 512;                 // rows per micro-batch (the head's -b): sizes the activations
  int32_t n_logit_rows = 64;            // rows the last stage samples per batch (sequences in flight)
  int32_t n_threads = 1;                // compute threads per group (attention scratch)
  int32_t kv_reserve_positions = 256;   // KV positions per layer a group keeps at least (placement reserves them)
  int32_t kv_block_size = 32;           // positions per KV block
  tensor_type kv_type = tensor_type::f32;
  weight_store_config store;            // streaming settings (policy, I/O); budget and range are set per group
  // With a budget, weights that fit are still held by weight stores (all resident, read once with O_DIRECT), so KV
  // pressure can turn some of them into streamed ones. true: mapped pages when everything fits (nothing to trade).
  bool mapped_when_fits = false;
};

// One layer group's share.
struct node_group_budget {
  layer_range range;
  uint64_t weight_bytes = 0;    // the range's weights (stage_weight_bytes)
  bool streamed = false;        // a weight store holds them under store_budget; false: the model's mapped pages
  uint64_t store_budget = 0;    // bytes (streamed): resident tensors + ring + row buffer
  uint64_t store_min = 0;       // the store's minimum (weight_plan_min_budget): memory pressure never goes below
  uint64_t activations = 0;     // bytes (node_budget_activations)
  uint64_t kv_block_bytes = 0;  // one KV block of the group (K and V of all its layers)
  int32_t kv_blocks = 0;        // its KV pool limit in blocks
  uint64_t kv_bytes() const { return kv_block_bytes * static_cast<uint64_t>(kv_blocks); }
};

// The node's split. Every byte of the budget is in one term:
//  * activations: per group, the forward pass's scratch for a micro-batch of n_rows rows, the activations the
//    group receives and sends, the attention scratch per thread, and at the last layer n_logit_rows rows of logits
//    with the sampler's arrays (node_budget_activations).
//  * kv: per group, its KV pool. Resident: what is left after weights and activations, shared by layer count.
//    Streamed: kv_reserve_positions per layer (memory pressure grows it later by taking from the weights).
//  * weights: resident (everything fits: weights + KV reserve + activations <= budget), the weight bytes as
//    mapped pages; streamed, the rest of the budget as weight-store budgets: each group gets its store's minimum,
//    then the remainder in proportion to its weight bytes, capped where its store keeps everything resident (what
//    is still left goes to the KV pools).
// Not in it (as with lime-chat's fixed term, which a node does not count): code, libraries, thread stacks, the
// actor runtime, network buffers and the model's mapped header.
struct node_budget_split {
  uint64_t budget = 0;          // 0: no limit
  uint64_t weights = 0;         // resident weight bytes + store budgets
  uint64_t kv = 0;
  uint64_t activations = 0;
  bool streamed = false;        // some group streams its weights
  bool over = false;            // the budget cannot hold the groups even streamed: resident, over the budget
  uint64_t need = 0;            // over: the smallest budget that streams them
  std::vector<node_group_budget> groups;
  std::string describe() const;  // "budget 12.0 MiB = weights 8.0 MiB (streamed) + KV 2.0 MiB + activations 2.0 MiB"
};

uint64_t node_budget_activations(const model& m, layer_range r, const node_budget_config& cfg);
uint64_t node_budget_kv_block_bytes(const model& m, layer_range r, const node_budget_config& cfg);
int32_t node_budget_kv_reserve_blocks(const node_budget_config& cfg);  // >= 1

// Bytes a node needs to hold layers [lo, hi) alone, for placement: the smaller of
//   weights + KV reserve                               (resident; the placement's accounting before streaming,
//                                                        kept so budgets that placed layers before still do), and
//   weight_plan_floor_budget + KV reserve + activations (streamed: the weight store's minimum, everything counted).
uint64_t node_budget_range_need(const model& m, layer_range r, const node_budget_config& cfg);

// The split of cfg.budget over the node's groups. Errors: invalid_argument (an empty or out-of-range group, bad
// store settings); a budget too small even for streaming is not an error: the split is resident and `over`.
result<node_budget_split> node_budget_plan(const model& m, const std::vector<layer_range>& groups,
                                           const node_budget_config& cfg);

}  // namespace lime
