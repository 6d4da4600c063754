// kv_manager actor: per-group KV use, node totals, pressure level changes at the watermarks.
#include "actors/kv_manager.h"

#include <caf/actor_system.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/stateful_actor.hpp>
#include <spdlog/spdlog.h>

#include <map>

#include "actors/frame_ptr.h"
#include "actors/type_ids.h"
#include "runtime/mem_budget.h"

namespace lime {
namespace {

struct kv_state {
  kv_manager_args args;
  std::map<int32_t, std::pair<uint64_t, uint64_t>> groups;  // lo -> (used, limit)
  msg::pressure_level level = msg::pressure_level::normal;
  uint64_t reported_used = 0, reported_limit = 0;  // totals in the last report
  uint64_t high_limit = 0;                         // the KV limit when pressure high was last reported
  uint64_t weights_resident = 0, weights_streamed = 0;  // from the loader, passed on in every report
  uint64_t reported_resident = 0, reported_streamed = 0;
  uint64_t reported_peak_rss = 0;                  // the process's peak resident set in the last report
  bool report_due = false;                         // a report of changed totals is scheduled
  static inline const char* name = "kv_manager";
};

caf::behavior kv_manager_fn(caf::stateful_actor<kv_state>* self, kv_manager_args args) {
  self->state.args = std::move(args);
  auto totals = [self] {
    uint64_t used = 0, limit = 0;
    for (auto& [lo, ul] : self->state.groups) {
      used += ul.first;
      limit += ul.second;
    }
    return std::make_pair(used, limit);
  };
  auto report = [self](uint64_t u, uint64_t l) {
    auto& st = self->state;
    st.reported_used = u;
    st.reported_limit = l;
    st.reported_resident = st.weights_resident;
    st.reported_streamed = st.weights_streamed;
    const process_memory pm = process_memory_read();  // the node's resident set, for the cluster status
    st.reported_peak_rss = pm.peak_rss;
    self->send(st.args.node, route_atom_v,
               make_frame_ptr(msg::memory_pressure{st.args.node_name, u, l, st.level, st.weights_resident,
                                                   st.weights_streamed, pm.rss, pm.peak_rss}));
  };
  auto changed = [self](uint64_t u, uint64_t l) {
    auto& st = self->state;
    return u != st.reported_used || l != st.reported_limit || st.weights_resident != st.reported_resident ||
           st.weights_streamed != st.reported_streamed || st.reported_peak_rss == 0;
  };
  return {
      [=](kv_usage_atom, int32_t lo, uint64_t used, uint64_t limit) {
        auto& st = self->state;
        st.groups[lo] = {used, limit};
        auto [u, l] = totals();
        if (l == 0) return;
        const double frac = static_cast<double>(u) / static_cast<double>(l);
        msg::pressure_level next = st.level;
        if (frac >= st.args.high_watermark) next = msg::pressure_level::high;
        else if (frac <= st.args.low_watermark) next = msg::pressure_level::normal;
        // Still high, but the pool grew since the last high report (the loader gave it weight budget) and use has
        // caught up with the larger pool again: that is new pressure, reported at once.
        const bool high_again = st.level == msg::pressure_level::high && frac >= st.args.high_watermark && l > st.high_limit;
        if (next != st.level || high_again) {
          st.level = next;
          if (next == msg::pressure_level::high) st.high_limit = l;
          spdlog::info("kv: node {} KV at {:.0f}% ({} of {} bytes): pressure {}", st.args.node_name, frac * 100, u, l,
                       next == msg::pressure_level::high ? "high" : "normal");
          report(u, l);
        } else if (changed(u, l) && !st.report_due) {
          // Usage for the cluster status: at most one report per second besides level changes.
          st.report_due = true;
          self->delayed_send(self, std::chrono::seconds(1), kv_query_atom_v, true);
        }
      },
      [=](kv_query_atom, bool) {
        auto& st = self->state;
        st.report_due = false;
        auto [u, l] = totals();
        if (changed(u, l)) report(u, l);
      },
      [=](weights_atom, uint64_t resident, uint64_t streamed) {
        // Rare (a store built, a budget change applied): reported at once, so the cluster status has it by the
        // time the placement serves.
        auto& st = self->state;
        st.weights_resident = resident;
        st.weights_streamed = streamed;
        auto [u, l] = totals();
        if (changed(u, l)) report(u, l);
      },
      [=](kv_query_atom) -> caf::result<uint64_t, uint64_t> {
        auto [u, l] = totals();
        return {u, l};
      },
      [=](tick_atom) {
        self->state.groups.clear();
        self->state.level = msg::pressure_level::normal;
        self->state.reported_used = self->state.reported_limit = self->state.high_limit = 0;
      },
  };
}

}  // namespace

caf::actor spawn_kv_manager(caf::actor_system& sys, kv_manager_args args) { return sys.spawn(kv_manager_fn, std::move(args)); }

}  // namespace lime
