// Local messages between the node, the loader and its layer groups (CAF types; ids in actors/type_ids.h): the
// node's budget split for the loader, and the weight store the loader builds for a group. Neither is a wire message:
// nothing here has a Cap'n Proto schema, and none of it is ever sent to a peer.
#pragma once
#include <cstdint>
#include <memory>
#include <vector>

#include <caf/meta/type_name.hpp>

namespace lime {

class weight_store;

// A weight store handed from the loader to a layer group (its stage reads the weights through it; the loader keeps
// a reference to change its budget under memory pressure). Local only, by design: it never crosses the network,
// and its inspect() serializes nothing, so a copy that were ever serialized would arrive empty (no store).
struct weight_store_handle {
  std::shared_ptr<weight_store> store;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, weight_store_handle&) {
  return f(caf::meta::type_name("lime::weight_store_handle"));
}

// One layer group's share of the node's budget (runtime/node_budget.h's node_group_budget, as the loader needs it).
struct loader_group_plan {
  int32_t lo = 0, hi = 0;       // layers [lo, hi)
  bool streamed = false;        // build a weight store (else: fault the mapped weights in)
  uint64_t store_budget = 0;    // bytes for the store
  uint64_t store_min = 0;       // the store's minimum: memory pressure never gives back below it
  uint64_t kv_block_bytes = 0;  // one KV block of the group
  int32_t kv_blocks = 0;        // the group's KV pool limit as the split gave it
};

// The node's split for one placement epoch (node -> loader, before the groups are spawned).
struct loader_plan {
  uint64_t epoch = 0;
  std::vector<loader_group_plan> groups;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, loader_group_plan& x) {
  return f(caf::meta::type_name("lime::loader_group_plan"), x.lo, x.hi, x.streamed, x.store_budget, x.store_min,
           x.kv_block_bytes, x.kv_blocks);
}
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, loader_plan& x) {
  return f(caf::meta::type_name("lime::loader_plan"), x.epoch, x.groups);
}

}  // namespace lime
