// supervisor actor: cluster view, placement with epochs, acks, loss and join handling, cluster status.
#include "actors/supervisor.h"

#include <caf/actor_system.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/stateful_actor.hpp>
#include <spdlog/spdlog.h>

#include <map>
#include <set>

#include "actors/frame_ptr.h"
#include "actors/network_types.h"
#include "actors/type_ids.h"
#include "runtime/chat_template.h"
#include "runtime/mem_budget.h"
#include "runtime/node_budget.h"
#include "runtime/placement.h"
#include "runtime/stage.h"

namespace lime {
namespace {

using namespace std::chrono_literals;

struct node_entry {
  msg::node_profile profile;
  bool alive = false;
  bool failed = false;       // refused its assignment or timed out: not placed again until it rejoins
  uint64_t join_order = 0;
  uint64_t kv_used = 0, kv_limit = 0;
  bool weights_reported = false;             // its pressure reports carry its weight bytes (this epoch)
  uint64_t weights_resident = 0, weights_streamed = 0;
  uint64_t rss = 0, peak_rss = 0;  // its process's resident set and peak at its last memory report
};

struct sup_state {
  supervisor_args a;
  std::map<std::string, node_entry> nodes;
  uint64_t joins = 0;
  uint64_t epoch = 0;
  std::vector<placement_group> groups;
  std::set<std::string> pending_acks;
  std::string state = "waiting for nodes";
  std::string message;
  bool join_pending = false;
  bool idle = true;
  bool waited = false;       // the first placement happened (or the wait for --peers ended)
  static inline const char* name = "supervisor";
};

using sup_actor = caf::stateful_actor<sup_state>*;

void send_to(sup_actor self, const std::string& peer, msg::body b, uint64_t epoch) {
  msg::frame f;
  f.epoch = epoch;
  f.content = std::move(b);
  self->send(self->state.a.node, route_atom_v, peer, make_frame_ptr(std::move(f)));
}

std::vector<node_entry*> usable_nodes(sup_actor self) {
  std::vector<node_entry*> v;
  for (auto& [name, n] : self->state.nodes)
    if (n.alive && !n.failed) v.push_back(&n);
  std::sort(v.begin(), v.end(), [](node_entry* x, node_entry* y) { return x->join_order < y->join_order; });
  return v;
}

result<std::vector<placement_group>> compute_placement(sup_actor self, const std::vector<node_entry*>& nodes) {
  auto& st = self->state;
  const model_hparams& hp = st.a.ctx.mdl->hparams();
  if (!st.a.cfg.placement.empty()) {
    auto fixed = parse_placement(st.a.cfg.placement, hp.n_layer);
    if (!fixed.ok()) return fixed.err();
    bool all_there = true;
    for (const auto& g : *fixed) {
      auto it = st.nodes.find(g.node);
      all_there &= it != st.nodes.end() && it->second.alive && !it->second.failed;
    }
    if (all_there) return fixed;
    spdlog::info("supervisor: a node of the fixed placement is missing; placing by memory budget");
  }
  std::vector<node_capacity> caps;
  for (node_entry* n : nodes) caps.push_back(node_capacity{n->profile.name, n->profile.mem_budget ? n->profile.mem_budget : (1ull << 40)});
  const uint64_t kv_reserve = 2ull * 256ull * static_cast<uint64_t>(hp.n_embd_kv()) * 4ull;
  model_footprint fp = footprint_of(*st.a.ctx.mdl, kv_reserve);
  // A node holds a range when it fits resident (weights + KV reserve) or streamed: the weight store's minimum + KV
  // reserve + activations (runtime/node_budget.h, the node's own split). Activations are sized with the head's -b
  // and --parallel. Memoized: the placement asks for the same ranges many times.
  node_budget_config nb;
  nb.n_rows = st.a.cfg.max_batch_tokens;
  nb.n_logit_rows = st.a.cfg.max_active;
  nb.n_threads = st.a.cfg.n_threads > 0 ? st.a.cfg.n_threads : 1;
  nb.store.policy = weight_policy::lime;
  auto memo = std::make_shared<std::map<std::pair<int32_t, int32_t>, uint64_t>>();
  const model* m = st.a.ctx.mdl;
  fp.range_bytes = [m, nb, memo](int32_t lo, int32_t hi) {
    auto it = memo->find({lo, hi});
    if (it != memo->end()) return it->second;
    const uint64_t need = node_budget_range_need(*m, layer_range{lo, hi}, nb);
    (*memo)[{lo, hi}] = need;
    return need;
  };
  return place_by_budget(fp, caps);
}

void announce(sup_actor self, bool serving) {
  auto& st = self->state;
  self->send(st.a.scheduler, placed_atom_v, st.epoch, static_cast<int32_t>(st.groups.size()), serving, st.message);
}

void place(sup_actor self, const std::string& why) {
  auto& st = self->state;
  st.waited = true;
  st.join_pending = false;
  for (auto& [name, n] : st.nodes) n.weights_reported = false;  // until its loader reports this epoch's weights
  auto nodes = usable_nodes(self);
  auto groups = compute_placement(self, nodes);
  ++st.epoch;  // even a failed placement ends the old epoch: frames of the old placement are stale now
  if (!groups.ok()) {
    st.state = "below capacity";
    st.message = groups.err().message;
    st.groups.clear();
    st.pending_acks.clear();
    spdlog::error("supervisor: epoch {}: {} ({})", st.epoch, st.message, why);
    msg::assignment empty;
    empty.model_id = st.a.cfg.model_id;
    empty.head = st.a.cfg.name;
    for (node_entry* n : nodes) send_to(self, n->profile.name, empty, st.epoch);
    announce(self, false);
    return;
  }
  st.groups = std::move(groups).value();
  st.state = "placing";
  st.message.clear();
  msg::assignment a;
  a.model_id = st.a.cfg.model_id;
  a.head = st.a.cfg.name;
  st.pending_acks.clear();
  for (const auto& g : st.groups) {
    a.groups.push_back(msg::layer_group_msg{g.layer_lo, g.layer_hi, g.node});
    st.pending_acks.insert(g.node);
  }
  for (node_entry* n : nodes) a.nodes.push_back(n->profile.listen);
  spdlog::info("supervisor: epoch {}: placement {} ({})", st.epoch, placement_to_string(st.groups), why);
  announce(self, false);
  for (node_entry* n : nodes) send_to(self, n->profile.name, a, st.epoch);
  self->delayed_send(self, st.a.cfg.ack_timeout, tick_atom_v, st.epoch);
}

void on_profile(sup_actor self, const std::string& from, const msg::node_profile& p) {
  auto& st = self->state;
  if (p.model_id != st.a.cfg.model_id) {
    spdlog::error("supervisor: refused {}: it serves another model (id {:016x}, the head's is {:016x})", from, p.model_id,
                  st.a.cfg.model_id);
    send_to(self, from, msg::error_report{0, "refused", "model mismatch: this node serves another model file than the head"}, 0);
    self->delayed_send(st.a.network, 300ms, net_close_atom_v, from);
    return;
  }
  node_entry& n = st.nodes[from];
  const bool was_alive = n.alive;
  n.profile = p;
  n.profile.name = from;
  n.alive = true;
  n.failed = false;
  if (!was_alive) n.join_order = ++st.joins;
  spdlog::info("supervisor: node {} joined (budget {}, {:.1f} GFLOP/s, storage {:.0f} MB/s, listening {}:{})", from,
               p.mem_budget ? format_size(p.mem_budget) : std::string("unlimited"), p.compute_rate / 1e9,
               p.storage_read_rate / 1e6, p.listen.host, p.listen.port);
  if (!st.waited) {
    size_t present = 0;
    for (auto& [name, e] : st.nodes) present += e.alive && name != st.a.cfg.name;
    if (present >= st.a.cfg.peers.size()) place(self, "all peers joined");
  } else if (st.state == "below capacity" || st.idle) {
    place(self, "node " + from + " joined");
  } else {
    st.join_pending = true;  // placed when the requests in flight are done
  }
}

void on_ack(sup_actor self, const std::string& from, uint64_t epoch, const msg::assignment_ack& ack) {
  auto& st = self->state;
  if (epoch != st.epoch || !st.pending_acks.count(from)) return;
  if (!ack.ok) {
    spdlog::error("supervisor: {} cannot serve epoch {}: {}", from, epoch, ack.message);
    st.nodes[from].failed = true;
    place(self, from + " failed its assignment");
    return;
  }
  st.pending_acks.erase(from);
  if (st.pending_acks.empty()) {
    st.state = "serving";
    spdlog::info("supervisor: epoch {} serving", st.epoch);
    announce(self, true);
  }
}

void finish_status(sup_actor self, const std::string& client, const net_stats& ns, uint32_t active, uint32_t queued,
                   uint64_t replays, uint64_t stale);

void status_failed(sup_actor self, const std::string& client, const caf::error& e) {
  send_to(self, client, msg::error_report{0, "status_unavailable", "the head could not collect its status: " + caf::to_string(e)}, 0);
}

void send_status(sup_actor self, const std::string& client) {
  auto& st = self->state;
  self->request(st.a.network, 2s, net_stats_atom_v).then(
      [=](const net_stats& ns) {
        self->request(self->state.a.scheduler, 2s, counts_atom_v).then(
            [=](uint32_t active, uint32_t queued, uint64_t replays) {
              self->request(self->state.a.node, 2s, counts_atom_v).then(
                  [=](uint64_t stale) { finish_status(self, client, ns, active, queued, replays, stale); },
                  [=](const caf::error& e) { status_failed(self, client, e); });
            },
            [=](const caf::error& e) { status_failed(self, client, e); });
      },
      [=](const caf::error& e) { status_failed(self, client, e); });
}

void finish_status(sup_actor self, const std::string& client, const net_stats& ns, uint32_t active, uint32_t queued,
                   uint64_t replays, uint64_t stale) {
  auto& s = self->state;
  msg::cluster_status cs;
  cs.epoch = s.epoch;
  cs.state = s.state;
  cs.model_id = s.a.cfg.model_id;
  cs.requests_active = active;
  cs.requests_queued = queued;
  cs.replays = replays;
  cs.message = s.message;
  const std::string& tmpl = s.a.ctx.voc->chat_template;
  const chat_family fam = tmpl.empty() ? chat_family::none : chat_template_detect(tmpl);
  cs.chat_mode = fam == chat_family::none || fam == chat_family::unknown ? "plain" : chat_family_name(fam);
  const int32_t n_train = s.a.ctx.mdl->hparams().n_ctx_train;
  cs.n_ctx = s.a.cfg.n_ctx > 0 ? s.a.cfg.n_ctx : std::min<int32_t>(n_train > 0 ? n_train : 4096, 4096);
  for (auto& [name, n] : s.nodes) {
    msg::node_status ns_;
    ns_.name = name;
    ns_.address = n.profile.listen.host + ":" + std::to_string(n.profile.listen.port);
    for (const auto& g : s.groups)
      if (g.node == name) {
        ns_.groups += (ns_.groups.empty() ? "" : ",") + std::to_string(g.layer_lo) + "-" + std::to_string(g.layer_hi);
        ns_.weight_bytes += stage_weight_bytes(*s.a.ctx.mdl, layer_range{g.layer_lo, g.layer_hi});
      }
    if (n.weights_reported && !ns_.groups.empty()) {  // what its loader holds: resident part and streamed per token
      ns_.weight_bytes = n.weights_resident;
      ns_.weight_bytes_streamed = n.weights_streamed;
    }
    ns_.mem_budget = n.profile.mem_budget;
    ns_.rss = n.rss;
    ns_.peak_rss = n.peak_rss;
    if (name == s.a.cfg.name) {  // the head's own figures are read now
      const process_memory pm = process_memory_read();
      ns_.rss = pm.rss;
      ns_.peak_rss = pm.peak_rss;
    }
    ns_.kv_bytes_used = n.kv_used;
    ns_.kv_bytes_limit = n.kv_limit;
    ns_.alive = n.alive;
    for (const auto& l : ns.links)
      if (l.peer == name) {
        ns_.bandwidth_in = l.bandwidth_in;
        ns_.rtt_nanos = l.rtt_nanos;
      }
    cs.nodes.push_back(std::move(ns_));
  }
  cs.stale_dropped = stale;
  send_to(self, client, std::move(cs), s.epoch);
}

caf::behavior supervisor_fn(sup_actor self, supervisor_args args) {
  auto& st = self->state;
  st.a = std::move(args);
  node_entry& me = st.nodes[st.a.cfg.name];
  me.profile = st.a.self;
  me.alive = true;
  me.join_order = 0;
  if (st.a.cfg.peers.empty()) self->send(self, tick_atom_v, uint64_t{0});
  else self->delayed_send(self, st.a.cfg.peer_wait, tick_atom_v, uint64_t{0});
  return {
      [=](const std::string& from, const frame_ptr& f) {
        if (auto* p = std::get_if<msg::node_profile>(&f->content)) on_profile(self, from, *p);
        else if (auto* a = std::get_if<msg::assignment_ack>(&f->content)) on_ack(self, from, f->epoch, *a);
        else if (std::holds_alternative<msg::status_request>(f->content)) send_status(self, from);
        else if (auto* m = std::get_if<msg::memory_pressure>(&f->content)) {
          auto it = self->state.nodes.find(from);
          if (it != self->state.nodes.end()) {
            it->second.kv_used = m->kv_bytes_used;
            it->second.kv_limit = m->kv_bytes_limit;
            it->second.weights_reported = m->weight_bytes_resident > 0 || m->weight_bytes_streamed > 0;
            it->second.weights_resident = m->weight_bytes_resident;
            it->second.weights_streamed = m->weight_bytes_streamed;
            it->second.rss = m->rss;
            it->second.peak_rss = m->peak_rss;
          }
          if (m->level == msg::pressure_level::high || spdlog::should_log(spdlog::level::debug))
            spdlog::info("supervisor: memory pressure {} on {} (KV {} of {})", m->level == msg::pressure_level::high ? "high" : "normal",
                       from, format_size(m->kv_bytes_used), format_size(m->kv_bytes_limit));
        }
      },
      [=](const peer_up_msg&) {},
      [=](const peer_down_msg& m) {
        auto& s = self->state;
        auto it = s.nodes.find(m.peer);
        if (it == s.nodes.end() || !it->second.alive) return;
        it->second.alive = false;
        bool placed = false;
        for (const auto& g : s.groups) placed |= g.node == m.peer;
        spdlog::warn("supervisor: lost node {} ({})", m.peer, m.reason);
        if (placed || s.pending_acks.count(m.peer)) place(self, "lost " + m.peer);
      },
      [=](idle_atom, bool idle) {
        auto& s = self->state;
        s.idle = idle;
        if (idle && s.join_pending) place(self, "deferred join");
      },
      [=](tick_atom, uint64_t epoch) {
        auto& s = self->state;
        if (epoch == 0) {
          if (!s.waited) place(self, s.a.cfg.peers.empty() ? "start" : "waited for peers");
          return;
        }
        if (epoch != s.epoch || s.pending_acks.empty()) return;
        for (const auto& n : s.pending_acks) {
          spdlog::error("supervisor: {} did not build its layers for epoch {} in time", n, epoch);
          s.nodes[n].failed = true;
        }
        place(self, "assignment timeout");
      },
  };
}

}  // namespace

caf::actor spawn_supervisor(caf::actor_system& sys, supervisor_args args) { return sys.spawn(supervisor_fn, std::move(args)); }

}  // namespace lime
