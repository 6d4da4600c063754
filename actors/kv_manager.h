// The kv_manager actor: the node's KV accountant. Layer groups report their KV blocks after every batch; it keeps
// the node's total against the KV budget and, when use crosses the high watermark (or falls back under the low
// one), sends a memory-pressure report to the node for the supervisor. The offloading issue makes the loader act on it.
#pragma once
#include <caf/actor.hpp>
#include <caf/fwd.hpp>

#include <string>

namespace lime {

struct kv_manager_args {
  std::string node_name;
  caf::actor node;            // receives (route_atom, frame_ptr memory_pressure)
  double high_watermark = 0.90;
  double low_watermark = 0.70;
};

// Interface:
//   (kv_usage_atom, int32_t group_lo, uint64_t used_bytes, uint64_t limit_bytes)   a group's current KV use
//   (kv_query_atom) -> (uint64_t used, uint64_t limit)                               the node's totals
//   (kv_query_atom, bool)                            internal: report changed totals (at most once a second)
//   (tick_atom)                                                                      forget groups (new placement)
caf::actor spawn_kv_manager(caf::actor_system& sys, kv_manager_args args);

}  // namespace lime
