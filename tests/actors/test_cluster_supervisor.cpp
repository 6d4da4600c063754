// supervisor actor under CAF's deterministic test coordinator, on an 8-layer tiny model: placements and epochs,
// budget-proportional groups, refusals, loss and recovery, below capacity, deferred joins, ack failures and timeouts.
// Probes stand in for the node (assignments), the network (stats, close) and the scheduler (placed).
#include <gtest/gtest.h>

#include <map>

#include "actors/supervisor.h"
#include "runtime/placement.h"
#include "tests/actors/deterministic_util.h"

namespace lime {
namespace {

using namespace std::chrono_literals;
using test::addressed;
using test::body_of;
using test::of_kind;
using test::placed_event;
using test::probe_log;

constexpr uint64_t k_mib = 1ull << 20;

std::string groups_of(const msg::assignment& a) {
  std::string s;
  for (const auto& g : a.groups)
    s += (s.empty() ? "" : ",") + g.node + "=" + std::to_string(g.layer_lo) + "-" + std::to_string(g.layer_hi);
  return s;
}

class supervisor_test : public test::det_test {
 protected:
  test::tiny_ctx t = test::make_tiny(8);
  std::shared_ptr<probe_log> node_log, net_log, sched_log;
  caf::actor node, net, sched, sup;
  node_config cfg;

