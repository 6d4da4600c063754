// scheduler actor: scheduler_core driven by client frames, returning batches, placements and a batch-timeout timer.
#include "actors/scheduler.h"

#include <caf/actor_clock.hpp>
#include <caf/actor_system.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/stateful_actor.hpp>
#include <spdlog/spdlog.h>

#include <chrono>
#include <map>

#include "actors/frame_ptr.h"
#include "actors/network_types.h"
#include "actors/scheduler_core.h"
#include "actors/type_ids.h"

namespace lime {
namespace {

using namespace std::chrono_literals;
using steady = std::chrono::steady_clock;  // the actor clock's type: times come from self->clock(), which CAF's
                                            // deterministic test coordinator drives

struct sched_state {
  scheduler_args a;
  std::unique_ptr<scheduler_core> core;
  caf::actor supervisor;
  uint64_t epoch = 0;
  bool serving = false;
  bool below_capacity = false;
  std::string below_message;
  std::map<uint64_t, steady::time_point> sent;  // batch id -> when it entered the pipeline
  bool idle = true;
  steady::time_point t0;
  static inline const char* name = "scheduler";
};

using sched_actor = caf::stateful_actor<sched_state>*;

double now_s(sched_actor self) { return std::chrono::duration<double>(self->clock().now() - self->state.t0).count(); }

void flush_outgoing(sched_actor self) {
  auto& st = self->state;
  for (auto& o : st.core->take_outgoing()) {
    if (auto* d = std::get_if<msg::generation_done>(&o.body)) {
      spdlog::info("request {}/{}: {} prompt tokens in {:.3f} s, {} generated in {:.3f} s ({:.1f} tok/s), {}", o.peer,
                   d->request_id, d->n_prompt, d->prompt_seconds, d->n_generated, d->gen_seconds,
                   d->gen_seconds > 0 ? d->n_generated / d->gen_seconds : 0.0, d->finish_reason);
    } else if (auto* e = std::get_if<msg::error_report>(&o.body)) {
      spdlog::info("request {}/{}: error {}: {}", o.peer, e->request_id, e->code, e->message);
    }
    msg::frame f;
    f.epoch = st.epoch;
    f.content = std::move(o.body);
    if (o.peer == "*") self->send(st.a.node, route_atom_v, make_frame_ptr(std::move(f)));
    else self->send(st.a.node, route_atom_v, o.peer, make_frame_ptr(std::move(f)));
  }
}

void pump(sched_actor self) {
  auto& st = self->state;
  if (st.serving) {
    for (auto& b : st.core->next_batches(now_s(self))) {
      st.sent[b.batch_id] = self->clock().now();
      spdlog::debug("scheduler: batch {} with {} rows", b.batch_id, b.batch.size());
      self->send(st.a.node, route_atom_v, make_frame_ptr(std::move(b), st.epoch));
    }
  }
  flush_outgoing(self);
  const bool idle = st.core->requests() == 0;
  if (idle != st.idle) {
    st.idle = idle;
    if (st.supervisor) self->send(st.supervisor, idle_atom_v, idle);
  }
}

void on_frame(sched_actor self, const std::string& from, const frame_ptr& f) {
  auto& st = self->state;
  if (auto* req = std::get_if<msg::generation_request>(&f->content)) {
    if (st.below_capacity) {
      msg::frame e;
      e.content = msg::error_report{req->request_id, "unavailable", st.below_message};
      self->send(st.a.node, route_atom_v, from, make_frame_ptr(std::move(e)));
      return;
    }
    st.core->submit(from, *req, now_s(self));
  } else if (auto* c = std::get_if<msg::cancel_request>(&f->content)) {
    st.core->cancel(from, c->request_id, now_s(self));
  } else if (auto* s = std::get_if<msg::sampled_tokens>(&f->content)) {
    if (f->epoch != st.epoch) return;
    st.sent.erase(s->batch_id);
    st.core->on_sampled(*s, now_s(self));
  } else if (auto* e = std::get_if<msg::error_report>(&f->content)) {
    if (e->code != "batch_failed" || f->epoch != st.epoch) return;
    st.sent.erase(e->request_id);
    // Refused by a stage: the core preempts the batch's sequences while others run, and ends a sequence that is
    // refused again and again on its own (resource_exhausted), so a deterministic refusal never loops.
    if (!st.core->on_batch_lost(e->request_id, e->message)) return;
  }
  pump(self);
}

caf::behavior scheduler_fn(sched_actor self, scheduler_args args) {
  auto& st = self->state;
  st.a = std::move(args);
  st.t0 = self->clock().now();
  scheduler_config sc;
  const int32_t n_ctx_model = st.a.ctx.mdl->hparams().n_ctx_train;
  sc.n_ctx = st.a.cfg.n_ctx > 0 ? st.a.cfg.n_ctx : std::min<int32_t>(n_ctx_model > 0 ? n_ctx_model : 4096, 4096);
  sc.max_active = st.a.cfg.max_active;
  sc.max_batch_tokens = st.a.cfg.max_batch_tokens;
  st.core = std::make_unique<scheduler_core>(*st.a.ctx.tok, sc);
  self->delayed_send(self, 200ms, tick_atom_v);
  return {
      [=](const std::string& from, const frame_ptr& f) { on_frame(self, from, f); },
      [=](const peer_down_msg& m) {
        self->state.core->client_lost(m.peer);
        pump(self);
      },
      [=](placed_atom, uint64_t epoch, int32_t n_stages, bool serving, const std::string& message) {
        auto& s = self->state;
        s.supervisor = caf::actor_cast<caf::actor>(self->current_sender());
        const bool changed = epoch != s.epoch;
        s.epoch = epoch;
        s.serving = serving;
        if (changed) {
          s.sent.clear();
          s.core->replay_all();  // every node built new groups: all KV is gone
        }
        if (serving) {
          s.below_capacity = false;
          s.core->set_max_in_flight(std::max(1, n_stages));  // one batch per stage keeps every stage busy
        } else if (!message.empty()) {
          s.below_capacity = true;
          s.below_message = message;
          s.core->fail_all("unavailable", message);
        }
        pump(self);
        if (s.supervisor) self->send(s.supervisor, idle_atom_v, s.idle);
      },
      [=](tick_atom) {
        auto& s = self->state;
        const auto now = self->clock().now();
        std::vector<uint64_t> late;
        for (auto& [id, t] : s.sent)
          if (now - t > s.a.cfg.batch_timeout) late.push_back(id);
        for (uint64_t id : late) {
          spdlog::warn("scheduler: batch {} did not come back in {} ms; replaying its sequences", id, s.a.cfg.batch_timeout.count());
          s.sent.erase(id);
          s.core->on_batch_lost(id);
        }
        if (!late.empty()) pump(self);
        self->delayed_send(self, 100ms, tick_atom_v);
      },
      [=](counts_atom) -> caf::result<uint32_t, uint32_t, uint64_t> {
        auto& s = self->state;
        const uint32_t active = static_cast<uint32_t>(s.core->active());
        return {active, static_cast<uint32_t>(s.core->requests() - s.core->active()), s.core->replays()};
      },
  };
}

}  // namespace

caf::actor spawn_scheduler(caf::actor_system& sys, scheduler_args args) { return sys.spawn(scheduler_fn, std::move(args)); }

}  // namespace lime
