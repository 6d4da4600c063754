// The kv_manager actor: the node's KV accountant. Layer groups report their KV blocks after every batch; it keeps
// the node's total against the KV budget and, when use crosses the high watermark (or falls back under the low
// one), sends a memory-pressure report to the node, which passes it to the supervisor and to its loader (that moves
// weight budget to the KV pools and back).
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
//   (weights_atom, uint64_t resident, uint64_t streamed)  the loader's weight bytes in memory and streamed per
//                                                    token: reported at once, and passed on in every report
//   (tick_atom)                                                                      forget groups (new placement)
// A level change is reported at once; so is high again after the KV limit grew (the loader gave weights back) and
// use crossed the high watermark of the larger pool.
caf::actor spawn_kv_manager(caf::actor_system& sys, kv_manager_args args);

}  // namespace lime
