// The layer_group actor: runs a contiguous range of layers (runtime/stage.h) on arriving micro-batches with the KV of
// those sequences, then hands the activations (or, at the last layer, the sampled tokens) to its node to route on:
// it never knows whether the next group is local or remote. Gets its weights through the loader's prefetch/ready
// exchange before it accepts work.
#pragma once
#include <atomic>
#include <cstdint>
#include <memory>

#include <caf/actor.hpp>
#include <caf/fwd.hpp>

#include "actors/cluster_config.h"
#include "actors/frame_ptr.h"
#include "actors/type_ids.h"
#include "runtime/stage.h"

namespace lime {

struct layer_group_args {
  node_context ctx;
  stage_config stage;
  uint64_t epoch = 0;
  caf::actor node;        // receives (route_atom, frame_ptr) for every output and (group_up_atom, lo, ok, msg)
  caf::actor loader;      // answers (from, frame_ptr prefetch_request) with (from, frame_ptr prefetch_ready)
  caf::actor kv_manager;  // receives (kv_usage_atom, lo, used_bytes, limit_bytes) after each batch
  std::shared_ptr<std::atomic<int64_t>> crash_countdown;  // test hook; null = off
  bool detached = true;   // own thread (a stage computes for long); false: on the scheduler, so CAF's deterministic
                          // test coordinator steps it (a detached actor runs on a thread the coordinator never sees)
};

// Interface:
//   (std::string from, frame_ptr f)  f: micro_batch (epoch must equal the group's; first_layer == range.lo),
//                                        seq_free (releases those sequences' KV and refuses them from now on),
//                                        prefetch_ready (from the loader).
//   weight_store_handle              from the loader before prefetch_ready when the group's weights are streamed:
//                                    the stage reads them through the store (stage_config::weights)
//   (kv_grow_atom, int32_t blocks)   from the loader: weight budget was given back; the store's pending plan is
//                                    installed (apply_pending, this thread), then the KV pool grows by `blocks`
//   (kv_shrink_atom) -> int32_t      from the loader: lower the KV pool to max(the split's limit, in use, in use /
//                                    k_kv_target) and return the blocks freed
// With a store, a batch that finds the KV pool full is not failed at once: it (and every batch behind it) waits
// while the group asks the loader for room ((kv_full_atom, lo, blocks) -> kv_grow); it fails only when the loader
// has nothing left to give.
// Outputs (to node, as (route_atom, frame_ptr), stamped with the group's epoch):
//   micro_batch for the next group (first_layer = hi, activations), or sampled_tokens at the last layer, or
//   error{request_id = batch id, code "batch_failed"} when the stage refused the batch (KV full, bad sizes).
// Batches that arrive before the weights are ready wait, in order.
caf::actor spawn_layer_group(caf::actor_system& sys, layer_group_args args);

}  // namespace lime
