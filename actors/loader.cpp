// loader actor: the node's split per epoch, mapped weights faulted in or a weight store built per streaming group,
// and the weights <-> KV exchange under memory pressure.
#include "actors/loader.h"

#include <sys/mman.h>
#include <unistd.h>

#include <caf/actor_system.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/stateful_actor.hpp>
#include <spdlog/spdlog.h>

#include <cmath>
#include <map>
#include <set>

#include "actors/frame_ptr.h"
#include "actors/type_ids.h"
#include "runtime/mem_budget.h"
#include "runtime/node_budget.h"
#include "runtime/placement.h"
#include "runtime/stage.h"
#include "runtime/weight_store.h"

namespace lime {
namespace {

using namespace std::chrono_literals;

// Brings a tensor's pages into memory; returns a value that depends on every page so the reads are not elided.
uint64_t touch(const weight_view& w) {
  if (!w.data || w.n_bytes == 0) return 0;
  const long page = sysconf(_SC_PAGESIZE);
  const uintptr_t begin = reinterpret_cast<uintptr_t>(w.data) & ~static_cast<uintptr_t>(page - 1);
  const uintptr_t end = reinterpret_cast<uintptr_t>(w.data) + w.n_bytes;
  (void)madvise(reinterpret_cast<void*>(begin), end - begin, MADV_WILLNEED);
  uint64_t sum = 0;
  for (uintptr_t p = reinterpret_cast<uintptr_t>(w.data); p < end; p += static_cast<uintptr_t>(page))
    sum += *reinterpret_cast<const volatile uint8_t*>(p);
  return sum;
}

uint64_t touch_range(const model& m, int32_t lo, int32_t hi) {
  uint64_t sum = 0;
  for (int32_t l = lo; l < hi; ++l) {
    const layer_weights& w = m.layer(l);
    for (const weight_view* v : {&w.attn_norm, &w.wq, &w.wk, &w.wv, &w.wo, &w.ffn_norm, &w.w_gate, &w.w_up, &w.w_down})
      sum += touch(*v);
  }
  if (lo == 0) sum += touch(m.tok_embd());
  if (hi == m.hparams().n_layer) sum += touch(m.output_norm()) + touch(m.output());
  return sum;
}

// A streaming group of the current plan. Loader thread only (the store's give_back / take_back / stats are
// thread-safe; its group applies the changes on its own thread).
struct group_entry {
  loader_group_plan plan;
  std::shared_ptr<weight_store> store;  // built at the group's prefetch request
  caf::actor group;
  uint64_t budget = 0;                  // the store's budget as last set here (changes pending included)
  int32_t kv_blocks = 0;                // the group's KV limit as last set here
  bool shrinking = false;               // a kv_shrink request is out
};

struct loader_state {
  loader_args args;
  uint64_t epoch = 0;
  std::map<int32_t, group_entry> groups;           // the current plan, by first layer
  std::set<std::pair<int32_t, int32_t>> resident;  // mapped ranges faulted in
  uint64_t mapped_bytes = 0;
  bool cache_dropped = false;
  uint64_t reported_resident = ~0ull, reported_streamed = ~0ull;
  static inline const char* name = "loader";
};

using loader_actor = caf::stateful_actor<loader_state>*;

std::string range_str(const loader_group_plan& p) { return std::to_string(p.lo) + "-" + std::to_string(p.hi); }

// Resident weight bytes (mapped ranges + stores' resident tensors) and bytes streamed per token.
std::pair<uint64_t, uint64_t> weight_totals(loader_actor self) {
  uint64_t resident = self->state.mapped_bytes, streamed = 0;
  for (auto& [lo, e] : self->state.groups)
    if (e.store) {
      const weight_store_stats s = e.store->stats();
      resident += s.resident_bytes;
      streamed += s.streamed_per_pass;
    }
  return {resident, streamed};
}

void report_weights(loader_actor self) {
  auto& st = self->state;
  if (!st.args.kv_manager) return;
  const auto [resident, streamed] = weight_totals(self);
  if (resident == st.reported_resident && streamed == st.reported_streamed) return;
  st.reported_resident = resident;
  st.reported_streamed = streamed;
  self->send(st.args.kv_manager, weights_atom_v, resident, streamed);
}

void on_plan(loader_actor self, const loader_plan& p) {
  auto& st = self->state;
  if (p.epoch < st.epoch) return;
  st.epoch = p.epoch;
  st.groups.clear();  // the old groups are stopping; each keeps its store alive until it is gone
  for (const loader_group_plan& g : p.groups) {
    if (!g.streamed) continue;
    group_entry e;
    e.plan = g;
    e.budget = g.store_budget;
    e.kv_blocks = g.kv_blocks;
    st.groups[g.lo] = e;
  }
}

// Builds the group's store (blocking this thread while its resident weights are read) and hands it over.
bool build_store(loader_actor self, group_entry& e, const caf::actor& group, std::string* error) {
  auto& st = self->state;
  const model& m = *st.args.ctx.mdl;
  if (!e.store) {
    if (!st.cache_dropped) {
      // What the model's load read ahead is charged to this process; streamed weights never use those pages.
      (void)mem_budget_drop_file_cache(m.file().path());
      st.cache_dropped = true;
    }
    weight_store_config sc;
    sc.range = layer_range{e.plan.lo, e.plan.hi};
    sc.budget = e.budget;
    sc.policy = weight_policy::lime;
    auto s = weight_store::create(m, m.file().path(), sc);
    if (!s.ok()) {
      *error = "weight store for layers " + range_str(e.plan) + ": " + s.err().message;
      return false;
    }
    e.store = std::shared_ptr<weight_store>(std::move(s).value());
    const weight_store_stats ws = e.store->stats();
    spdlog::info("loader: node {} layers {}: weights {} streamed under {}: {} resident, {} streamed per token, ring {} x {}, "
                 "I/O {}{}{}",
                 st.args.node_name, range_str(e.plan), format_size(ws.weight_bytes), format_size(ws.budget),
                 format_size(ws.resident_bytes), format_size(ws.streamed_per_pass), ws.ring_depth, format_size(ws.slot_bytes),
                 io_mode_name(ws.mode), ws.mode_note.empty() ? "" : ": ", ws.mode_note);
  }
  e.group = group;
  self->send(group, weight_store_handle{e.store});
  return true;
}

void on_prefetch(loader_actor self, const msg::prefetch_request& req, uint64_t epoch) {
  auto& st = self->state;
  const model& m = *st.args.ctx.mdl;
  auto sender = caf::actor_cast<caf::actor>(self->current_sender());
  msg::prefetch_ready ready{req.group, true, ""};
  if (req.layer_lo < 0 || req.layer_hi > m.hparams().n_layer || req.layer_lo >= req.layer_hi) {
    ready.ok = false;
    ready.message = "layer range " + std::to_string(req.layer_lo) + "-" + std::to_string(req.layer_hi) + " is not in the model";
  } else if (auto it = st.groups.find(req.layer_lo); it != st.groups.end() && it->second.plan.hi == req.layer_hi) {
    if (sender) ready.ok = build_store(self, it->second, sender, &ready.message);
  } else if (st.resident.insert({req.layer_lo, req.layer_hi}).second) {
    (void)touch_range(m, req.layer_lo, req.layer_hi);
    st.mapped_bytes += stage_weight_bytes(m, layer_range{req.layer_lo, req.layer_hi});
    spdlog::debug("loader: layers {}-{} resident", req.layer_lo, req.layer_hi);
  }
  report_weights(self);  // before ready: the head hears of the weights before this node acks its placement
  if (sender) self->send(sender, std::string("loader"), make_frame_ptr(ready, epoch));
}

// Gives up to `want` KV blocks' worth of weight budget (never below the store's minimum); returns the blocks.
int32_t give_to_kv(loader_actor self, group_entry& e, int64_t want, const char* why) {
  if (!e.store || want <= 0 || e.plan.kv_block_bytes == 0) return 0;
  const uint64_t avail = e.budget > e.plan.store_min ? e.budget - e.plan.store_min : 0;
  const int64_t n = std::min<int64_t>(want, static_cast<int64_t>(avail / e.plan.kv_block_bytes));
  if (n <= 0) return 0;
  const uint64_t bytes = static_cast<uint64_t>(n) * e.plan.kv_block_bytes;
  auto r = e.store->give_back(bytes);
  if (!r.ok()) {
    spdlog::warn("loader: node {} layers {}: cannot give back {} of weights: {}", self->state.args.node_name,
                 range_str(e.plan), format_size(bytes), r.err().message);
    return 0;
  }
  e.budget -= bytes;
  e.kv_blocks += static_cast<int32_t>(n);
  spdlog::info("loader: node {} layers {}: {}: gave back {} of weight budget to KV (+{} blocks, KV limit {} blocks); "
               "store budget {}",
               self->state.args.node_name, range_str(e.plan), why, format_size(bytes), n, e.kv_blocks, format_size(e.budget));
  return static_cast<int32_t>(n);
}

// Blocks that bring use / limit down to k_kv_target (at least one).
int64_t growth_for(int32_t blocks, double frac) {
  const double target = std::ceil(static_cast<double>(blocks) * frac / k_kv_target);
  return std::max<int64_t>(1, static_cast<int64_t>(target) - blocks);
}

void shrink(loader_actor self, group_entry& e) {
  e.shrinking = true;
  const uint64_t epoch = self->state.epoch;
  const int32_t lo = e.plan.lo;
  self->request(e.group, 10s, kv_shrink_atom_v)
      .then(
          [=](int32_t freed) {
            auto& st = self->state;
            auto it = st.groups.find(lo);
            if (st.epoch != epoch || it == st.groups.end()) return;
            group_entry& g = it->second;
            g.shrinking = false;
            if (freed <= 0) return;
            const uint64_t bytes = static_cast<uint64_t>(freed) * g.plan.kv_block_bytes;
            g.kv_blocks -= freed;
            auto r = g.store->take_back(bytes);
            if (!r.ok()) {
              spdlog::warn("loader: node {} layers {}: cannot take back {} of weights: {}", st.args.node_name,
                           range_str(g.plan), format_size(bytes), r.err().message);
              return;
            }
            g.budget += bytes;
            spdlog::info("loader: node {} layers {}: pressure normal: KV freed {} blocks, took back {} of weight budget; "
                         "store budget {}",
                         st.args.node_name, range_str(g.plan), freed, format_size(bytes), format_size(g.budget));
          },
          [=](const caf::error&) {
            auto it = self->state.groups.find(lo);
            if (self->state.epoch == epoch && it != self->state.groups.end()) it->second.shrinking = false;
          });
}

void on_pressure(loader_actor self, const msg::memory_pressure& p) {
  auto& st = self->state;
  report_weights(self);
  if (p.kv_bytes_limit == 0) return;
  const double frac = static_cast<double>(p.kv_bytes_used) / static_cast<double>(p.kv_bytes_limit);
  for (auto& [lo, e] : st.groups) {
    if (!e.store || !e.group) continue;
    if (p.level == msg::pressure_level::high && frac >= k_kv_high) {
      const int32_t n = give_to_kv(self, e, growth_for(e.kv_blocks, frac), "KV pressure high");
      if (n > 0) self->send(e.group, kv_grow_atom_v, n);
    } else if (p.level != msg::pressure_level::high && frac <= k_kv_low && e.kv_blocks > e.plan.kv_blocks && !e.shrinking) {
      shrink(self, e);
    }
  }
}

caf::behavior loader_fn(loader_actor self, loader_args args) {
  self->state.args = std::move(args);
  return {
      [=](const loader_plan& p) { on_plan(self, p); },
      [=](const std::string&, const frame_ptr& f) {
        if (!f) return;
        if (auto* req = std::get_if<msg::prefetch_request>(&f->content)) on_prefetch(self, *req, f->epoch);
        else if (auto* p = std::get_if<msg::memory_pressure>(&f->content)) on_pressure(self, *p);
      },
      [=](kv_full_atom, int32_t lo, int32_t blocks) {
        auto& st = self->state;
        auto sender = caf::actor_cast<caf::actor>(self->current_sender());
        int32_t n = 0;
        auto it = st.groups.find(lo);
        if (it != st.groups.end() && it->second.store && it->second.group == sender) {  // not a stopped group's
          group_entry& e = it->second;
          n = give_to_kv(self, e, std::max<int64_t>(blocks, growth_for(e.kv_blocks, k_kv_high)), "KV full");
        }
        if (sender) self->send(sender, kv_grow_atom_v, n);
      },
      [=](kv_query_atom) { return weight_totals(self).first; },
  };
}

}  // namespace

caf::actor spawn_loader(caf::actor_system& sys, loader_args args) {
  if (!args.detached) return sys.spawn(loader_fn, std::move(args));
  return sys.spawn<caf::detached>(loader_fn, std::move(args));
}

caf::actor spawn_loader(caf::actor_system& sys, node_context ctx) {
  loader_args a;
  a.ctx = ctx;
  a.detached = false;
  return spawn_loader(sys, std::move(a));
}

}  // namespace lime
