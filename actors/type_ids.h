// The one CAF type-id block of lime: every atom and message type lime's actors exchange. Register it (and load the
// middleman) with lime_init_caf() before building the actor_system; every process of a cluster must agree.
#pragma once
#include <string>

#include <caf/fwd.hpp>
#include <caf/type_id.hpp>

#include "actors/frame_ptr.h"
#include "actors/loader_types.h"
#include "actors/network_types.h"

CAF_BEGIN_TYPE_ID_BLOCK(lime, caf::first_custom_type_id)

  // -- message types (network)
  CAF_ADD_TYPE_ID(lime, (lime::frame_ptr))
  CAF_ADD_TYPE_ID(lime, (lime::peer_up_msg))
  CAF_ADD_TYPE_ID(lime, (lime::peer_down_msg))
  CAF_ADD_TYPE_ID(lime, (lime::peer_refused_msg))
  CAF_ADD_TYPE_ID(lime, (lime::fault_rule))
  CAF_ADD_TYPE_ID(lime, (lime::fault_config))
  CAF_ADD_TYPE_ID(lime, (lime::link_stats))
  CAF_ADD_TYPE_ID(lime, (lime::net_stats))

  // -- message types (local only: node, loader, layer groups; never sent to a peer, see actors/loader_types.h)
  CAF_ADD_TYPE_ID(lime, (lime::weight_store_handle))
  CAF_ADD_TYPE_ID(lime, (lime::loader_group_plan))
  CAF_ADD_TYPE_ID(lime, (lime::loader_plan))

  // -- atoms (network; CAF 0.17 atoms are at most 10 characters)
  CAF_ADD_ATOM(lime, lime, net_listen_atom, "net_listen")
  CAF_ADD_ATOM(lime, lime, net_connect_atom, "net_conn")
  CAF_ADD_ATOM(lime, lime, net_send_atom, "net_send")
  CAF_ADD_ATOM(lime, lime, net_broadcast_atom, "net_bcast")
  CAF_ADD_ATOM(lime, lime, net_sink_atom, "net_sink")
  CAF_ADD_ATOM(lime, lime, net_stats_atom, "net_stats")
  CAF_ADD_ATOM(lime, lime, net_faults_atom, "net_faults")
  CAF_ADD_ATOM(lime, lime, net_rate_atom, "net_rate")
  CAF_ADD_ATOM(lime, lime, net_pause_atom, "net_pause")
  CAF_ADD_ATOM(lime, lime, net_close_atom, "net_close")
  CAF_ADD_ATOM(lime, lime, net_tick_atom, "net_tick")    // internal: heartbeat/timeout timer
  CAF_ADD_ATOM(lime, lime, net_pump_atom, "net_pump")    // internal: rate-limited writes
  CAF_ADD_ATOM(lime, lime, net_delay_atom, "net_delay")  // internal: a fault-delayed frame is due

  // -- atoms (cluster actors: node, layer_group, loader, kv_manager, scheduler, supervisor)
  CAF_ADD_ATOM(lime, lime, route_atom, "route")          // (route_atom, frame_ptr): node routes a local frame
  CAF_ADD_ATOM(lime, lime, group_up_atom, "group_up")    // layer_group -> node: weights ready (first_layer, ok, msg)
  CAF_ADD_ATOM(lime, lime, kv_usage_atom, "kv_usage")    // layer_group -> kv_manager: (first_layer, used, limit)
  CAF_ADD_ATOM(lime, lime, kv_query_atom, "kv_query")    // -> kv_manager: (used, limit) of the node
  CAF_ADD_ATOM(lime, lime, placed_atom, "placed")        // supervisor -> scheduler: (epoch, n_stages, serving, msg)
  CAF_ADD_ATOM(lime, lime, idle_atom, "idle")            // scheduler -> supervisor: (idle_atom, bool idle)
  CAF_ADD_ATOM(lime, lime, tick_atom, "tick")            // periodic timers
  CAF_ADD_ATOM(lime, lime, counts_atom, "counts")        // scheduler -> (active, queued, replays)
  CAF_ADD_ATOM(lime, lime, redial_atom, "redial")        // node: dial the head / peers again
  CAF_ADD_ATOM(lime, lime, kv_grow_atom, "kv_grow")      // loader -> group: (blocks) weights given back, raise KV
  CAF_ADD_ATOM(lime, lime, kv_shrink_atom, "kv_shrink")  // loader -> group: () -> blocks freed (pressure normal)
  CAF_ADD_ATOM(lime, lime, kv_full_atom, "kv_full")      // group -> loader: (first_layer, blocks) a batch needs KV
  CAF_ADD_ATOM(lime, lime, weights_atom, "weights")      // loader -> kv_manager: (resident, streamed per token)

CAF_END_TYPE_ID_BLOCK(lime)

namespace lime {

// Registers the lime type-id block and loads CAF's I/O middleman (the network actor needs it): call it once per
// config, and do not load the middleman again.
void lime_init_caf(caf::actor_system_config& cfg);

}  // namespace lime
