// layer_group actor: weights via the loader, then micro-batch in -> stage -> micro-batch / sampled tokens out.
#include "actors/layer_group.h"

#include <caf/actor_system.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/stateful_actor.hpp>
#include <spdlog/spdlog.h>

#include <cmath>
#include <cstdlib>
#include <deque>
#include <unordered_set>

#include "runtime/node_budget.h"
#include "runtime/weight_store.h"

namespace lime {
namespace {

struct group_state {
  layer_group_args args;
  std::shared_ptr<weight_store> store;     // streamed weights (from the loader), or null; declared before the stage,
                                           // which reads through it, so it is destroyed after it
  std::unique_ptr<pipeline_stage> stage;
  bool ready = false;
  bool kv_blocked = false;                 // a batch found the KV pool full and waits for the loader's answer
  std::deque<frame_ptr> waiting;           // batches that arrived before the weights, or behind a blocked one
  std::unordered_set<int32_t> released;    // sequence ids freed: never accepted again (ids are not reused)
  std::vector<row_sampling> sampling;      // scratch
  std::vector<float> hidden;
  std::vector<sampled_row> sampled;
  uint64_t batches = 0;
  static inline const char* name = "layer_group";
};

using group_actor = caf::stateful_actor<group_state>*;

frame_ptr batch_error(uint64_t batch_id, const std::string& message, uint64_t epoch) {
  return make_frame_ptr(msg::error_report{batch_id, "batch_failed", message}, epoch);
}

void report_kv(group_actor self) {
  auto& st = self->state;
  const uint64_t used = static_cast<uint64_t>(st.stage->kv_blocks_in_use()) * st.stage->kv_block_bytes();
  const uint64_t limit = static_cast<uint64_t>(st.stage->kv_blocks_limit()) * st.stage->kv_block_bytes();
  self->send(st.args.kv_manager, kv_usage_atom_v, st.args.stage.range.lo, used, limit);
}

void run_batch(group_actor self, const frame_ptr& f) {
  auto& st = self->state;
  const auto& mb = std::get<msg::micro_batch_msg>(f->content);
  for (int32_t s : mb.batch.seq) {
    if (st.released.count(s)) {
      self->send(st.args.node, route_atom_v, batch_error(mb.batch_id, "sequence " + std::to_string(s) + " was freed", st.args.epoch));
      return;
    }
  }
  st.sampling.clear();
  for (const auto& s : mb.sampling)
    st.sampling.push_back(row_sampling{s.params, s.checksum, s.history, s.ignore_eog});
  auto r = st.stage->run(mb.batch, st.sampling, &st.hidden, &st.sampled);
  if (!r.ok() && r.err().code == errc::out_of_memory && st.store) {
    // KV pool full (the check fails before anything is written): the loader may turn weight budget into KV blocks.
    // The batch and everything behind it wait for its answer, in order.
    spdlog::debug("layer group {}-{}: batch {} waits for KV room: {}", st.args.stage.range.lo, st.args.stage.range.hi,
                  mb.batch_id, r.err().message);
    st.kv_blocked = true;
    st.waiting.push_front(f);
    self->send(st.args.loader, kv_full_atom_v, st.args.stage.range.lo, int32_t{1});
    return;
  }
  if (!r.ok()) {
    spdlog::warn("layer group {}-{}: batch {} failed: {}", st.args.stage.range.lo, st.args.stage.range.hi, mb.batch_id,
                 r.err().message);
    self->send(st.args.node, route_atom_v, batch_error(mb.batch_id, r.err().message, st.args.epoch));
    return;
  }
  ++st.batches;
  if (st.stage->is_last()) {
    msg::sampled_tokens out;
    out.batch_id = mb.batch_id;
    for (const auto& s : st.sampled) out.tokens.push_back(msg::sampled_token{s.seq_id, s.position, s.token, s.checksum});
    self->send(st.args.node, route_atom_v, make_frame_ptr(std::move(out), st.args.epoch));
  } else {
    msg::micro_batch_msg out;
    out.batch_id = mb.batch_id;
    out.first_layer = st.args.stage.range.hi;
    out.n_embd = st.args.ctx.mdl->hparams().n_embd;
    out.batch.pos = mb.batch.pos;
    out.batch.seq = mb.batch.seq;
    out.batch.want_logits = mb.batch.want_logits;
    out.batch.embd.swap(st.hidden);
    out.sampling = mb.sampling;
    self->send(st.args.node, route_atom_v, make_frame_ptr(std::move(out), st.args.epoch));
  }
  spdlog::debug("layer group {}-{}: batch {} rows {}", st.args.stage.range.lo, st.args.stage.range.hi, mb.batch_id,
                mb.batch.size());
  report_kv(self);
  if (st.args.crash_countdown && st.args.crash_countdown->fetch_sub(1) == 1) {
    spdlog::critical("crash hook: exiting after the configured number of micro-batches");
    std::_Exit(137);
  }
}

// Runs the batches that wait, in order, until one blocks on KV.
void run_waiting(group_actor self) {
  auto& st = self->state;
  while (!st.waiting.empty() && !st.kv_blocked) {
    frame_ptr f = std::move(st.waiting.front());
    st.waiting.pop_front();
    run_batch(self, f);
  }
}

void on_ready(group_actor self, const msg::prefetch_ready& pr) {
  auto& st = self->state;
  const auto range = st.args.stage.range;
  if (st.ready) return;
  if (!pr.ok) {
    self->send(st.args.node, group_up_atom_v, range.lo, false, "loader: " + pr.message);
    return;
  }
  st.args.stage.weights = st.store.get();
  auto stage = pipeline_stage::create(*st.args.ctx.mdl, *st.args.ctx.voc, st.args.stage);
  if (!stage.ok()) {
    self->send(st.args.node, group_up_atom_v, range.lo, false, stage.err().message);
    return;
  }
  st.stage = std::move(stage).value();
  st.ready = true;
  self->send(st.args.node, group_up_atom_v, range.lo, true, std::string());
  run_waiting(self);
}

// The loader gave `blocks` KV blocks' worth of weight budget back (0: nothing left to give). The store's smaller
// plan is installed first (its buffers are freed), then the pool grows: the node's total never exceeds its budget.
void on_kv_grow(group_actor self, int32_t blocks) {
  auto& st = self->state;
  if (!st.stage) return;
  const auto range = st.args.stage.range;
  if (blocks > 0) {
    auto applied = st.store ? st.store->apply_pending() : result<void>{};
    if (!applied.ok()) {
      spdlog::error("layer group {}-{}: the smaller weight plan was not installed ({}); the KV pool stays at {} blocks",
                    range.lo, range.hi, applied.err().message, st.stage->kv_blocks_limit());
    } else {
      const int32_t limit = st.stage->kv_blocks_limit() + blocks;
      (void)st.stage->set_kv_max_blocks(limit);  // only a limit below the blocks in use can fail
      spdlog::info("layer group {}-{}: KV pool raised to {} blocks (+{})", range.lo, range.hi, limit, blocks);
    }
    report_kv(self);
  }
  if (!st.kv_blocked) return;
  st.kv_blocked = false;
  if (blocks == 0 && !st.waiting.empty()) {  // nothing more to give: the batch fails as without a store
    frame_ptr f = std::move(st.waiting.front());
    st.waiting.pop_front();
    const auto& mb = std::get<msg::micro_batch_msg>(f->content);
    spdlog::warn("layer group {}-{}: batch {} failed: the KV pool is full and no weight budget is left to give",
                 range.lo, range.hi, mb.batch_id);
    self->send(st.args.node, route_atom_v, batch_error(mb.batch_id, "KV cache full", st.args.epoch));
  }
  run_waiting(self);
}

// Pressure is over: the pool goes back down to what its sequences need at the target fill, never below the split's
// limit. Returns the blocks freed (their memory is released at once) for the loader to give back to the weights.
int32_t on_kv_shrink(group_actor self) {
  auto& st = self->state;
  if (!st.stage) return 0;
  const int32_t limit = st.stage->kv_blocks_limit(), used = st.stage->kv_blocks_in_use();
  const int32_t want = std::max({st.args.stage.kv_max_blocks, used,
                                 static_cast<int32_t>(std::ceil(static_cast<double>(used) / k_kv_target))});
  if (want >= limit || !st.stage->set_kv_max_blocks(want).ok()) return 0;
  spdlog::info("layer group {}-{}: KV pool lowered to {} blocks (-{}, {} in use)", st.args.stage.range.lo,
               st.args.stage.range.hi, want, limit - want, used);
  report_kv(self);
  return limit - want;
}

caf::behavior layer_group_fn(group_actor self, layer_group_args args) {
  self->state.args = std::move(args);
  auto& a = self->state.args;
  msg::prefetch_request req{a.stage.range.lo, a.stage.range.lo, a.stage.range.hi};
  self->send(a.loader, std::string("layer_group"), make_frame_ptr(req, a.epoch));
  return {
      [=](const std::string&, const frame_ptr& f) {
        auto& st = self->state;
        if (auto* mb = std::get_if<msg::micro_batch_msg>(&f->content)) {
          if (f->epoch != st.args.epoch || mb->first_layer != st.args.stage.range.lo) return;  // the node filters
          if (!st.ready || st.kv_blocked) st.waiting.push_back(f);
          else run_batch(self, f);
        } else if (auto* sf = std::get_if<msg::seq_free>(&f->content)) {
          for (int32_t s : sf->seq_ids) {
            st.released.insert(s);
            if (st.stage) st.stage->release(s);
          }
          if (st.stage) report_kv(self);
        } else if (auto* pr = std::get_if<msg::prefetch_ready>(&f->content)) {
          on_ready(self, *pr);
        }
      },
      [=](const weight_store_handle& h) {
        if (!self->state.ready) self->state.store = h.store;
      },
      [=](kv_grow_atom, int32_t blocks) { on_kv_grow(self, blocks); },
      [=](kv_shrink_atom) { return on_kv_shrink(self); },
  };
}

}  // namespace

caf::actor spawn_layer_group(caf::actor_system& sys, layer_group_args args) {
  if (!args.detached) return sys.spawn(layer_group_fn, std::move(args));
  return sys.spawn<caf::detached>(layer_group_fn, std::move(args));
}

}  // namespace lime
