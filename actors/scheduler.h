// The scheduler actor (head only): wraps scheduler_core. Client requests in, micro-batches out to the first group
// (through the node), sampled tokens back, token streams to clients; batches that do not come back within the
// timeout are replayed, and every placement change replays all requests in flight.
#pragma once
#include <caf/actor.hpp>
#include <caf/fwd.hpp>

#include "actors/cluster_config.h"

namespace lime {

struct scheduler_args {
  node_config cfg;
  node_context ctx;
  caf::actor node;  // (route_atom, frame) for batches and seq_free; (route_atom, peer, frame) for clients
};

// Interface:
//   (std::string from, frame_ptr f)   generation_request, cancel (from clients); sampled_tokens, error batch_failed
//   peer_down_msg                     a client is gone (its requests end, KV freed)
//   (placed_atom, uint64_t epoch, int32_t n_stages, bool serving, std::string message)   from the supervisor
//   (counts_atom) -> (uint32_t active, uint32_t queued, uint64_t replays)
caf::actor spawn_scheduler(caf::actor_system& sys, scheduler_args args);

}  // namespace lime
