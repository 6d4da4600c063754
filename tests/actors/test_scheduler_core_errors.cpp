// scheduler_core's refusals and early ends on stories260K: bad requests answered as chat_session/session answer
// them, n_predict 0 and a full context, admission limits, cancel, a lost client and fail_all freeing their KV.
#include <gtest/gtest.h>

#include <cstdio>

#include "tests/actors/scheduler_test_util.h"
#include "tests/test_models.h"

namespace lime {
namespace {

using test::chat_answer;
using test::chat_reference;
using test::sched_driver;

chat_options opts_with(sampling_params sp, int32_t n_predict) {
  chat_options o;
  o.sampling = sp;
  o.n_predict = n_predict;
  return o;
}

msg::generation_request request(uint64_t id, std::vector<msg::chat_turn> turns, int32_t n_predict = 16) {
  msg::generation_request r;
  r.request_id = id;
  r.messages = std::move(turns);
  r.params = test::greedy();
  r.n_predict = n_predict;
  return r;
}

std::string read_file(const std::string& path) {
  std::string s;
  FILE* f = std::fopen(path.c_str(), "rb");
  if (!f) return s;
  char buf[4096];
  for (size_t n; (n = std::fread(buf, 1, sizeof buf, f)) > 0;) s.append(buf, n);
  std::fclose(f);
  return s;
}

// The error chat_session::turn gives for user_text on this tokenizer.
std::string chat_error(const test::stories& s, const std::string& user_text) {
  session_config sc;
  sc.n_ctx = 64;
  sc.n_threads = 1;
  auto sess = session::create(*s.m, s.tok->get_vocab(), sc);
  EXPECT_TRUE(sess.ok());
  chat_session chat(**sess, *s.tok, chat_options{});
  auto r = chat.turn(user_text, nullptr, nullptr);
  EXPECT_FALSE(r.ok());
  return r.ok() ? "" : r.err().message;
}

void expect_refused(sched_driver& d, const std::string& peer, uint64_t id, const std::string& message) {
  test::client_view& v = d.view(peer, id);
  ASSERT_EQ(v.errors.size(), 1u) << message;
  EXPECT_EQ(v.errors[0].code, "invalid_argument");
  EXPECT_EQ(v.errors[0].message, message);
  EXPECT_FALSE(v.done);
}

TEST(scheduler_core_errors, bad_requests_are_refused_like_chat) {
  LIME_REQUIRE_MODELS(dir);
  test::stories tmpl;
  ASSERT_TRUE(tmpl.load(dir, read_file(dir + "/templates/microsoft-Phi-3.5-mini-instruct.jinja")));
  test::stories plain;
  ASSERT_TRUE(plain.load(dir));
  const std::string bad_utf8 = "caf\xc3";

  sched_driver t(tmpl, scheduler_config{});
  t.submit("a", request(1, {{"user", ""}}));
  expect_refused(t, "a", 1, chat_error(tmpl, ""));
  EXPECT_EQ(t.view("a", 1).errors[0].message, "empty message");
  t.submit("a", request(2, {{"user", bad_utf8}}));
  expect_refused(t, "a", 2, chat_error(tmpl, bad_utf8));
  EXPECT_EQ(t.view("a", 2).errors[0].message, "the message is not valid UTF-8");
  EXPECT_EQ(t.core.requests(), 0u);

  sched_driver p(plain, scheduler_config{});
  p.submit("a", request(3, {{"user", bad_utf8}}));
  expect_refused(p, "a", 3, chat_error(plain, bad_utf8));
  // Plain mode takes an empty message (the model starts from BOS)...
  p.submit("a", request(4, {{"user", ""}}, 4));
  p.run_fifo();
  EXPECT_TRUE(p.view("a", 4).done);
  p.expect_clean();
  // ...unless the tokenizer adds no BOS: then the prompt is empty.
  test::stories no_bos;
  ASSERT_TRUE(no_bos.load(dir, "", /*add_bos=*/false));
  sched_driver nb(no_bos, scheduler_config{});
  nb.submit("a", request(5, {{"user", ""}}));
  expect_refused(nb, "a", 5, "empty prompt: nothing to generate from");

  // Longer than the context: session::generate's words.
  const std::string text = "Once upon a time, there was a little girl named Lily";
  const size_t n = plain.tok->encode(text, true, true).size();
  ASSERT_GT(n, 8u);
  scheduler_config small;
  small.n_ctx = 8;
  sched_driver sm(plain, small);
  sm.submit("a", request(6, {{"user", text}}));
  expect_refused(sm, "a", 6, "prompt is " + std::to_string(n) + " tokens, longer than the context of 8");
  EXPECT_EQ(sm.core.requests(), 0u);
  EXPECT_TRUE(sm.core.next_batches(1.0).empty());
}

TEST(scheduler_core_errors, n_predict_zero_and_full_context_end_at_once) {
  LIME_REQUIRE_MODELS(dir);
  test::stories s;
  ASSERT_TRUE(s.load(dir));
  const std::string text = "Once upon a time";
  const std::vector<int32_t> prompt = s.tok->encode(text, true, true);
  session_config sc;
  sc.n_threads = 1;
  for (int c = 0; c < 2; ++c) {
    // c == 0: n_predict 0; c == 1: the prompt fills the context exactly.
    const int32_t n_ctx = c == 0 ? 64 : static_cast<int32_t>(prompt.size());
    const int32_t n_predict = c == 0 ? 0 : -1;
    sc.n_ctx = n_ctx;
    auto sess = session::create(*s.m, s.tok->get_vocab(), sc);
    ASSERT_TRUE(sess.ok());
    auto st = (*sess)->generate(prompt, test::greedy(), n_predict, nullptr, nullptr);
    ASSERT_TRUE(st.ok());
    EXPECT_EQ(st->n_generated, 0);
    scheduler_config cfg;
    cfg.n_ctx = n_ctx;
    sched_driver d(s, cfg);
    msg::generation_request r = request(7, {{"user", text}}, n_predict);
    r.checksum_init = 0x1234567890abcdefull;
    d.submit("a", r);
    test::client_view& v = d.view("a", 7);
    ASSERT_TRUE(v.done);
    EXPECT_EQ(v.done_msg.finish_reason, finish_reason_name(st->reason));
    EXPECT_EQ(v.done_msg.n_generated, 0);
    EXPECT_EQ(v.done_msg.n_prompt, static_cast<int32_t>(prompt.size()));
    EXPECT_EQ(v.done_msg.checksum, r.checksum_init);  // the chain goes on untouched
    EXPECT_TRUE(v.tokens.empty());
    EXPECT_TRUE(d.core.next_batches(1.0).empty());
    d.expect_clean();
  }
}

TEST(scheduler_core_errors, duplicate_id_is_refused_and_the_first_runs_on) {
  LIME_REQUIRE_MODELS(dir);
  test::stories s;
  ASSERT_TRUE(s.load(dir));
  chat_reference ref = chat_answer(s, 96, {"Once upon a time"}, opts_with(test::seeded(8), 30), 5);
  sched_driver d(s, scheduler_config{});
  d.submit("alice", ref.req);
  d.submit("alice", ref.req);
  d.submit("bob", ref.req);  // another client's id 5 is another request
  ASSERT_EQ(d.view("alice", 5).errors.size(), 1u);
  EXPECT_EQ(d.view("alice", 5).errors[0].code, "invalid_argument");
  d.view("alice", 5).errors.clear();
  EXPECT_EQ(d.core.requests(), 2u);
  d.run_fifo();
  test::expect_same(d.view("alice", 5), ref, "alice");
  test::expect_same(d.view("bob", 5), ref, "bob");
  d.expect_clean();
}

TEST(scheduler_core_errors, max_active_queues_the_rest) {
  LIME_REQUIRE_MODELS(dir);
  test::stories s;
  ASSERT_TRUE(s.load(dir));
  std::vector<chat_reference> refs = {
      chat_answer(s, 96, {"Once upon a time"}, opts_with(test::greedy(), 10), 1),
      chat_answer(s, 96, {"The cat"}, opts_with(test::seeded(2), 30), 2),
      chat_answer(s, 96, {"Lily"}, opts_with(test::seeded(3), 20), 3),
  };
  scheduler_config cfg;
  cfg.n_ctx = 96;
  cfg.max_active = 2;
  sched_driver d(s, cfg);
  for (const chat_reference& r : refs) d.submit("a", r.req);
  d.pump();
  EXPECT_EQ(d.core.requests(), 3u);
  EXPECT_EQ(d.core.active(), 2u);
  while (!d.view("a", 1).done) {
    EXPECT_LE(d.seqs_seen.size(), 2u);  // the third holds no sequence yet
    EXPECT_TRUE(d.view("a", 3).tokens.empty());
    ASSERT_FALSE(d.pending.empty());
    d.step(0);
    d.pump();
  }
  EXPECT_EQ(d.core.requests(), 2u);
  EXPECT_EQ(d.core.active(), 2u);
  d.run_fifo();
  for (const chat_reference& r : refs) test::expect_same(d.view("a", r.req.request_id), r, "queued");
  EXPECT_EQ(d.seqs_seen.size(), 3u);
  d.expect_clean();
}

TEST(scheduler_core_errors, cancel_stops_output_and_frees_after_the_batch) {
  LIME_REQUIRE_MODELS(dir);
  test::stories s;
  ASSERT_TRUE(s.load(dir));
  chat_reference a = chat_answer(s, 96, {"Once upon a time"}, opts_with(test::seeded(4), 60), 1);
  chat_reference b = chat_answer(s, 96, {"The dog"}, opts_with(test::seeded(5), 40), 2);
  ASSERT_GT(a.tokens.size(), 10u);
  scheduler_config cfg;
  cfg.n_ctx = 96;
  cfg.max_active = 2;
  sched_driver d(s, cfg);
  d.submit("a", a.req);
  d.submit("a", b.req);
  msg::generation_request queued = request(3, {{"user", "Sue"}});
  d.submit("a", queued);
  while (d.view("a", 1).tokens.size() < 5) {
    d.pump();
    d.step(0);
  }
  d.pump();
  ASSERT_FALSE(d.pending.empty());  // both sequences are in batches now
  const size_t freed_before = d.seqs_freed.size();
  d.core.cancel("a", 1, d.now);
  d.drain();
  test::client_view& va = d.view("a", 1);
  ASSERT_TRUE(va.done);
  EXPECT_EQ(va.done_msg.finish_reason, "cancelled");
  EXPECT_EQ(va.done_msg.n_generated, static_cast<int32_t>(va.tokens.size()));
  const std::vector<int32_t> prefix(a.tokens.begin(), a.tokens.begin() + static_cast<std::ptrdiff_t>(va.tokens.size()));
  EXPECT_EQ(va.tokens, prefix);
  // Its batch is still in the pipeline: the seq_free waits for it, so it cannot overtake the batch.
  EXPECT_EQ(d.seqs_freed.size(), freed_before);
  d.core.cancel("a", 1, d.now);      // unknown now: ignored
  d.core.cancel("a", 3, d.now);      // queued: ends without ever holding a sequence
  d.drain();
  ASSERT_TRUE(d.view("a", 3).done);
  EXPECT_EQ(d.view("a", 3).done_msg.finish_reason, "cancelled");
  EXPECT_EQ(d.view("a", 3).done_msg.n_generated, 0);
  EXPECT_EQ(d.seqs_freed.size(), freed_before);
  d.run_fifo();
  EXPECT_EQ(d.seqs_freed.size(), freed_before + 2);  // a's (once its batch came back) and b's
  EXPECT_EQ(va.after_end, 0);
  test::expect_same(d.view("a", 2), b, "the other request");
  d.expect_clean();
}

TEST(scheduler_core_errors, lost_client_ends_silently) {
  LIME_REQUIRE_MODELS(dir);
  test::stories s;
  ASSERT_TRUE(s.load(dir));
  chat_reference a = chat_answer(s, 96, {"Once upon a time"}, opts_with(test::seeded(6), 50), 1);
  sched_driver d(s, scheduler_config{});
  d.submit("alice", a.req);
  d.submit("bob", request(1, {{"user", "The cat"}}, 60));
  d.submit("bob", request(2, {{"user", "The dog"}}, 60));
  for (int i = 0; i < 6; ++i) {
    d.pump();
    d.step(0);
  }
  const size_t bob1 = d.view("bob", 1).tokens.size(), bob2 = d.view("bob", 2).tokens.size();
  EXPECT_GT(bob1 + bob2, 0u);
  d.core.client_lost("bob");
  d.drain();
  EXPECT_EQ(d.core.requests(), 1u);
  d.run_fifo();
  EXPECT_EQ(d.view("bob", 1).tokens.size(), bob1);
  EXPECT_EQ(d.view("bob", 2).tokens.size(), bob2);
  EXPECT_FALSE(d.view("bob", 1).done);
  EXPECT_FALSE(d.view("bob", 2).done);
  test::expect_same(d.view("alice", 1), a, "alice");
  d.expect_clean();
}

TEST(scheduler_core_errors, fail_all_ends_everything_with_the_error) {
  LIME_REQUIRE_MODELS(dir);
  test::stories s;
  ASSERT_TRUE(s.load(dir));
  scheduler_config cfg;
  cfg.max_active = 2;
  sched_driver d(s, cfg);
  for (uint64_t id = 1; id <= 3; ++id) d.submit("a", request(id, {{"user", "Once upon a time"}}, 50));
  for (int i = 0; i < 4; ++i) {
    d.pump();
    d.step(0);
  }
  d.pump();
  std::vector<msg::micro_batch_msg> dropped(d.pending.begin(), d.pending.end());
  d.pending.clear();
  d.core.fail_all("unavailable", "no nodes left");
  d.drain();
  for (uint64_t id = 1; id <= 3; ++id) {
    test::client_view& v = d.view("a", id);
    ASSERT_EQ(v.errors.size(), 1u);
    EXPECT_EQ(v.errors[0].code, "unavailable");
    EXPECT_EQ(v.errors[0].message, "no nodes left");
    EXPECT_FALSE(v.done);
  }
  for (const msg::micro_batch_msg& b : dropped) {
    EXPECT_FALSE(d.core.on_sampled(msg::sampled_tokens{b.batch_id, {}}, d.now));
  }
  d.expect_clean();
  // The core serves again afterwards.
  chat_reference r = chat_answer(s, cfg.n_ctx, {"The cat"}, opts_with(test::greedy(), 12), 9);
  d.submit("a", r.req);
  d.run_fifo();
  test::expect_same(d.view("a", 9), r, "after fail_all");
  d.expect_clean();
}

// A stage refuses a lone request's batch (its KV pool is full and nothing is left to give) again and again at the
// same length: after k_max_stalls refusals it ends with resource_exhausted instead of replaying forever.
TEST(scheduler_core, a_lone_request_refused_at_the_same_length_ends_with_resource_exhausted) {
  LIME_REQUIRE_MODELS(dir);
  test::stories s;
  ASSERT_TRUE(s.load(dir));
  scheduler_config cfg;
  cfg.n_ctx = 96;
  cfg.max_batch_tokens = 16;
  sched_driver d(s, cfg);
  d.submit("a", request(1, {{"user", "Once upon a time there was a little girl"}}, 40));
  for (int i = 0; i < 6; ++i) {  // prefill and a few tokens
    d.pump();
    d.step(0);
  }
  ASSERT_FALSE(d.view("a", 1).tokens.empty());
  const size_t tokens_before = d.view("a", 1).tokens.size();
  int refusals = 0;
  while (d.core.requests() > 0 && refusals < 10) {
    d.pump();
    ASSERT_FALSE(d.pending.empty());
    const uint64_t id = d.pending.front().batch_id;
    d.pending.pop_front();
    EXPECT_TRUE(d.core.on_batch_lost(id, "KV cache full"));
    ++refusals;
    d.drain();
  }
  EXPECT_EQ(refusals, scheduler_core::k_max_stalls);
  test::client_view& v = d.view("a", 1);
  ASSERT_EQ(v.errors.size(), 1u);
  EXPECT_EQ(v.errors[0].code, "resource_exhausted");
  EXPECT_NE(v.errors[0].message.find("KV cache full"), std::string::npos) << v.errors[0].message;
  EXPECT_EQ(v.tokens.size(), tokens_before);  // nothing streamed twice
  d.expect_clean();
}

// Two requests share the pipeline; a stage refuses a batch (KV pool full). One sequence keeps running, the other is
// preempted: it waits in the queue (never failed) until the first ends, then starts over, and both answers are
// bitwise the single-request ones.
TEST(scheduler_core, a_refused_batch_preempts_until_a_sequence_ends_and_answers_stay_identical) {
  LIME_REQUIRE_MODELS(dir);
  test::stories s;
  ASSERT_TRUE(s.load(dir));
  scheduler_config cfg;
  cfg.n_ctx = 128;
  cfg.max_batch_tokens = 32;
  cfg.max_in_flight = 1;
  const chat_reference a = chat_answer(s, cfg.n_ctx, {"Once upon a time"}, opts_with(test::seeded(5), 40), 1);
  const chat_reference b = chat_answer(s, cfg.n_ctx, {"The little dog"}, opts_with(test::greedy(), 30), 2);
  sched_driver d(s, cfg);
  d.submit("a", a.req);
  d.submit("b", b.req);
  for (int i = 0; i < 5; ++i) {
    d.pump();
    d.step(0);
  }
  ASSERT_EQ(d.core.active(), 2u);
  d.pump();
  ASSERT_EQ(d.pending.size(), 1u);
  const uint64_t id = d.pending.front().batch_id;
  d.pending.pop_front();
  EXPECT_TRUE(d.core.on_batch_lost(id, "KV cache full"));
  d.drain();
  EXPECT_EQ(d.core.active(), 1u) << "one sequence is preempted";
  EXPECT_EQ(d.core.requests(), 2u) << "and still queued, not failed";
  // Until the running one ends, nothing else is admitted.
  int steps = 0;
  while (!(d.view("a", 1).done || d.view("b", 2).done) && steps++ < 1000) {
    EXPECT_EQ(d.core.active(), 1u);
    d.pump();
    ASSERT_FALSE(d.pending.empty());
    d.step(0);
  }
  d.run_fifo();
  test::expect_same(d.view("a", 1), a, "request a");
  test::expect_same(d.view("b", 2), b, "request b");
  EXPECT_TRUE(d.view("a", 1).errors.empty());
  EXPECT_TRUE(d.view("b", 2).errors.empty());
  EXPECT_GE(d.core.replays(), 2u);
  d.expect_clean();
}

}  // namespace
}  // namespace lime
