// scheduler actor under CAF's deterministic test coordinator with the pipeline faked by the test (it takes the
// micro-batches the scheduler gives the node and answers with sampled tokens): streaming, batch timeouts on the test
// clock, epoch changes, below capacity. Then a head node with its real supervisor, scheduler, loader and layer group,
// driven through a network probe: a client's request equals a single-process session bit for bit. stories260K.
#include <gtest/gtest.h>

#include "actors/node.h"
#include "actors/scheduler.h"
#include "actors/scheduler_core.h"
#include "runtime/model.h"
#include "runtime/session.h"
#include "runtime/tokenizer.h"
#include "tests/actors/deterministic_util.h"
#include "tests/test_models.h"

namespace lime {
namespace {

using namespace std::chrono_literals;
using test::addressed;
using test::body_of;
using test::of_kind;
using test::probe_log;

sampling_params greedy() {
  sampling_params p;
  p.temperature = 0.0f;
  return p;
}

msg::generation_request request_of(uint64_t id, const std::string& text, int32_t n_predict,
                                   sampling_params params = greedy()) {
  msg::generation_request r;
  r.request_id = id;
  r.messages = {{"user", text}};
  r.params = params;
  r.n_predict = n_predict;
  r.want_checksum = true;
  return r;
}

// What one client received (frames addressed to it, in order).
struct client_view {
  std::vector<int32_t> tokens;
  std::string text;
  std::vector<msg::generation_done> done;
  std::vector<msg::error_report> errors;
};
client_view view_of(const std::vector<addressed>& to, const std::string& client) {
  client_view v;
  for (const auto& [peer, f] : to) {
    if (peer != client) continue;
    if (auto* ts = body_of<msg::token_stream>(f)) {
      v.tokens.insert(v.tokens.end(), ts->tokens.begin(), ts->tokens.end());
      v.text += ts->text;
    } else if (auto* d = body_of<msg::generation_done>(f)) {
      v.done.push_back(*d);
    } else if (auto* e = body_of<msg::error_report>(f)) {
      v.errors.push_back(*e);
    }
  }
  return v;
}

class stories_test : public test::det_test {
 protected:
  std::unique_ptr<model> m;
  std::unique_ptr<tokenizer> tok;
  node_context ctx() const { return node_context{m.get(), &tok->get_vocab(), tok.get(), nullptr}; }
  bool load(const std::string& dir) {
    auto mm = model::load(dir + "/stories260K.gguf");
    if (!mm.ok()) return false;
    m = std::make_unique<model>(std::move(mm).value());
    auto v = vocab_load(m->file());
    if (!v.ok()) return false;
    auto t = tokenizer::create(std::move(v).value());
    if (!t.ok()) return false;
    tok = std::make_unique<tokenizer>(std::move(t).value());
    return true;
  }
  std::vector<int32_t> prompt_of(const msg::generation_request& r) {
    auto p = conversation_prompt(*tok, r.messages, r.raw, nullptr);
    EXPECT_TRUE(p.ok());
    return p.ok() ? *p : std::vector<int32_t>{};
  }
};

// --- scheduler with a faked pipeline ------------------------------------------------------------------------------

class scheduler_test : public stories_test {
 protected:
  std::shared_ptr<probe_log> node_log, sup_log;
  caf::actor node, supv, sched;
  node_config cfg;

