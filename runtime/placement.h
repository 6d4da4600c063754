// Placement of a model's layers on nodes: contiguous layer groups in pipeline order, sized in proportion to the
// nodes' memory budgets (the planner comes later), or parsed from a flag. Pure functions, no I/O.
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "runtime/model.h"
#include "runtime/result.h"

namespace lime {

struct placement_group {
  std::string node;
  int32_t layer_lo = 0;
  int32_t layer_hi = 0;  // exclusive
};

struct node_capacity {
  std::string name;
  uint64_t mem_budget = 0;  // bytes the node may use for weights + KV + activations
};

// What the placement needs to know of the model.
struct model_footprint {
  std::vector<uint64_t> layer_bytes;  // [n_layer] weight bytes of each layer
  uint64_t embd_bytes = 0;            // token_embd (held by the node with layer 0)
  uint64_t head_bytes = 0;            // output_norm + output (held by the node with the last layer); when tied the
                                      // output is token_embd, so embd_bytes is part of head_bytes too
  uint64_t kv_bytes_per_layer = 0;    // KV reserve per layer a node keeps besides weights (for a minimal context)
  bool tied = false;                  // head_bytes includes token_embd: a node holding both ends counts it once
  // Optional: the bytes a node needs to hold layers [lo, hi), replacing the sum above (the supervisor passes the
  // smaller of that sum and the weight-streaming minimum + KV reserve + activations; runtime/node_budget.h). It must
  // grow with the range. The split stays proportional to the budgets; only what fits a node changes.
  std::function<uint64_t(int32_t lo, int32_t hi)> range_bytes;
};

// The footprint of a loaded model (weight bytes as the forward pass reads them).
model_footprint footprint_of(const model& m, uint64_t kv_bytes_per_layer);

// Contiguous groups in the order of `nodes` (nodes first in the list take the first layers); each node's share of
// layers is proportional to its budget (largest remainder), every node with a share gets >= 1 layer, nodes whose
// budget cannot hold even one layer are left out. A node's weights + kv reserve must fit its budget.
// Errors: unavailable ("cluster below capacity: ...") when the nodes together cannot hold the model; invalid_argument
// when nodes is empty or the model has no layers.
result<std::vector<placement_group>> place_by_budget(const model_footprint& m, const std::vector<node_capacity>& nodes);

// Parses "NAME=LO-HI,NAME=LO-HI,..." (pipeline order, hi exclusive) and checks it covers [0, n_layer) contiguously
// with non-empty groups. A node may appear more than once (several groups). Errors: invalid_argument with the reason.
result<std::vector<placement_group>> parse_placement(const std::string& text, int32_t n_layer);

// "head=0-2,w1=2-5"
std::string placement_to_string(const std::vector<placement_group>& groups);

// Parses a size: a byte count ("1048576") or a number with a binary unit K/M/G/T (optionally followed by "iB" or
// "B": "512M" = "512MiB" = 512 * 2^20; "1.5G" allowed). Errors: invalid_argument.
result<uint64_t> parse_size(const std::string& text);
std::string format_size(uint64_t bytes);  // "512.0 MiB"

}  // namespace lime
