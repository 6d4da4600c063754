// loader actor: faults a group's weights in and answers prefetch requests.
#include "actors/loader.h"

#include <sys/mman.h>
#include <unistd.h>

#include <caf/actor_system.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/stateful_actor.hpp>
#include <spdlog/spdlog.h>

#include <set>

#include "actors/frame_ptr.h"
#include "actors/type_ids.h"
#include "runtime/stage.h"

namespace lime {
namespace {

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

struct loader_state {
  node_context ctx;
  std::set<std::pair<int32_t, int32_t>> resident;  // ranges faulted in
  uint64_t resident_bytes = 0;
  static inline const char* name = "loader";
};

caf::behavior loader_fn(caf::stateful_actor<loader_state>* self, node_context ctx) {
  self->state.ctx = ctx;
  return {
      [=](const std::string&, const frame_ptr& f) {
        auto* req = std::get_if<msg::prefetch_request>(&f->content);
        if (!req) return;
        auto& st = self->state;
        const model& m = *st.ctx.mdl;
        msg::prefetch_ready ready{req->group, true, ""};
        if (req->layer_lo < 0 || req->layer_hi > m.hparams().n_layer || req->layer_lo >= req->layer_hi) {
          ready.ok = false;
          ready.message = "layer range " + std::to_string(req->layer_lo) + "-" + std::to_string(req->layer_hi) + " is not in the model";
        } else if (st.resident.insert({req->layer_lo, req->layer_hi}).second) {
          (void)touch_range(m, req->layer_lo, req->layer_hi);
          st.resident_bytes += stage_weight_bytes(m, layer_range{req->layer_lo, req->layer_hi});
          spdlog::debug("loader: layers {}-{} resident", req->layer_lo, req->layer_hi);
        }
        auto sender = caf::actor_cast<caf::actor>(self->current_sender());
        if (sender) self->send(sender, std::string("loader"), make_frame_ptr(ready, f->epoch));
      },
      [=](kv_query_atom) { return self->state.resident_bytes; },
  };
}

}  // namespace

caf::actor spawn_loader(caf::actor_system& sys, node_context ctx) { return sys.spawn(loader_fn, ctx); }

}  // namespace lime
