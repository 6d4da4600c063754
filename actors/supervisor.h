// The supervisor actor (head only): the cluster view (nodes, profiles, liveness), placement (contiguous groups sized
// by memory budget, or a fixed placement), assignments with a new epoch each time, and recovery: a lost node's layers
// are re-placed over the survivors and the scheduler replays what was in flight; when the survivors cannot hold the
// model the cluster is "below capacity" until a node joins. Joins are placed when the scheduler is idle.
#pragma once
#include <caf/actor.hpp>
#include <caf/fwd.hpp>

#include "actors/cluster_config.h"
#include "messages/wire_types.h"

namespace lime {

struct supervisor_args {
  node_config cfg;        // the head's
  node_context ctx;
  msg::node_profile self; // the head's own profile
  caf::actor node;        // (route_atom, peer, frame) sends assignments / errors
  caf::actor network;     // net_stats / net_close
  caf::actor scheduler;   // (placed_atom, epoch, n_stages, serving, message)
};

// Interface:
//   (std::string from, frame_ptr f)  profile, assignment_ack, memory_pressure, status_request (from a client)
//   peer_up_msg / peer_down_msg      from the node
//   (idle_atom)                      from the scheduler: no request in flight (deferred joins are placed now)
caf::actor spawn_supervisor(caf::actor_system& sys, supervisor_args args);

}  // namespace lime