  // The head's supervisor; n_peers listed workers to wait for before the first placement.
  void start(uint64_t head_budget, size_t n_peers) {
    node = spawn_probe(&node_log);
    node_log->counts_as_node = true;
    node_log->stale_dropped = 17;
    net = spawn_probe(&net_log);
    sched = spawn_probe(&sched_log);
    cfg.name = "head";
    cfg.head = true;
    cfg.model_id = 42;
    for (size_t i = 0; i < n_peers; ++i) cfg.peers.push_back(host_port{"10.0.0.9", static_cast<uint16_t>(7001 + i)});
    sup = keep(spawn_supervisor(sys_, supervisor_args{cfg, t.ctx(), profile_of("head", head_budget), node, net, sched}));
    run();
  }
  static msg::node_profile profile_of(const std::string& name, uint64_t budget, uint64_t model_id = 42) {
    static uint16_t port = 7100;
    msg::node_profile p;
    p.name = name;
    p.mem_budget = budget;
    p.listen = msg::node_address{name, "10.0.0.2", port++};
    p.model_id = model_id;
    return p;
  }
  void join(const std::string& name, uint64_t budget, uint64_t model_id = 42) {
    inject(sup, name, make_frame_ptr(profile_of(name, budget, model_id)));
  }
  void ack(const std::string& name, uint64_t epoch, bool ok = true) {
    inject(sup, name, make_frame_ptr(msg::assignment_ack{name, ok, ok ? "" : "cannot"}, epoch));
  }
  // Assignments sent from index `from` on, by receiver (each node gets at most one per placement).
  std::map<std::string, frame_ptr> assignments(size_t from) {
    std::map<std::string, frame_ptr> out;
    auto all = of_kind<msg::assignment>(node_log->to_peer);
    for (size_t i = from; i < all.size(); ++i) {
      EXPECT_EQ(out.count(all[i].first), 0u) << "two assignments to " << all[i].first;
      out[all[i].first] = all[i].second;
    }
    return out;
  }
  size_t n_assignments() { return of_kind<msg::assignment>(node_log->to_peer).size(); }
  // Checks one placement: every receiver got the same groups at `epoch`.
  void expect_placement(size_t from, uint64_t epoch, const std::vector<std::string>& receivers,
                        const std::string& groups) {
    auto a = assignments(from);
    std::vector<std::string> got;
    for (auto& [name, f] : a) got.push_back(name);
    EXPECT_EQ(got, receivers);
    for (auto& [name, f] : a) {
      EXPECT_EQ(f->epoch, epoch) << name;
      const auto* as = body_of<msg::assignment>(f);
      EXPECT_EQ(groups_of(*as), groups) << name;
      EXPECT_EQ(as->model_id, 42u);
      EXPECT_EQ(as->head, "head");
    }
  }
  msg::cluster_status status() {
    const size_t before = node_log->to_peer.size();
    inject(sup, "c1", make_frame_ptr(msg::status_request{}));
    auto st = of_kind<msg::cluster_status>(node_log->to_peer);
    EXPECT_EQ(node_log->to_peer.size(), before + 1);
    if (st.empty()) return {};
    EXPECT_EQ(st.back().first, "c1");
    return *body_of<msg::cluster_status>(st.back().second);
  }
  // head (1 MiB), w1 (1 MiB), w2 (2 MiB) serving epoch 1 as head=0-2, w1=2-4, w2=4-8.
  void serve_three() {
    start(1 * k_mib, 2);
    join("w1", 1 * k_mib);
    join("w2", 2 * k_mib);
    for (const char* n : {"head", "w1", "w2"}) ack(n, 1);
    ASSERT_FALSE(sched_log->placed.empty());
    ASSERT_TRUE(sched_log->placed.back().serving);
  }
  void expect_placed(size_t i, uint64_t epoch, int32_t n_stages, bool serving) {
    ASSERT_LT(i, sched_log->placed.size());
    const placed_event& p = sched_log->placed[i];
    EXPECT_EQ(p.epoch, epoch);
    EXPECT_EQ(p.n_stages, n_stages);
    EXPECT_EQ(p.serving, serving);
  }
};

TEST_F(supervisor_test, budgets_fit_the_scenarios) {  // preconditions the other tests' expected splits rest on
  const model_hparams& hp = t.m->hparams();
  const model_footprint fp = footprint_of(*t.m, 2ull * 256ull * static_cast<uint64_t>(hp.n_embd_kv()) * 4ull);
  const uint64_t per_layer = fp.layer_bytes[0] + fp.kv_bytes_per_layer;
  EXPECT_GT(8 * per_layer, 1 * k_mib) << "the head alone (1 MiB) must not hold the model";
  EXPECT_LT(4 * per_layer + fp.embd_bytes + fp.head_bytes, 1 * k_mib) << "half the model must fit 1 MiB";
  EXPECT_LT(8 * per_layer + fp.embd_bytes + fp.head_bytes, 4 * k_mib);
}

TEST_F(supervisor_test, head_alone_is_placed_at_epoch_1_and_serves_after_its_ack) {
  start(0, 0);
  ASSERT_EQ(sched_log->placed.size(), 1u);
  expect_placed(0, 1, 1, false);
  EXPECT_EQ(sched_log->placed[0].message, "");
  expect_placement(0, 1, {"head"}, "head=0-8");

  ack("head", 0);  // an ack of another epoch, or from a node with nothing pending, changes nothing
  ack("w9", 1);
  EXPECT_EQ(sched_log->placed.size(), 1u);
  ack("head", 1);
  ASSERT_EQ(sched_log->placed.size(), 2u);
  expect_placed(1, 1, 1, true);

  const msg::cluster_status cs = status();
  EXPECT_EQ(cs.epoch, 1u);
  EXPECT_EQ(cs.state, "serving");
  EXPECT_EQ(cs.model_id, 42u);
  EXPECT_EQ(cs.stale_dropped, 17u) << "the node's count of stale frames";
  ASSERT_EQ(cs.nodes.size(), 1u);
  EXPECT_EQ(cs.nodes[0].name, "head");
  EXPECT_EQ(cs.nodes[0].groups, "0-8");
  EXPECT_GT(cs.nodes[0].weight_bytes, 0u);
  EXPECT_EQ(node_log->unexpected + net_log->unexpected + sched_log->unexpected, 0u);
}

TEST_F(supervisor_test, waits_for_listed_workers_then_places_in_proportion_to_budgets) {
  start(1 * k_mib, 2);
  EXPECT_TRUE(sched_log->placed.empty());
  join("w1", 1 * k_mib);
  EXPECT_TRUE(sched_log->placed.empty()) << "placed before the second listed worker joined";
  EXPECT_EQ(n_assignments(), 0u);
  join("w2", 2 * k_mib);
  ASSERT_EQ(sched_log->placed.size(), 1u);
  expect_placed(0, 1, 3, false);
  // 8 layers over budgets 1:1:2, in join order (the head first).
  expect_placement(0, 1, {"head", "w1", "w2"}, "head=0-2,w1=2-4,w2=4-8");
  const auto* a = body_of<msg::assignment>(assignments(0)["w1"]);
  ASSERT_EQ(a->nodes.size(), 3u);
  EXPECT_EQ(a->nodes[1].name, "w1");
  EXPECT_EQ(a->nodes[2].name, "w2");

  ack("w1", 1);
  ack("w2", 1);
  EXPECT_EQ(sched_log->placed.size(), 1u) << "serving before every placed node acked";
  ack("head", 1);
  ASSERT_EQ(sched_log->placed.size(), 2u);
  expect_placed(1, 1, 3, true);
}

TEST_F(supervisor_test, places_without_a_listed_worker_that_does_not_come_in_time) {
  start(1 * k_mib, 2);
  join("w1", 1 * k_mib);
  EXPECT_TRUE(sched_log->placed.empty());
  advance(cfg.peer_wait);
  ASSERT_EQ(sched_log->placed.size(), 1u);
  expect_placed(0, 1, 2, false);
  expect_placement(0, 1, {"head", "w1"}, "head=0-4,w1=4-8");
}

TEST_F(supervisor_test, a_profile_of_another_model_is_refused_and_its_link_closed) {
  start(0, 0);
  ack("head", 1);
  const size_t n_placed = sched_log->placed.size();
  join("w3", 2 * k_mib, 7);
  auto errors = of_kind<msg::error_report>(node_log->to_peer);
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_EQ(errors[0].first, "w3");
  EXPECT_EQ(body_of<msg::error_report>(errors[0].second)->code, "refused");
  EXPECT_TRUE(net_log->closes.empty()) << "closed before the refusal could be sent";
  advance(300ms);
  EXPECT_EQ(net_log->closes, std::vector<std::string>{"w3"});
  EXPECT_EQ(sched_log->placed.size(), n_placed);
  EXPECT_EQ(n_assignments(), 1u);
  EXPECT_EQ(status().nodes.size(), 1u) << "the refused node is not part of the cluster";
}

TEST_F(supervisor_test, losing_a_placed_node_places_epoch_2_over_the_survivors) {
  serve_three();
  const size_t from = n_assignments(), n_placed = sched_log->placed.size();
  tell(sup, peer_down_msg{"c1", "connection closed"});  // not a node: nothing happens
  EXPECT_EQ(n_assignments(), from);
  tell(sup, peer_down_msg{"w2", "connection closed"});
  ASSERT_EQ(sched_log->placed.size(), n_placed + 1);
  expect_placed(n_placed, 2, 2, false);
  expect_placement(from, 2, {"head", "w1"}, "head=0-4,w1=4-8");
  ack("head", 2);
  ack("w1", 2);
  expect_placed(n_placed + 1, 2, 2, true);
  const msg::cluster_status cs = status();
  EXPECT_EQ(cs.epoch, 2u);
  EXPECT_EQ(cs.state, "serving");
  for (const auto& n : cs.nodes) EXPECT_EQ(n.alive, n.name != "w2") << n.name;
}

TEST_F(supervisor_test, survivors_too_small_leave_the_cluster_below_capacity_until_a_node_joins) {
  serve_three();
  tell(sup, peer_down_msg{"w2", "connection closed"});
  const size_t from = n_assignments(), n_placed = sched_log->placed.size();
  tell(sup, peer_down_msg{"w1", "heartbeat timeout"});
  ASSERT_EQ(sched_log->placed.size(), n_placed + 1);
  const placed_event p = sched_log->placed.back();
  EXPECT_EQ(p.epoch, 3u);
  EXPECT_FALSE(p.serving);
  EXPECT_EQ(p.n_stages, 0);
  EXPECT_NE(p.message.find("below capacity"), std::string::npos) << p.message;
  // The head is told the old epoch is over (an assignment without groups).
  auto a = assignments(from);
  ASSERT_EQ(a.size(), 1u);
  EXPECT_EQ(a["head"]->epoch, 3u);
  EXPECT_TRUE(body_of<msg::assignment>(a["head"])->groups.empty());
  const msg::cluster_status cs = status();
  EXPECT_EQ(cs.state, "below capacity");
  EXPECT_EQ(cs.message, p.message);

  // A big enough node joins: placed at once (the cluster was not serving), 8 layers over 1:2.
  const size_t from2 = n_assignments();
  join("w4", 2 * k_mib);
  expect_placed(n_placed + 1, 4, 2, false);
  expect_placement(from2, 4, {"head", "w4"}, "head=0-3,w4=3-8");
  ack("head", 4);
  ack("w4", 4);
  expect_placed(n_placed + 2, 4, 2, true);
}

TEST_F(supervisor_test, a_join_while_requests_are_active_waits_for_idle) {
  start(4 * k_mib, 0);
  ack("head", 1);
  const size_t from = n_assignments(), n_placed = sched_log->placed.size();
  tell(sup, idle_atom_v, false);
  join("w1", 4 * k_mib);
  EXPECT_EQ(n_assignments(), from) << "placed while requests were active";
  EXPECT_EQ(sched_log->placed.size(), n_placed);
  tell(sup, idle_atom_v, true);
  ASSERT_EQ(sched_log->placed.size(), n_placed + 1);
  expect_placed(n_placed, 2, 2, false);
  expect_placement(from, 2, {"head", "w1"}, "head=0-4,w1=4-8");
}

TEST_F(supervisor_test, a_failed_ack_or_an_ack_timeout_drops_the_node_from_the_next_placement) {
  serve_three();
  join("w3", 1 * k_mib);  // idle: placed at once over four nodes (epoch 2)
  ASSERT_EQ(sched_log->placed.back().epoch, 2u);
  size_t from = n_assignments();
  ack("w3", 2, false);
  expect_placement(from, 3, {"head", "w1", "w2"}, "head=0-2,w1=2-4,w2=4-8");
  from = n_assignments();
  ack("head", 3);
  ack("w1", 3);  // w2 never acks
  advance(cfg.ack_timeout);
  expect_placement(from, 4, {"head", "w1"}, "head=0-4,w1=4-8");
}

}  // namespace
}  // namespace lime
