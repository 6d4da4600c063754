// Deterministic actor tests: an actor system on CAF's test coordinator (the test thread steps every message and the
// clock; no sleeps, no sockets), a probe actor that stands in for the network, node, scheduler, loader or kv_manager
// and records what lime's actors send it, and small frame helpers.
#pragma once
#include <gtest/gtest.h>
#include <spdlog/spdlog.h>

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/exit_reason.hpp>
#include <caf/scheduler/test_coordinator.hpp>
#include <caf/send.hpp>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "actors/cluster_config.h"
#include "actors/frame_ptr.h"
#include "actors/network_types.h"
#include "actors/type_ids.h"
#include "runtime/forward.h"
#include "runtime/kv_cache.h"
#include "runtime/thread_pool.h"
#include "tests/tiny_model.h"

namespace lime::test {

using addressed = std::pair<std::string, frame_ptr>;  // (peer or sender name, frame)

template <class T>
const T* body_of(const frame_ptr& f) {
  return f ? std::get_if<T>(&f->content) : nullptr;
}

// The entries of v whose frame holds a T, in order.
template <class T>
std::vector<addressed> of_kind(const std::vector<addressed>& v) {
  std::vector<addressed> out;
  for (const auto& a : v)
    if (body_of<T>(a.second)) out.push_back(a);
  return out;
}
template <class T>
std::vector<frame_ptr> of_kind(const std::vector<frame_ptr>& v) {
  std::vector<frame_ptr> out;
  for (const auto& f : v)
    if (body_of<T>(f)) out.push_back(f);
  return out;
}

struct placed_event {
  uint64_t epoch = 0;
  int32_t n_stages = 0;
  bool serving = false;
  std::string message;
};

// Everything a probe received, by message shape. Test thread only (the coordinator runs actors on it).
struct probe_log {
  std::vector<addressed> frames;    // (std::string from, frame_ptr): as a sink, loader or supervisor gets them
  std::vector<frame_ptr> routed;    // (route_atom, frame_ptr): what a layer group / scheduler gives its node
  std::vector<addressed> to_peer;   // (route_atom, peer, frame_ptr): what the supervisor / scheduler sends a peer
  std::vector<std::tuple<int32_t, bool, std::string>> group_up;  // (lo, ok, message)
  std::vector<std::tuple<int32_t, uint64_t, uint64_t>> kv_usage; // (lo, used bytes, limit bytes)
  std::vector<std::pair<uint64_t, uint64_t>> weights;            // as a kv_manager: (resident, streamed per token)
  std::vector<placed_event> placed;
  std::vector<bool> idle;
  // As the network actor:
  std::vector<addressed> sent;        // net_send (peer, frame)
  std::vector<frame_ptr> broadcast;   // net_broadcast
  std::vector<std::string> connects;  // net_connect: the peer name asked for
  std::vector<std::string> closes;    // net_close
  std::vector<caf::actor> sinks;      // net_sink
  std::vector<peer_down_msg> downs;
  size_t unexpected = 0;              // messages of no shape above
  // (counts_atom) is answered as the scheduler does, (active, queued, replays) = 0, unless the probe stands in
  // for a node: then with stale_dropped.
  bool counts_as_node = false;
  uint64_t stale_dropped = 0;

