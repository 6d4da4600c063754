// The loader actor: owns a node's weight memory. In this issue every weight the node's groups need stays resident:
// a prefetch request faults the group's tensors into memory (madvise WILLNEED, then a touch of every page) and
// answers ready, so layer_group already works through the prefetch/ready exchange the offloading issue streams with.
#pragma once
#include <caf/actor.hpp>
#include <caf/fwd.hpp>

#include "actors/cluster_config.h"

namespace lime {

// Interface:
//   (std::string from, frame_ptr prefetch_request{group, lo, hi}) -> sends (std::string "loader", frame_ptr
//       prefetch_ready{group, ok, message}) back to the sender once the weights of [lo, hi) (plus the embedding at
//       lo == 0 and the output head at hi == n_layer) are in memory.
//   (kv_query_atom) -> uint64_t resident weight bytes.
caf::actor spawn_loader(caf::actor_system& sys, node_context ctx);

}  // namespace lime
