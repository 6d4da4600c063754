// layer_group and node actors under CAF's deterministic test coordinator, on a tiny random model: a group's output
// equals runtime/forward.h bit for bit, waits for its weights, refuses freed sequences; the node routes by epoch and
// first layer to its groups or its peers (a probe stands in for the network actor), acks and replaces assignments.
#include <gtest/gtest.h>

#include <cmath>

#include "actors/layer_group.h"
#include "actors/loader.h"
#include "actors/node.h"
#include "runtime/checksum.h"
#include "runtime/sampler.h"
#include "tests/actors/deterministic_util.h"

namespace lime {
namespace {

using test::addressed;
using test::batch_frame;
using test::body_of;
using test::of_kind;
using test::probe_log;
using test::ref_stage;
using test::same_bits;
using test::seq_rows;

const std::vector<int32_t> k_prompt = {5, 17, 29, 41, 53, 65};

// The entry is frame f itself (not a copy) addressed to peer.
bool is(const addressed& a, const std::string& peer, const frame_ptr& f) { return a.first == peer && a.second.f == f.f; }

sampling_params greedy() {
  sampling_params p;
  p.temperature = 0.0f;
  return p;
}

// --- layer_group --------------------------------------------------------------------------------------------------

class layer_group_test : public test::det_test {
 protected:
  test::tiny_ctx t = test::make_tiny(3);
  std::shared_ptr<probe_log> node_log, kv_log, loader_log;  // loader_log: only with a fake loader
  caf::actor node, kv, loader;