  std::vector<frame_ptr> sent_to(const std::string& peer) const {
    std::vector<frame_ptr> out;
    for (const auto& [p, f] : sent)
      if (p == peer) out.push_back(f);
    return out;
  }
};

// A probe answers what its roles must: net_connect with the peer's name ("dialed-" + host when none was given),
// net_stats with empty stats, counts as probe_log says.
inline caf::behavior probe_actor(caf::event_based_actor* self, std::shared_ptr<probe_log> log) {
  self->set_default_handler([log](caf::scheduled_actor*, caf::message_view&) -> caf::result<caf::message> {
    ++log->unexpected;
    return caf::message{};
  });
  return {
      [=](const std::string& from, const frame_ptr& f) { log->frames.emplace_back(from, f); },
      [=](route_atom, const frame_ptr& f) { log->routed.push_back(f); },
      [=](route_atom, const std::string& peer, const frame_ptr& f) { log->to_peer.emplace_back(peer, f); },
      [=](group_up_atom, int32_t lo, bool ok, const std::string& m) { log->group_up.emplace_back(lo, ok, m); },
      [=](kv_usage_atom, int32_t lo, uint64_t used, uint64_t limit) { log->kv_usage.emplace_back(lo, used, limit); },
      [=](weights_atom, uint64_t resident, uint64_t streamed) { log->weights.emplace_back(resident, streamed); },
      [=](placed_atom, uint64_t epoch, int32_t n_stages, bool serving, const std::string& m) {
        log->placed.push_back(placed_event{epoch, n_stages, serving, m});
      },
      [=](idle_atom, bool idle) { log->idle.push_back(idle); },
      [=](counts_atom) {
        return log->counts_as_node ? caf::make_message(log->stale_dropped) : caf::make_message(0u, 0u, uint64_t{0});
      },
      [=](net_send_atom, const std::string& peer, const frame_ptr& f) { log->sent.emplace_back(peer, f); },
      [=](net_broadcast_atom, const frame_ptr& f) { log->broadcast.push_back(f); },
      [=](net_connect_atom, const std::string& peer, const std::string& host, uint16_t) -> std::string {
        log->connects.push_back(peer);
        return peer.empty() ? "dialed-" + host : peer;
      },
      [=](net_stats_atom) { return net_stats{}; },
      [=](net_close_atom, const std::string& peer) { log->closes.push_back(peer); },
      [=](net_sink_atom, const caf::actor& sink) { log->sinks.push_back(sink); },
      [=](const peer_down_msg& m) { log->downs.push_back(m); },
  };
}

// One actor system per test on the deterministic coordinator. Actors spawned through keep() are stopped (and their
// exits stepped) before the system is destroyed, whose destructor would otherwise wait for them forever.
class det_test : public ::testing::Test {
 protected:
  static caf::actor_system_config& configure(caf::actor_system_config& cfg) {
    // lime_init_caf also loads the I/O middleman; it starts its own thread but needs none here and leaves the
    // coordinator's job queue alone, so tests configure the system as lime-node does.
    lime_init_caf(cfg);
    cfg.set("scheduler.policy", caf::atom("testing"));
    return cfg;
  }

  det_test() : sys_(configure(cfg_)), sched_(dynamic_cast<caf::scheduler::test_coordinator&>(sys_.scheduler())) {
    sched_.clock().current_time += std::chrono::hours(1);  // as CAF's fixture: time 0 is no real moment
    old_level_ = spdlog::default_logger()->level();
    spdlog::set_level(std::getenv("LIME_TEST_ACTOR_LOG") ? spdlog::level::debug : spdlog::level::off);
  }
  ~det_test() override {
    for (auto& a : kept_) caf::anon_send_exit(a, caf::exit_reason::user_shutdown);
    sched_.run();
    kept_.clear();
    spdlog::set_level(old_level_);
  }

  caf::actor keep(caf::actor a) {
    kept_.push_back(a);
    return a;
  }
  caf::actor spawn_probe(std::shared_ptr<probe_log>* log) {
    *log = std::make_shared<probe_log>();
    return keep(sys_.spawn(probe_actor, *log));
  }

