// The node actor: one per process. It is the network actor's sink and the router of every frame: micro-batches go to
// the local layer group that starts at their first layer or to the node that holds it, sampled tokens and batch
// errors go to the head's scheduler, profiles/acks/pressure to the supervisor, client requests to the scheduler. It
// applies assignments (splits its memory budget over its layer groups: runtime/node_budget.h, given to the loader;
// spawns and links its layer groups, loader and kv_manager; drops frames of older epochs), dials
// the nodes it must reach, reports its profile, and on the head also spawns the supervisor and scheduler.
#pragma once
#include <caf/actor.hpp>
#include <caf/fwd.hpp>

#include "actors/cluster_config.h"

namespace lime {

// Interface:
//   (std::string from, frame_ptr f)             a frame from a peer (network sink) or from a local actor
//   (route_atom, frame_ptr f)                   a frame from a local actor, routed by kind
//   (route_atom, std::string peer, frame_ptr f) send to one peer (this node's own name: handled locally)
//   peer_up_msg / peer_down_msg / peer_refused_msg   from the network actor
//   (counts_atom) -> uint64_t                   frames dropped for an older epoch
// The network actor must already listen; the node makes itself its sink.
caf::actor spawn_node(caf::actor_system& sys, node_config cfg, node_context ctx, caf::actor network);

}  // namespace lime