  void start() {
    node = spawn_probe(&node_log);
    supv = spawn_probe(&sup_log);
    cfg.name = "head";
    cfg.head = true;
    cfg.n_ctx = 128;
    cfg.batch_timeout = 1000ms;
    sched = keep(spawn_scheduler(sys_, scheduler_args{cfg, ctx(), node}));
    run();
  }
  void placed(uint64_t epoch, int32_t n_stages, bool serving, const std::string& message = "") {
    caf::send_as(supv, sched, placed_atom_v, epoch, n_stages, serving, message);
    run();
  }
  std::vector<frame_ptr> batches() { return of_kind<msg::micro_batch_msg>(node_log->routed); }
  std::vector<int32_t> freed() {
    std::vector<int32_t> ids;
    for (const frame_ptr& f : of_kind<msg::seq_free>(node_log->routed))
      for (int32_t id : body_of<msg::seq_free>(f)->seq_ids) ids.push_back(id);
    return ids;
  }
  // The pipeline's answer to `batch`: `token` (and checksum) for each row that asked for one, stamped `epoch`.
  void answer(const frame_ptr& batch, int32_t token, uint64_t checksum, uint64_t epoch) {
    const auto* mb = body_of<msg::micro_batch_msg>(batch);
    msg::sampled_tokens st;
    st.batch_id = mb->batch_id;
    size_t k = 0;
    for (size_t r = 0; r < mb->batch.size(); ++r)
      if (mb->batch.want_logits[r]) st.tokens.push_back({mb->sampling[k++].seq_id, mb->batch.pos[r] + 1, token, checksum});
    inject(sched, "head", make_frame_ptr(std::move(st), epoch));
  }
  std::tuple<uint32_t, uint32_t, uint64_t> counts() {
    auto r = ask<uint32_t, uint32_t, uint64_t>(sched, counts_atom_v);
    return r ? *r : std::make_tuple(0u, 0u, ~uint64_t{0});
  }
};

TEST_F(scheduler_test, a_request_streams_the_pipelines_tokens_and_ends_with_generation_done) {
  LIME_REQUIRE_MODELS(dir);
  ASSERT_TRUE(load(dir));
  start();
  placed(1, 1, true);
  sampling_params penalized = greedy();
  penalized.repeat_penalty = 1.1f;  // so the batches carry the history window
  const msg::generation_request req = request_of(7, "Once upon a time", 4, penalized);
  const std::vector<int32_t> prompt = prompt_of(req);
  const int32_t n_prompt = static_cast<int32_t>(prompt.size());
  inject(sched, "c1", make_frame_ptr(req));

  ASSERT_EQ(batches().size(), 1u);
  const frame_ptr first = batches()[0];
  const auto* mb = body_of<msg::micro_batch_msg>(first);
  EXPECT_EQ(first->epoch, 1u);
  EXPECT_EQ(mb->first_layer, 0);
  EXPECT_EQ(mb->batch.tokens, prompt);
  ASSERT_EQ(mb->sampling.size(), 1u);
  const int32_t seq = mb->sampling[0].seq_id;
  EXPECT_EQ(mb->batch.want_logits.back(), 1);
  EXPECT_EQ(mb->batch.pos.back(), n_prompt - 1);
  ASSERT_FALSE(sup_log->idle.empty());
  EXPECT_FALSE(sup_log->idle.back()) << "the supervisor is told requests are active";

  // The pipeline answers 300, 301, ...; each answer comes back as the next decode row, with its checksum chained.
  const std::vector<int32_t> answers = {300, 301, 302, 303};
  for (size_t i = 0; i < answers.size(); ++i) {
    answer(batches().back(), answers[i], 1000 + i, 1);
    if (i + 1 == answers.size()) break;
    ASSERT_EQ(batches().size(), i + 2);
    const auto* next = body_of<msg::micro_batch_msg>(batches().back());
    EXPECT_EQ(next->batch.tokens, std::vector<int32_t>{answers[i]});
    EXPECT_EQ(next->batch.pos, std::vector<int32_t>{n_prompt + static_cast<int32_t>(i)});
    EXPECT_EQ(next->batch.seq, std::vector<int32_t>{seq});
    ASSERT_EQ(next->sampling.size(), 1u);
    EXPECT_EQ(next->sampling[0].checksum, 1000 + i);
    ASSERT_FALSE(next->sampling[0].history.empty());
    EXPECT_EQ(next->sampling[0].history.back(), answers[i]);
    EXPECT_EQ(next->sampling[0].params.repeat_penalty, 1.1f);
  }
  EXPECT_EQ(batches().size(), answers.size()) << "a batch after the last token";
  const client_view v = view_of(node_log->to_peer, "c1");
  EXPECT_EQ(v.tokens, answers);
  EXPECT_EQ(v.text, tok->decode(answers, false, false));
  ASSERT_EQ(v.done.size(), 1u);
  EXPECT_EQ(v.done[0].request_id, 7u);
  EXPECT_EQ(v.done[0].finish_reason, "length");
  EXPECT_EQ(v.done[0].n_generated, 4);
  EXPECT_EQ(v.done[0].n_prompt, n_prompt);
  EXPECT_EQ(v.done[0].checksum, 1003u);
  EXPECT_TRUE(v.errors.empty());
  EXPECT_EQ(freed(), std::vector<int32_t>{seq}) << "the finished sequence's KV is freed on every node";
  EXPECT_TRUE(sup_log->idle.back());
}

TEST_F(scheduler_test, a_batch_not_back_within_the_timeout_is_replayed_under_a_new_sequence) {
  LIME_REQUIRE_MODELS(dir);
  ASSERT_TRUE(load(dir));
  start();
  placed(1, 1, true);
  inject(sched, "c1", make_frame_ptr(request_of(1, "Once upon a time", 2)));
  ASSERT_EQ(batches().size(), 1u);
  const frame_ptr lost = batches()[0];
  const auto* b1 = body_of<msg::micro_batch_msg>(lost);

  advance(500ms);
  EXPECT_EQ(batches().size(), 1u) << "replayed before the timeout";
  advance(600ms);
  ASSERT_EQ(batches().size(), 2u);
  const auto* b2 = body_of<msg::micro_batch_msg>(batches()[1]);
  EXPECT_NE(b2->batch_id, b1->batch_id);
  EXPECT_NE(b2->sampling[0].seq_id, b1->sampling[0].seq_id);
  EXPECT_EQ(b2->batch.tokens, b1->batch.tokens);
  EXPECT_EQ(b2->batch.pos, b1->batch.pos);
  EXPECT_EQ(freed(), std::vector<int32_t>{b1->sampling[0].seq_id});
  EXPECT_EQ(std::get<2>(counts()), 1u);

  answer(lost, 300, 1, 1);  // the lost batch turns up late: forgotten
  EXPECT_TRUE(view_of(node_log->to_peer, "c1").tokens.empty());
  EXPECT_EQ(batches().size(), 2u);
  answer(batches()[1], 301, 2, 1);
  EXPECT_EQ(view_of(node_log->to_peer, "c1").tokens, std::vector<int32_t>{301});
}

TEST_F(scheduler_test, a_new_epoch_replays_and_tokens_of_the_old_epoch_are_ignored) {
  LIME_REQUIRE_MODELS(dir);
  ASSERT_TRUE(load(dir));
  start();
  placed(1, 1, true);
  inject(sched, "c1", make_frame_ptr(request_of(1, "Once upon a time", 3)));
  ASSERT_EQ(batches().size(), 1u);
  const frame_ptr old = batches()[0];
  const auto* b1 = body_of<msg::micro_batch_msg>(old);

  placed(2, 2, false);  // placing: nothing is sent until the new epoch serves
  EXPECT_EQ(batches().size(), 1u);
  placed(2, 2, true);
  ASSERT_EQ(batches().size(), 2u);
  const frame_ptr fresh = batches()[1];
  const auto* b2 = body_of<msg::micro_batch_msg>(fresh);
  EXPECT_EQ(fresh->epoch, 2u);
  EXPECT_NE(b2->sampling[0].seq_id, b1->sampling[0].seq_id);
  EXPECT_EQ(b2->batch.tokens, b1->batch.tokens);
  EXPECT_EQ(std::get<2>(counts()), 1u);

  answer(fresh, 300, 1, 1);  // the right batch id, stamped with the old epoch
  answer(old, 300, 1, 2);    // the old batch id
  EXPECT_TRUE(view_of(node_log->to_peer, "c1").tokens.empty());
  EXPECT_EQ(batches().size(), 2u);
  answer(fresh, 301, 1, 2);
  EXPECT_EQ(view_of(node_log->to_peer, "c1").tokens, std::vector<int32_t>{301});
  ASSERT_EQ(batches().size(), 3u);
  EXPECT_EQ(batches()[2]->epoch, 2u);
}

TEST_F(scheduler_test, below_capacity_fails_active_and_new_requests_until_the_cluster_serves_again) {
  LIME_REQUIRE_MODELS(dir);
  ASSERT_TRUE(load(dir));
  start();
  placed(1, 1, true);
  inject(sched, "c1", make_frame_ptr(request_of(1, "Once upon a time", 3)));
  placed(2, 0, false, "cluster below capacity: test");
  auto v = view_of(node_log->to_peer, "c1");
  ASSERT_EQ(v.errors.size(), 1u);
  EXPECT_EQ(v.errors[0].request_id, 1u);
  EXPECT_EQ(v.errors[0].code, "unavailable");
  EXPECT_EQ(v.errors[0].message, "cluster below capacity: test");
  inject(sched, "c2", make_frame_ptr(request_of(2, "Hello", 3)));
  v = view_of(node_log->to_peer, "c2");
  ASSERT_EQ(v.errors.size(), 1u);
  EXPECT_EQ(v.errors[0].code, "unavailable");
  EXPECT_EQ(batches().size(), 1u);

  placed(3, 1, true);
  inject(sched, "c2", make_frame_ptr(request_of(3, "Hello", 3)));
  ASSERT_EQ(batches().size(), 2u);
  EXPECT_EQ(batches()[1]->epoch, 3u);
}

// --- a head node with its real actors -----------------------------------------------------------------------------

class head_node_test : public stories_test {};

TEST_F(head_node_test, a_request_through_the_head_equals_a_single_process_session) {
  LIME_REQUIRE_MODELS(dir);
  ASSERT_TRUE(load(dir));
  std::shared_ptr<probe_log> net_log;
  caf::actor net = spawn_probe(&net_log);
  node_config c;
  c.name = "head";
  c.head = true;
  c.model_id = 42;
  c.n_threads = 1;
  c.n_ctx = 128;
  c.detach_layer_groups = false;
  caf::actor node = keep(spawn_node(sys_, c, ctx(), net));
  run();

  // Placed, built, acked and serving without a single peer.
  inject(node, "c1", make_frame_ptr(msg::status_request{}));
  auto st = of_kind<msg::cluster_status>(net_log->sent);
  ASSERT_EQ(st.size(), 1u);
  EXPECT_EQ(st[0].first, "c1");
  const auto* cs = body_of<msg::cluster_status>(st[0].second);
  EXPECT_EQ(cs->epoch, 1u);
  EXPECT_EQ(cs->state, "serving");
  ASSERT_EQ(cs->nodes.size(), 1u);
  EXPECT_EQ(cs->nodes[0].groups, "0-" + std::to_string(m->hparams().n_layer));

  const msg::generation_request req = request_of(5, "Once upon a time", 12);
  inject(node, "c1", make_frame_ptr(req));
  const client_view v = view_of(net_log->sent, "c1");

  session_config sc;
  sc.n_ctx = 128;
  sc.n_threads = 1;
  auto sess = session::create(*m, tok->get_vocab(), sc);
  ASSERT_TRUE(sess.ok());
  std::vector<int32_t> ref;
  auto stats = (*sess)->generate(prompt_of(req), greedy(), 12, [&](int32_t id) { ref.push_back(id); return true; },
                                 nullptr);
  ASSERT_TRUE(stats.ok());
  ASSERT_EQ(ref.size(), 12u) << "the reference should run to n_predict";
  EXPECT_TRUE(v.errors.empty()) << (v.errors.empty() ? "" : v.errors[0].message);
  ASSERT_EQ(v.done.size(), 1u);
  EXPECT_EQ(v.tokens, ref);
  EXPECT_EQ(v.done[0].checksum, stats->checksum);
  EXPECT_EQ(v.done[0].n_generated, stats->n_generated);
  EXPECT_EQ(v.done[0].n_prompt, stats->n_prompt);
  // The head frees the finished sequence on its own group and broadcasts the free to the workers.
  auto frees = of_kind<msg::seq_free>(net_log->broadcast);
  ASSERT_EQ(frees.size(), 1u);
  EXPECT_EQ(body_of<msg::seq_free>(frees[0])->seq_ids.size(), 1u);
  EXPECT_EQ(net_log->unexpected, 0u);
}

}  // namespace
}  // namespace lime