  // A group over r at `epoch`; with the real loader its weights are ready once run() returns.
  caf::actor spawn_group(layer_range r, uint64_t epoch, bool real_loader) {
    node = spawn_probe(&node_log);
    kv = spawn_probe(&kv_log);
    loader = real_loader ? keep(spawn_loader(sys_, t.ctx())) : spawn_probe(&loader_log);
    layer_group_args a;
    a.ctx = t.ctx();
    a.stage.range = r;
    a.stage.n_threads = 1;
    a.stage.kv_max_blocks = 64;
    a.epoch = epoch;
    a.node = node;
    a.loader = loader;
    a.kv_manager = kv;
    a.detached = false;
    caf::actor g = keep(spawn_layer_group(sys_, a));
    run();
    return g;
  }
  int32_t n_embd() const { return t.m->hparams().n_embd; }
};

TEST_F(layer_group_test, micro_batch_out_is_forward_over_its_layers_bitwise) {
  caf::actor g = spawn_group({0, 2}, 5, true);
  ASSERT_EQ(node_log->group_up.size(), 1u);
  EXPECT_EQ(node_log->group_up[0], std::make_tuple(0, true, std::string()));

  ref_stage ref(*t.m, {0, 2});
  // A prefill, then a decode step that reads the KV the prefill left.
  const micro_batch steps[] = {seq_rows(1, 0, k_prompt, false), seq_rows(1, 6, {7}, false)};
  for (int i = 0; i < 2; ++i) {
    inject(g, "w0", batch_frame(10 + i, 0, steps[i], 5, n_embd()));
    ASSERT_EQ(node_log->routed.size(), static_cast<size_t>(i + 1));
    const frame_ptr& out = node_log->routed[i];
    const auto* mb = body_of<msg::micro_batch_msg>(out);
    ASSERT_NE(mb, nullptr) << msg::frame_kind(*out);
    EXPECT_EQ(out->epoch, 5u);
    EXPECT_EQ(mb->batch_id, static_cast<uint64_t>(10 + i));
    EXPECT_EQ(mb->first_layer, 2);
    EXPECT_EQ(mb->n_embd, n_embd());
    EXPECT_EQ(mb->batch.pos, steps[i].pos);
    EXPECT_EQ(mb->batch.seq, steps[i].seq);
    EXPECT_EQ(mb->batch.want_logits, steps[i].want_logits);
    EXPECT_EQ(mb->batch.embd.size(), steps[i].size() * static_cast<size_t>(n_embd()));
    EXPECT_TRUE(same_bits(mb->batch.embd, ref.run(steps[i]).hidden)) << "step " << i;
  }
  // KV use is reported after every batch; the prefill's 7 positions fit one 32-row block.
  ASSERT_EQ(kv_log->kv_usage.size(), 2u);
  const auto [lo, used, limit] = kv_log->kv_usage.back();
  EXPECT_EQ(lo, 0);
  EXPECT_GT(used, 0u);
  EXPECT_EQ(limit, used * 64);
  EXPECT_EQ(node_log->unexpected + kv_log->unexpected, 0u);
}

TEST_F(layer_group_test, last_group_sends_sampled_tokens_as_the_model_would_sample) {
  caf::actor g = spawn_group({2, 3}, 3, true);
  // Two sequences in one batch: seq 1 (greedy), seq 2 (seeded temperature sampling); logits on their last rows.
  micro_batch b = seq_rows(1, 0, {5, 17, 29, 41}, true);
  micro_batch b2 = seq_rows(2, 0, {60, 61, 62}, true);
  for (size_t i = 0; i < b2.size(); ++i) b.add(b2.tokens[i], b2.pos[i], b2.seq[i], b2.want_logits[i] != 0);
  ref_stage front(*t.m, {0, 2}), whole(*t.m, {0, 3});
  const std::vector<float> hidden = front.run(b).hidden;
  const forward_output& full = whole.run(b);
  ASSERT_EQ(full.logits.size(), 2u * static_cast<size_t>(t.m->hparams().n_vocab));

  sampling_params seeded;
  seeded.temperature = 0.8f;
  seeded.seed = 9;
  std::vector<msg::seq_sampling> sampling = {{1, greedy(), 0x1234, {5, 17, 29, 41}, false},
                                             {2, seeded, 77, {60, 61, 62}, false}};
  inject(g, "w1", batch_frame(21, 2, b, 3, t.m->hparams().n_embd, hidden, sampling));

  ASSERT_EQ(node_log->routed.size(), 1u);
  const frame_ptr& out = node_log->routed[0];
  const auto* st = body_of<msg::sampled_tokens>(out);
  ASSERT_NE(st, nullptr) << msg::frame_kind(*out);
  EXPECT_EQ(out->epoch, 3u);
  EXPECT_EQ(st->batch_id, 21u);
  ASSERT_EQ(st->tokens.size(), 2u);
  const int32_t n_vocab = t.m->hparams().n_vocab;
  sampler_scratch scratch;
  for (size_t i = 0; i < 2; ++i) {
    const float* logits = full.logits.data() + i * static_cast<size_t>(n_vocab);
    const msg::seq_sampling& s = sampling[i];
    const int32_t pos = i == 0 ? 4 : 3;
    EXPECT_EQ(st->tokens[i].seq_id, s.seq_id);
    EXPECT_EQ(st->tokens[i].position, pos);
    EXPECT_EQ(st->tokens[i].checksum, logits_checksum_step(s.checksum, logits, n_vocab));
    EXPECT_EQ(st->tokens[i].token, sample_token(logits, n_vocab, s.params, s.history.data(),
                                                static_cast<int64_t>(s.history.size()), pos, scratch));
  }
  // The greedy row is the argmax of its logits.
  const float* l0 = full.logits.data();
  EXPECT_EQ(st->tokens[0].token, static_cast<int32_t>(std::max_element(l0, l0 + n_vocab) - l0));
}

TEST_F(layer_group_test, batches_before_prefetch_ready_wait_and_run_after_in_order) {
  caf::actor g = spawn_group({0, 2}, 5, false);
  ASSERT_EQ(loader_log->frames.size(), 1u);
  const auto* req = body_of<msg::prefetch_request>(loader_log->frames[0].second);
  ASSERT_NE(req, nullptr);
  EXPECT_EQ(loader_log->frames[0].second->epoch, 5u);
  EXPECT_EQ(req->layer_lo, 0);
  EXPECT_EQ(req->layer_hi, 2);

  const micro_batch b1 = seq_rows(1, 0, {5, 6, 7}, false), b2 = seq_rows(1, 3, {8}, false);
  inject(g, "w0", batch_frame(1, 0, b1, 5, n_embd()));
  inject(g, "w0", batch_frame(2, 0, b2, 5, n_embd()));
  EXPECT_TRUE(node_log->routed.empty());
  EXPECT_TRUE(node_log->group_up.empty());

  inject(g, "loader", make_frame_ptr(msg::prefetch_ready{0, true, ""}, 5));
  ASSERT_EQ(node_log->group_up.size(), 1u);
  EXPECT_TRUE(std::get<1>(node_log->group_up[0]));
  ASSERT_EQ(node_log->routed.size(), 2u);
  ref_stage ref(*t.m, {0, 2});
  const micro_batch* in[] = {&b1, &b2};
  for (size_t i = 0; i < 2; ++i) {
    const auto* mb = body_of<msg::micro_batch_msg>(node_log->routed[i]);
    ASSERT_NE(mb, nullptr);
    EXPECT_EQ(mb->batch_id, i + 1);
    EXPECT_TRUE(same_bits(mb->batch.embd, ref.run(*in[i]).hidden)) << "batch " << i + 1;
  }
  // A second ready changes nothing.
  inject(g, "loader", make_frame_ptr(msg::prefetch_ready{0, true, ""}, 5));
  EXPECT_EQ(node_log->group_up.size(), 1u);
  EXPECT_EQ(node_log->routed.size(), 2u);
}

TEST_F(layer_group_test, failed_prefetch_reports_the_group_down_and_runs_nothing) {
  caf::actor g = spawn_group({0, 2}, 5, false);
  inject(g, "w0", batch_frame(1, 0, seq_rows(1, 0, {5}, false), 5, n_embd()));
  inject(g, "loader", make_frame_ptr(msg::prefetch_ready{0, false, "no memory"}, 5));
  ASSERT_EQ(node_log->group_up.size(), 1u);
  EXPECT_FALSE(std::get<1>(node_log->group_up[0]));
  EXPECT_NE(std::get<2>(node_log->group_up[0]).find("no memory"), std::string::npos);
  EXPECT_TRUE(node_log->routed.empty());
}

TEST_F(layer_group_test, freed_sequence_is_refused_with_batch_failed) {
  caf::actor g = spawn_group({0, 2}, 5, true);
  inject(g, "w0", batch_frame(1, 0, seq_rows(3, 0, {5, 6, 7}, false), 5, n_embd()));
  ASSERT_EQ(of_kind<msg::micro_batch_msg>(node_log->routed).size(), 1u);
  ASSERT_FALSE(kv_log->kv_usage.empty());
  EXPECT_GT(std::get<1>(kv_log->kv_usage.back()), 0u);

  inject(g, "node", make_frame_ptr(msg::seq_free{{3}}, 5));
  EXPECT_EQ(std::get<1>(kv_log->kv_usage.back()), 0u) << "the KV of sequence 3 was not released";

  inject(g, "w0", batch_frame(9, 0, seq_rows(3, 3, {8}, false), 5, n_embd()));
  ASSERT_EQ(node_log->routed.size(), 2u);
  const auto* e = body_of<msg::error_report>(node_log->routed[1]);
  ASSERT_NE(e, nullptr) << msg::frame_kind(*node_log->routed[1]);
  EXPECT_EQ(node_log->routed[1]->epoch, 5u);
  EXPECT_EQ(e->request_id, 9u);
  EXPECT_EQ(e->code, "batch_failed");

  // Other sequences still run; a batch of another epoch is not taken.
  inject(g, "w0", batch_frame(10, 0, seq_rows(4, 0, {5}, false), 5, n_embd()));
  inject(g, "w0", batch_frame(11, 0, seq_rows(4, 1, {6}, false), 4, n_embd()));
  ASSERT_EQ(node_log->routed.size(), 3u);
  ASSERT_NE(body_of<msg::micro_batch_msg>(node_log->routed[2]), nullptr);
  EXPECT_EQ(body_of<msg::micro_batch_msg>(node_log->routed[2])->batch_id, 10u);
}

// --- node ---------------------------------------------------------------------------------------------------------

msg::assignment assignment_of(const std::vector<msg::layer_group_msg>& groups, uint64_t model_id = 42) {
  msg::assignment a;
  a.groups = groups;
  a.model_id = model_id;
  a.head = "head";
  uint16_t port = 7000;
  for (const auto& g : groups) {
    bool have = false;
    for (const auto& n : a.nodes) have |= n.name == g.node;
    if (!have) a.nodes.push_back(msg::node_address{g.node, "10.0.0.1", port++});
  }
  return a;
}

class node_test : public test::det_test {
 protected:
  test::tiny_ctx t = test::make_tiny(3);
  std::shared_ptr<probe_log> net_log;
  caf::actor net, node;

