// The loader actor: owns a node's weight memory. The node gives it the budget split of each placement
// (runtime/node_budget.h): a group whose weights fit stays on the model's mapped pages (a prefetch request faults
// them in); a group that does not fit gets a weight store (runtime/weight_store.h, policy lime) built here, on the
// loader's own thread, under its share of the weights budget, handed to the group before prefetch_ready. Under KV
// pressure it gives weight budget back to the KV pools of streaming groups, and takes it back when pressure ends.
#pragma once
#include <string>

#include <caf/actor.hpp>
#include <caf/fwd.hpp>

#include "actors/cluster_config.h"

namespace lime {

struct loader_args {
  node_context ctx;
  std::string node_name;  // for logs
  caf::actor kv_manager;  // receives (weights_atom, resident bytes, streamed bytes per token) when they change
  bool detached = true;   // own thread (building a store reads its resident weights); false: on the scheduler, so
                          // CAF's deterministic test coordinator steps it
};

// Interface:
//   loader_plan                                   the node's split for an epoch (older epochs are ignored); it
//                                                 replaces the previous one (the loader drops its stores)
//   (std::string from, frame_ptr prefetch_request{group, lo, hi}) -> sends the sender, when the plan streams
//       [lo, hi), a weight_store_handle, then in every case (std::string "loader", frame_ptr prefetch_ready{group,
//       ok, message}) once the weights are in memory (mapped pages faulted in, or the store's resident part loaded)
//   (std::string from, frame_ptr memory_pressure) the node's KV pressure (from its kv_manager): high at the high
//       watermark: streaming groups give weight budget back (weight_store::give_back) and get (kv_grow_atom, blocks)
//       with the same bytes as KV blocks; normal at the low watermark: each grown group is asked (kv_shrink_atom)
//       for the blocks it can free, and the store takes those bytes back
//   (kv_full_atom, int32_t lo, int32_t blocks)    a group's batch needs KV blocks it does not have: it gets
//       (kv_grow_atom, n), n = 0 when its store has nothing left to give
//   (kv_query_atom) -> uint64_t                   resident weight bytes (mapped ranges + stores' resident tensors)
caf::actor spawn_loader(caf::actor_system& sys, loader_args args);
// A loader without a node (no budget plan: every group mapped), on the scheduler: actor tests.
caf::actor spawn_loader(caf::actor_system& sys, node_context ctx);

}  // namespace lime
