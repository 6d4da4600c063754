// node actor: routing by frame kind and epoch, assignments (groups, links, acks), profile, redials.
#include "actors/node.h"

#include <caf/actor_system.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/exit_reason.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/stateful_actor.hpp>
#include <spdlog/spdlog.h>

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <map>
#include <set>
#include <thread>

#include "actors/frame_ptr.h"
#include "actors/kv_manager.h"
#include "actors/layer_group.h"
#include "actors/loader.h"
#include "actors/network_types.h"
#include "actors/scheduler.h"
#include "actors/supervisor.h"
#include "actors/type_ids.h"
#include "runtime/node_budget.h"
#include "runtime/placement.h"
#include "runtime/stage.h"

namespace lime {
namespace {

using namespace std::chrono_literals;

struct node_state {
  node_config cfg;
  node_context ctx;
  caf::actor net, loader, kv, supervisor, scheduler;
  uint64_t epoch = 0;
  bool assigned = false;
  msg::assignment current;
  std::map<int32_t, caf::actor> groups;  // first layer -> local group
  std::set<int32_t> groups_pending;      // groups whose weights are not ready yet
  int pending_links = 0;
  bool ack_sent = false;
  std::string ack_error;
  std::string head_name;                 // whom sampled tokens, acks and pressure go to
  std::set<std::string> linked;          // authenticated node peers
  std::map<std::string, host_port> dialed;  // peers this node dials (--peers / --join): redialed when lost
  uint64_t stale_dropped = 0;
  std::shared_ptr<std::atomic<int64_t>> crash_countdown;
  static inline const char* name = "node";
};

using node_actor = caf::stateful_actor<node_state>*;

void handle(node_actor self, const std::string& from, const frame_ptr& f, bool local);

void send_to(node_actor self, const std::string& peer, const frame_ptr& f) {
  auto& st = self->state;
  if (peer == st.cfg.name) handle(self, st.cfg.name, f, true);
  else self->send(st.net, net_send_atom_v, peer, f);
}

void send_to_head(node_actor self, const frame_ptr& f) {
  auto& st = self->state;
  if (st.cfg.head) handle(self, st.cfg.name, f, true);
  else if (!st.head_name.empty()) self->send(st.net, net_send_atom_v, st.head_name, f);
}

void stop_groups(node_actor self) {
  auto& st = self->state;
  for (auto& [lo, g] : st.groups) self->send_exit(g, caf::exit_reason::user_shutdown);
  st.groups.clear();
  st.groups_pending.clear();
  self->send(st.kv, tick_atom_v);
  self->send(st.loader, loader_plan{st.epoch, {}});  // the loader lets go of the stores (each group holds its own)
}

void maybe_ack(node_actor self) {
  auto& st = self->state;
  if (st.ack_sent || !st.groups_pending.empty() || st.pending_links > 0) return;
  st.ack_sent = true;
  msg::assignment_ack ack{st.cfg.name, st.ack_error.empty(), st.ack_error};
  spdlog::info("node {}: epoch {} {}", st.cfg.name, st.epoch, ack.ok ? "ready" : "failed: " + ack.message);
  send_to_head(self, make_frame_ptr(ack, st.epoch));
}

// The node's budget terms (runtime/node_budget.h) from its flags: activations for the micro-batches its -b and
// --parallel allow (give workers the head's values), KV in 32-position blocks, weights streamed with policy lime.
node_budget_config budget_config(const node_config& c) {
  node_budget_config b;
  b.budget = c.mem_budget;
  b.n_rows = c.max_batch_tokens;
  b.n_logit_rows = c.max_active;
  b.n_threads = c.n_threads > 0 ? c.n_threads : static_cast<int32_t>(std::max(1u, std::thread::hardware_concurrency()));
  b.store.policy = weight_policy::lime;
  return b;
}

std::string mib(uint64_t b) { return format_size(b); }

// Logs the split at info: the node's terms, and per group what it keeps resident or streams.
void log_split(node_actor self, const node_budget_split& s) {
  auto& st = self->state;
  if (s.over)
    spdlog::warn("node {}: epoch {}: {}; running them resident", st.cfg.name, st.epoch, s.describe());
  else
    spdlog::info("node {}: epoch {}: memory {}", st.cfg.name, st.epoch, s.describe());
  for (const node_group_budget& g : s.groups) {
    const std::string kv = std::to_string(g.kv_blocks) + " KV blocks x " + mib(g.kv_block_bytes);
    if (g.streamed)
      spdlog::info("node {}: layers {}-{}: weights {} streamed through a store of {} (minimum {}), {}, activations {}",
                   st.cfg.name, g.range.lo, g.range.hi, mib(g.weight_bytes), mib(g.store_budget), mib(g.store_min), kv,
                   mib(g.activations));
    else if (s.budget)
      spdlog::info("node {}: layers {}-{}: weights {} resident (mapped), {}, activations {}", st.cfg.name, g.range.lo,
                   g.range.hi, mib(g.weight_bytes), kv, mib(g.activations));
  }
}

void link_to(node_actor self, const msg::node_address& a) {
  auto& st = self->state;
  if (a.name == st.cfg.name || st.linked.count(a.name)) return;
  ++st.pending_links;
  self->request(st.net, 10s, net_connect_atom_v, a.name, a.host, a.port)
      .then([=](const std::string&) {
              --self->state.pending_links;
              maybe_ack(self);
            },
            [=](const caf::error& e) {
              spdlog::warn("node {}: cannot reach {} at {}:{}: {}", self->state.cfg.name, a.name, a.host, a.port,
                           caf::to_string(e));
              --self->state.pending_links;
              maybe_ack(self);
            });
}

void apply_assignment(node_actor self, const msg::assignment& a, uint64_t epoch) {
  auto& st = self->state;
  stop_groups(self);
  st.epoch = epoch;
  st.assigned = true;
  st.current = a;
  st.head_name = a.head;
  st.ack_sent = false;
  st.ack_error.clear();
  if (a.model_id != st.cfg.model_id) st.ack_error = "serves another model than the head";
  std::vector<layer_range> my_ranges;
  for (const auto& g : a.groups)
    if (g.node == st.cfg.name) my_ranges.push_back(layer_range{g.layer_lo, g.layer_hi});
  node_budget_split split;
  if (st.ack_error.empty() && !my_ranges.empty()) {
    auto s = node_budget_plan(*st.ctx.mdl, my_ranges, budget_config(st.cfg));
    if (s.ok()) split = std::move(s).value();
    else st.ack_error = s.err().message;
  }
  if (st.ack_error.empty() && !split.groups.empty()) {
    log_split(self, split);
    // The loader learns the split before any group of this epoch asks it for weights (same mailbox, sent first).
    loader_plan lp;
    lp.epoch = epoch;
    for (const node_group_budget& g : split.groups)
      lp.groups.push_back(loader_group_plan{g.range.lo, g.range.hi, g.streamed, g.store_budget, g.store_min,
                                            g.kv_block_bytes, g.kv_blocks});
    self->send(st.loader, std::move(lp));
  }
  std::string mine;
  for (size_t i = 0; i < split.groups.size() && st.ack_error.empty(); ++i) {
    const node_group_budget& g = split.groups[i];
    layer_group_args ga;
    ga.ctx = st.ctx;
    ga.stage.range = g.range;
    ga.stage.n_threads = st.cfg.n_threads;
    ga.stage.kv_max_blocks = g.kv_blocks;
    ga.stage.device = st.ctx.device;
    ga.stage.max_batch = st.cfg.max_batch_tokens;
    ga.epoch = epoch;
    ga.node = caf::actor_cast<caf::actor>(self);
    ga.loader = st.loader;
    ga.kv_manager = st.kv;
    ga.crash_countdown = st.crash_countdown;
    ga.detached = st.cfg.detach_layer_groups;
    caf::actor g_actor = spawn_layer_group(self->system(), ga);
    self->link_to(g_actor);
    st.groups[g.range.lo] = g_actor;
    st.groups_pending.insert(g.range.lo);
    mine += (mine.empty() ? "" : ",") + std::to_string(g.range.lo) + "-" + std::to_string(g.range.hi);
  }
  spdlog::info("node {}: epoch {}: holds layers {} of {}", st.cfg.name, epoch, mine.empty() ? "none" : mine,
               st.ctx.mdl->hparams().n_layer);
  for (const auto& n : a.nodes) link_to(self, n);
  maybe_ack(self);
}

const msg::layer_group_msg* group_at(const node_state& st, int32_t first_layer) {
  for (const auto& g : st.current.groups)
    if (g.layer_lo == first_layer) return &g;
  return nullptr;
}

bool stale(node_actor self, const frame_ptr& f) {
  auto& st = self->state;
  if (st.assigned && f->epoch == st.epoch) return false;
  ++st.stale_dropped;
  spdlog::debug("node {}: dropped a {} of epoch {} (now {})", st.cfg.name, msg::frame_kind(*f), f->epoch, st.epoch);
  return true;
}

void handle(node_actor self, const std::string& from, const frame_ptr& f, bool local) {
  auto& st = self->state;
  const auto& body = f->content;
  if (auto* mb = std::get_if<msg::micro_batch_msg>(&body)) {
    if (stale(self, f)) return;
    const msg::layer_group_msg* g = group_at(st, mb->first_layer);
    if (!g) return;
    if (g->node == st.cfg.name) {
      auto it = st.groups.find(g->layer_lo);
      if (it != st.groups.end()) self->send(it->second, st.cfg.name, f);
    } else {
      self->send(st.net, net_send_atom_v, g->node, f);
    }
  } else if (std::holds_alternative<msg::sampled_tokens>(body) ||
             (std::holds_alternative<msg::error_report>(body) && std::get<msg::error_report>(body).code == "batch_failed")) {
    if (stale(self, f)) return;
    if (st.cfg.head) self->send(st.scheduler, from, f);
    else send_to_head(self, f);
  } else if (std::holds_alternative<msg::seq_free>(body)) {
    for (auto& [lo, g] : st.groups) self->send(g, st.cfg.name, f);
    if (local && st.cfg.head) self->send(st.net, net_broadcast_atom_v, f);
  } else if (auto* a = std::get_if<msg::assignment>(&body)) {
    // Only the head assigns: the sender must be the head the assignment names (and, once assigned, the same head).
    if (!local && (from != a->head || (st.assigned && from != st.head_name))) {
      spdlog::warn("node {}: ignored an assignment from {} (not the head)", st.cfg.name, from);
      return;
    }
    if (st.assigned && f->epoch <= st.epoch) {
      ++st.stale_dropped;
      return;
    }
    apply_assignment(self, std::get<msg::assignment>(body), f->epoch);
  } else if (std::holds_alternative<msg::node_profile>(body) || std::holds_alternative<msg::assignment_ack>(body) ||
             std::holds_alternative<msg::memory_pressure>(body)) {
    // This node's own KV pressure (from its kv_manager) is the loader's to act on, besides the supervisor's to hear.
    if (local && std::holds_alternative<msg::memory_pressure>(body)) self->send(st.loader, from, f);
    if (st.cfg.head) self->send(st.supervisor, from, f);
    else if (local) send_to_head(self, f);
  } else if (std::holds_alternative<msg::generation_request>(body) || std::holds_alternative<msg::cancel_request>(body)) {
    if (st.cfg.head) self->send(st.scheduler, from, f);
    else self->send(st.net, net_send_atom_v, from, make_frame_ptr(msg::error_report{0, "not_head", "this node is not the head"}));
  } else if (std::holds_alternative<msg::status_request>(body)) {
    if (st.cfg.head) self->send(st.supervisor, from, f);
  } else if (auto* e = std::get_if<msg::error_report>(&body)) {
    if (e->code == "refused" && (st.head_name.empty() || from == st.head_name)) {
      spdlog::critical("node {}: the head refused this node: {}", st.cfg.name, e->message);
      std::fflush(nullptr);
      std::_Exit(3);
    }
    spdlog::warn("node {}: error from {}: {} {}", st.cfg.name, from, e->code, e->message);
  }
}

// What this node tells the supervisor about itself.
msg::node_profile own_profile(const node_state& st) {
  msg::node_profile p;
  p.name = st.cfg.name;
  p.mem_budget = st.cfg.mem_budget;
  p.listen = msg::node_address{st.cfg.name, st.cfg.listen.host, st.cfg.listen.port};
  p.model_id = st.cfg.model_id;
  p.compute_rate = st.cfg.compute_rate;
  p.storage_read_rate = st.cfg.storage_read_rate;
  return p;
}

void send_profile(node_actor self, const std::string& peer) {
  auto& st = self->state;
  self->send(st.net, net_send_atom_v, peer, make_frame_ptr(own_profile(st)));
}

void dial(node_actor self, const host_port& hp) {
  auto& st = self->state;
  self->request(st.net, 10s, net_connect_atom_v, std::string(), hp.host, hp.port)
      .then([=](const std::string& peer) { self->state.dialed[peer] = hp; },
            [=](const caf::error&) { self->delayed_send(self, 500ms, redial_atom_v, hp.host, hp.port); });
}

caf::behavior node_fn(node_actor self, node_config cfg, node_context ctx, caf::actor net) {
  auto& st = self->state;
  st.cfg = std::move(cfg);
  st.ctx = ctx;
  st.net = net;
  if (st.cfg.crash_after_batches >= 0)
    st.crash_countdown = std::make_shared<std::atomic<int64_t>>(st.cfg.crash_after_batches);
  kv_manager_args ka{st.cfg.name, caf::actor_cast<caf::actor>(self)};
  ka.high_watermark = k_kv_high;
  ka.low_watermark = k_kv_low;
  st.kv = spawn_kv_manager(self->system(), ka);
  loader_args la;
  la.ctx = ctx;
  la.node_name = st.cfg.name;
  la.kv_manager = st.kv;
  la.detached = st.cfg.detach_layer_groups;
  st.loader = spawn_loader(self->system(), la);
  self->link_to(st.loader);
  self->link_to(st.kv);
  self->send(net, net_sink_atom_v, caf::actor_cast<caf::actor>(self));
  if (st.cfg.head) {
    st.head_name = st.cfg.name;
    st.scheduler = spawn_scheduler(self->system(), scheduler_args{st.cfg, ctx, caf::actor_cast<caf::actor>(self)});
    st.supervisor = spawn_supervisor(self->system(), supervisor_args{st.cfg, ctx, own_profile(st), caf::actor_cast<caf::actor>(self), net, st.scheduler});
    self->link_to(st.scheduler);
    self->link_to(st.supervisor);
    for (const auto& hp : st.cfg.peers) dial(self, hp);
  } else if (st.cfg.join.port != 0) {
    dial(self, st.cfg.join);
  }
  return {
      [=](const std::string& from, const frame_ptr& f) {
        if (f) handle(self, from, f, from == self->state.cfg.name);
      },
      [=](route_atom, const frame_ptr& f) { handle(self, self->state.cfg.name, f, true); },
      [=](route_atom, const std::string& peer, const frame_ptr& f) { send_to(self, peer, f); },
      [=](group_up_atom, int32_t lo, bool ok, const std::string& message) {
        auto& s = self->state;
        if (!s.groups_pending.erase(lo)) return;
        if (!ok && s.ack_error.empty()) s.ack_error = "layers from " + std::to_string(lo) + ": " + message;
        maybe_ack(self);
      },
      [=](const peer_up_msg& m) {
        auto& s = self->state;
        if (m.role != msg::peer_role::node) return;
        s.linked.insert(m.peer);
        spdlog::info("node {}: linked with {} ({})", s.cfg.name, m.peer, m.address);
        if (s.cfg.head) self->send(s.supervisor, m);
        else send_profile(self, m.peer);
      },
      [=](const peer_down_msg& m) {
        auto& s = self->state;
        const bool was_node = s.linked.erase(m.peer) > 0;
        if (s.cfg.head) {
          self->send(s.scheduler, m);
          if (was_node) self->send(s.supervisor, m);
          auto it = s.dialed.find(m.peer);  // a listed worker that went away is dialed again until it returns
          if (was_node && it != s.dialed.end()) self->delayed_send(self, 1s, redial_atom_v, it->second.host, it->second.port);
          return;
        }
        if (was_node) spdlog::warn("node {}: lost {} ({})", s.cfg.name, m.peer, m.reason);
        if (m.peer == s.head_name) {
          spdlog::warn("node {}: lost the head; dropping epoch {}", s.cfg.name, s.epoch);
          stop_groups(self);
          s.assigned = false;
          s.current = msg::assignment{};
          if (s.cfg.join.port != 0) self->delayed_send(self, 500ms, redial_atom_v, s.cfg.join.host, s.cfg.join.port);
        } else if (was_node && s.assigned) {
          // A link to another stage of this placement broke while both ends live on (a bad frame drops only the
          // link): dial it again, or the pipeline stays cut until the next placement. The batch lost with it comes
          // back through the head's batch timeout; a peer that is really gone is the head's to notice.
          for (const auto& n : s.current.nodes)
            if (n.name == m.peer) link_to(self, n);
        }
      },
      [=](const peer_refused_msg& m) {
        spdlog::warn("node {}: refused a connection from {} ({}): {}", self->state.cfg.name,
                     m.peer.empty() ? "?" : m.peer, m.address, m.reason);
      },
      [=](redial_atom, const std::string& host, uint16_t port) { dial(self, host_port{host, port}); },
      [=](counts_atom) { return self->state.stale_dropped; },
  };
}

}  // namespace

caf::actor spawn_node(caf::actor_system& sys, node_config cfg, node_context ctx, caf::actor network) {
  return sys.spawn(node_fn, std::move(cfg), ctx, network);
}

}  // namespace lime