  void start(const std::string& name) {
    net = spawn_probe(&net_log);
    node_config c;
    c.name = name;
    c.model_id = 42;
    c.n_threads = 1;
    c.detach_layer_groups = false;
    node = keep(spawn_node(sys_, c, t.ctx(), net));
    run();
  }
  // w1 of head=0-1, w1=1-2, w2=2-3 at epoch 1.
  void start_w1() {
    start("w1");
    inject(node, "head", make_frame_ptr(assignment_of({{0, 1, "head"}, {1, 2, "w1"}, {2, 3, "w2"}}), 1));
  }
  uint64_t dropped() {
    auto r = ask<uint64_t>(node, counts_atom_v);
    return r ? std::get<0>(*r) : ~uint64_t{0};
  }
  std::vector<frame_ptr> acks_to_head() { return of_kind<msg::assignment_ack>(net_log->sent_to("head")); }
  int32_t n_embd() const { return t.m->hparams().n_embd; }
};

TEST_F(node_test, applies_an_assignment_links_its_peers_and_acks_to_the_head) {
  start_w1();
  ASSERT_EQ(net_log->sinks.size(), 1u);
  EXPECT_EQ(net_log->sinks[0], node);
  std::vector<std::string> connects = net_log->connects;
  std::sort(connects.begin(), connects.end());
  EXPECT_EQ(connects, (std::vector<std::string>{"head", "w2"}));
  auto acks = acks_to_head();
  ASSERT_EQ(acks.size(), 1u);
  EXPECT_EQ(acks[0]->epoch, 1u);
  const auto* ack = body_of<msg::assignment_ack>(acks[0]);
  EXPECT_EQ(ack->node, "w1");
  EXPECT_TRUE(ack->ok) << ack->message;
  EXPECT_EQ(net_log->unexpected, 0u);
}

TEST_F(node_test, an_assignment_for_another_model_is_acked_as_failed) {
  start("w1");
  inject(node, "head", make_frame_ptr(assignment_of({{0, 1, "head"}, {1, 3, "w1"}}, 43), 1));
  auto acks = acks_to_head();
  ASSERT_EQ(acks.size(), 1u);
  EXPECT_FALSE(body_of<msg::assignment_ack>(acks[0])->ok);
  // No group was built: a batch of its first layer goes nowhere.
  const size_t before = net_log->sent.size();
  inject(node, "head", batch_frame(1, 1, seq_rows(1, 0, {5}, false), 1, n_embd(), std::vector<float>(n_embd(), 0.5f)));
  EXPECT_EQ(net_log->sent.size(), before);
}

TEST_F(node_test, routes_micro_batches_of_the_current_epoch_to_the_local_group_or_the_owning_peer) {
  start_w1();
  const size_t base = net_log->sent.size();  // the ack
  // Layer 1 is local: the group's output (first_layer 2) goes to w2, bitwise the forward pass over [1, 2).
  const micro_batch b = seq_rows(1, 0, k_prompt, false);
  ref_stage l0(*t.m, {0, 1}), l1(*t.m, {1, 2});
  const std::vector<float> h0 = l0.run(b).hidden;
  inject(node, "head", batch_frame(11, 1, b, 1, n_embd(), h0));
  ASSERT_EQ(net_log->sent.size(), base + 1);
  EXPECT_EQ(net_log->sent[base].first, "w2");
  const auto* mb = body_of<msg::micro_batch_msg>(net_log->sent[base].second);
  ASSERT_NE(mb, nullptr);
  EXPECT_EQ(net_log->sent[base].second->epoch, 1u);
  EXPECT_EQ(mb->batch_id, 11u);
  EXPECT_EQ(mb->first_layer, 2);
  micro_batch b1 = b;
  b1.tokens.clear();
  b1.embd = h0;
  EXPECT_TRUE(same_bits(mb->batch.embd, l1.run(b1).hidden));

  // Layers held elsewhere: the same frame goes on to its owner.
  frame_ptr for_w2 = batch_frame(12, 2, b, 1, n_embd(), h0);
  frame_ptr for_head = batch_frame(13, 0, b, 1, n_embd());
  inject(node, "w0", for_w2);
  inject(node, "w0", for_head);
  ASSERT_EQ(net_log->sent.size(), base + 3);
  EXPECT_TRUE(is(net_log->sent[base + 1], "w2", for_w2)) << "the same frame (shared, not copied) to w2";
  EXPECT_TRUE(is(net_log->sent[base + 2], "head", for_head));

  // Older (and unknown newer) epochs are dropped and counted; a first layer no group starts at is ignored.
  EXPECT_EQ(dropped(), 0u);
  inject(node, "head", batch_frame(14, 1, b, 0, n_embd(), h0));
  EXPECT_EQ(dropped(), 1u);
  inject(node, "head", batch_frame(15, 2, b, 0, n_embd(), h0));
  EXPECT_EQ(dropped(), 2u);
  inject(node, "head", batch_frame(16, 2, b, 7, n_embd(), h0));
  EXPECT_EQ(dropped(), 3u);
  inject(node, "head", batch_frame(17, 5, b, 1, n_embd(), h0));
  EXPECT_EQ(dropped(), 3u);
  EXPECT_EQ(net_log->sent.size(), base + 3);
}

TEST_F(node_test, sends_sampled_tokens_and_batch_errors_to_the_head_and_forwards_seq_free) {
  start_w1();
  const size_t base = net_log->sent.size();
  frame_ptr st = make_frame_ptr(msg::sampled_tokens{5, {{1, 7, 42, 99}}}, 1);
  tell(node, route_atom_v, st);
  ASSERT_EQ(net_log->sent.size(), base + 1);
  EXPECT_TRUE(is(net_log->sent[base], "head", st));
  tell(node, route_atom_v, make_frame_ptr(msg::sampled_tokens{6, {}}, 0));  // old epoch: dropped
  EXPECT_EQ(net_log->sent.size(), base + 1);
  EXPECT_EQ(dropped(), 1u);

  // seq_free from the head reaches the group: the sequence's next batch fails there, and the error goes to the head.
  const micro_batch b = seq_rows(4, 0, {5, 6}, false);
  ref_stage l0(*t.m, {0, 1});
  const std::vector<float> h0 = l0.run(b).hidden;
  inject(node, "head", batch_frame(20, 1, b, 1, n_embd(), h0));
  ASSERT_EQ(net_log->sent.size(), base + 2);
  inject(node, "head", make_frame_ptr(msg::seq_free{{4}}, 1));
  EXPECT_TRUE(net_log->broadcast.empty()) << "only the head broadcasts seq_free";
  inject(node, "head", batch_frame(21, 1, b, 1, n_embd(), h0));
  ASSERT_EQ(net_log->sent.size(), base + 3);
  EXPECT_EQ(net_log->sent[base + 2].first, "head");
  const auto* e = body_of<msg::error_report>(net_log->sent[base + 2].second);
  ASSERT_NE(e, nullptr) << msg::frame_kind(*net_log->sent[base + 2].second);
  EXPECT_EQ(e->code, "batch_failed");
  EXPECT_EQ(e->request_id, 21u);
  EXPECT_EQ(net_log->sent[base + 2].second->epoch, 1u);
}

TEST_F(node_test, a_newer_assignment_replaces_the_groups_and_an_older_one_is_ignored) {
  start_w1();
  // Epoch 2: w1 holds the last two layers as one group.
  inject(node, "head", make_frame_ptr(assignment_of({{0, 1, "head"}, {1, 3, "w1"}}), 2));
  auto acks = acks_to_head();
  ASSERT_EQ(acks.size(), 2u);
  EXPECT_EQ(acks[1]->epoch, 2u);
  EXPECT_TRUE(body_of<msg::assignment_ack>(acks[1])->ok);

  const micro_batch b = seq_rows(1, 0, k_prompt, true);
  ref_stage l0(*t.m, {0, 1}), whole(*t.m, {0, 3});
  const std::vector<float> h0 = l0.run(b).hidden;
  const forward_output& full = whole.run(b);
  const int32_t n_vocab = t.m->hparams().n_vocab;
  const int32_t expect_token =
      static_cast<int32_t>(std::max_element(full.logits.begin(), full.logits.begin() + n_vocab) - full.logits.begin());
  const std::vector<msg::seq_sampling> sampling = {{1, greedy(), 0, k_prompt, false}};

  auto sampled_to_head = [&] { return of_kind<msg::sampled_tokens>(net_log->sent_to("head")); };
  inject(node, "head", batch_frame(30, 1, b, 2, n_embd(), h0, sampling));
  auto st = sampled_to_head();
  ASSERT_EQ(st.size(), 1u);
  EXPECT_EQ(st[0]->epoch, 2u);
  ASSERT_EQ(body_of<msg::sampled_tokens>(st[0])->tokens.size(), 1u);
  EXPECT_EQ(body_of<msg::sampled_tokens>(st[0])->tokens[0].token, expect_token);

  // The epoch-1 group [1, 2) is gone: its batches are stale, and no group starts at layer 2 any more.
  const size_t sent = net_log->sent.size();
  inject(node, "head", batch_frame(31, 1, seq_rows(2, 0, {5}, false), 1, n_embd(), std::vector<float>(n_embd(), 0.5f)));
  EXPECT_EQ(dropped(), 1u);
  inject(node, "head", batch_frame(32, 2, b, 2, n_embd(), h0));
  EXPECT_EQ(net_log->sent.size(), sent);

  // The epoch-1 assignment again: ignored (counted), no ack, the epoch-2 group still serves.
  inject(node, "head", make_frame_ptr(assignment_of({{0, 1, "head"}, {1, 2, "w1"}, {2, 3, "w2"}}), 1));
  EXPECT_EQ(dropped(), 2u);
  EXPECT_EQ(acks_to_head().size(), 2u);
  inject(node, "head", batch_frame(33, 1, seq_rows(3, 0, k_prompt, true), 2, n_embd(), h0,
                                   {{3, greedy(), 0, k_prompt, false}}));
  st = sampled_to_head();
  ASSERT_EQ(st.size(), 2u);
  EXPECT_EQ(body_of<msg::sampled_tokens>(st[1])->batch_id, 33u);
  EXPECT_EQ(body_of<msg::sampled_tokens>(st[1])->tokens[0].token, expect_token);
}

}  // namespace
}  // namespace lime