  // Steps every queued message (timers do not fire: time moves only in advance()).
  size_t run() { return sched_.run(); }
  // Moves the clock on (delivering the delayed messages and timeouts that fall due), then steps the messages.
  size_t advance(caf::timespan d) {
    const size_t n = sched_.advance_time(d);
    run();
    return n;
  }
  // A frame from `from` (a peer or a local actor's name), as the network actor delivers it to its sink.
  void inject(const caf::actor& to, const std::string& from, frame_ptr f) {
    caf::anon_send(to, from, std::move(f));
    run();
  }
  template <class... Ts>
  void tell(const caf::actor& to, Ts&&... xs) {
    caf::anon_send(to, std::forward<Ts>(xs)...);
    run();
  }
  // A request answered within the steps that follow it; nullopt (and a failure) when it was not.
  template <class... R, class... Ts>
  std::optional<std::tuple<R...>> ask(const caf::actor& to, Ts... xs) {
    auto out = std::make_shared<std::optional<std::tuple<R...>>>();
    sys_.spawn([=](caf::event_based_actor* self) {
      self->request(to, caf::infinite, xs...)
          .then([=](R... r) { *out = std::make_tuple(r...); },
                [=](caf::error& e) { ADD_FAILURE() << "request failed: " << caf::to_string(e); });
    });
    run();
    EXPECT_TRUE(out->has_value()) << "no reply";
    return *out;
  }

  caf::actor_system_config cfg_;
  caf::actor_system sys_;
  caf::scheduler::test_coordinator& sched_;

 private:
  std::vector<caf::actor> kept_;
  spdlog::level::level_enum old_level_ = spdlog::level::info;
};

// --- models -------------------------------------------------------------------------------------------------------

// A tiny random model as a node_context. Its vocab is empty: stages only read the end-of-generation ids, and nothing
// that needs a tokenizer (the scheduler) runs on it.
struct tiny_ctx {
  std::unique_ptr<model> m;
  vocab voc;
  node_context ctx() const { return node_context{m.get(), &voc, nullptr, nullptr}; }
};
inline tiny_ctx make_tiny(int32_t n_layer) {
  tiny_spec s;
  s.n_layer = n_layer;
  auto r = make_tiny_model(s);
  EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.err().message);
  tiny_ctx t;
  if (r.ok()) t.m = std::make_unique<model>(std::move(r).value());
  return t;
}

// runtime/forward.h run directly over [lo, hi) with its own KV: what a layer group must reproduce bit for bit.
struct ref_stage {
  thread_pool pool{1};
  std::unique_ptr<kv_cache> kv;
  std::unique_ptr<forward_pass> fwd;
  forward_output out;
  ref_stage(const model& m, layer_range r) {
    kv_cache_config c;
    c.n_layer = r.hi - r.lo;
    c.row_elems = m.hparams().n_embd_kv();
    c.block_size = 32;
    c.max_blocks = 64;
    kv = std::make_unique<kv_cache>(std::move(kv_cache::create(c).value()));
    fwd = std::make_unique<forward_pass>(m, r, *kv, pool);
  }
  const forward_output& run(const micro_batch& b) {
    auto r = fwd->run(b, out);
    EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.err().message);
    return out;
  }
};

// Rows of one sequence: tokens at positions pos0.., logits wanted on the last row only when `logits_last`.
inline micro_batch seq_rows(int32_t seq, int32_t pos0, const std::vector<int32_t>& toks, bool logits_last) {
  micro_batch b;
  for (size_t i = 0; i < toks.size(); ++i)
    b.add(toks[i], pos0 + static_cast<int32_t>(i), seq, logits_last && i + 1 == toks.size());
  return b;
}

// A micro_batch frame entering layer `first_layer`: tokens at layer 0, else `embd` ([n, n_embd]) as the activations.
inline frame_ptr batch_frame(uint64_t batch_id, int32_t first_layer, micro_batch b, uint64_t epoch, int32_t n_embd,
                             std::vector<float> embd = {}, std::vector<msg::seq_sampling> sampling = {}) {
  msg::micro_batch_msg mb;
  mb.batch_id = batch_id;
  mb.first_layer = first_layer;
  mb.batch = std::move(b);
  if (first_layer > 0) {
    mb.batch.tokens.clear();
    mb.batch.embd = std::move(embd);
    mb.n_embd = n_embd;
  }
  mb.sampling = std::move(sampling);
  return make_frame_ptr(std::move(mb), epoch);
}

inline bool same_bits(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && (a.empty() || std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0);
}

}  // namespace lime::test
