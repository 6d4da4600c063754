// scheduler_core on stories260K through a one-process pipeline: a request's streamed tokens, text and checksum equal
// lime-chat's turn bit for bit, alone or with others, with chunked prefill, out-of-order batches and lost batches.
#include <gtest/gtest.h>

#include <cstdio>
#include <random>

#include "tests/actors/scheduler_test_util.h"
#include "tests/test_models.h"

namespace lime {
namespace {

using test::chat_answer;
using test::chat_reference;
using test::sched_driver;

chat_options opts_with(sampling_params sp, int32_t n_predict, bool ignore_eos = false) {
  chat_options o;
  o.sampling = sp;
  o.n_predict = n_predict;
  o.ignore_eos = ignore_eos;
  return o;
}

// Nine different requests: plain prompts of various lengths (some longer than a 16-row batch), greedy and
// seeded sampling, repetition penalties with several windows, an n_predict limit, eog and the context limit.
std::vector<chat_reference> nine_references(const test::stories& s, int32_t n_ctx) {
  const std::vector<std::pair<std::string, chat_options>> cases = {
      {"Once upon a time", opts_with(test::greedy(), 40)},
      {"", opts_with(test::seeded(1), 60)},
      {"Lily and Ben went to the park to play with a big red ball. They ran and ran until the sun went down and "
       "they were tired",
       opts_with(test::seeded(2, 1.1f, 16), 50)},
      {"The cat", opts_with(test::seeded(3, 1.3f, -1), 70)},
      {"Tom had a little dog named Spot. One day, Spot saw a bird in the tree and", opts_with(test::seeded(4), -1)},
      {"Once upon a time, there was a girl", opts_with(test::greedy(), -1, /*ignore_eos=*/true)},
      {"Sue", opts_with(test::seeded(5, 1.05f, 8), 30)},
      {"One day, a little bird", opts_with(test::greedy(1.8f, 4), 40)},
      {"A big fish swam in the sea. It was happy and", opts_with(test::seeded(6), 45)},
  };
  std::vector<chat_reference> refs;
  uint64_t id = 100;
  for (const auto& [text, o] : cases) refs.push_back(chat_answer(s, n_ctx, {text}, o, id++));
  return refs;
}

TEST(scheduler_core, one_request_equals_chat_turn) {
  LIME_REQUIRE_MODELS(dir);
  test::stories s;
  ASSERT_TRUE(s.load(dir));
  const int32_t n_ctx = 128;
  struct c { std::string user; chat_options o; const char* reason; };
  const std::vector<c> cases = {
      {"Once upon a time", opts_with(test::greedy(), 64), "length"},
      {"Once upon a time", opts_with(test::seeded(42, 1.1f), 80), nullptr},
      {"Once upon a time", opts_with(test::greedy(2.0f, -1), 60), nullptr},           // penalty, whole history
      {"", opts_with(test::seeded(7), -1), nullptr},                                  // from BOS alone
      {"The dog", opts_with(test::greedy(), -1, /*ignore_eos=*/true), "context"},     // runs into n_ctx
  };
  for (size_t i = 0; i < cases.size(); ++i) {
    chat_reference ref = chat_answer(s, n_ctx, {cases[i].user}, cases[i].o);
    ASSERT_FALSE(ref.tokens.empty());
    if (cases[i].reason) {
      EXPECT_STREQ(finish_reason_name(ref.stats.reason), cases[i].reason);
    }
    scheduler_config cfg;
    cfg.n_ctx = n_ctx;
    sched_driver d(s, cfg);
    d.submit("alice", ref.req);
    d.run_fifo();
    test::expect_same(d.view("alice", ref.req.request_id), ref, "case " + std::to_string(i));
    // One stream per sampled token (plus at most the detokenizer's flush), tokens in order.
    EXPECT_GE(d.view("alice", ref.req.request_id).streams, static_cast<int>(ref.tokens.size()));
    d.expect_clean();
  }
}

TEST(scheduler_core, template_mode_multi_turn_equals_chat) {
  LIME_REQUIRE_MODELS(dir);
  // stories260K has no template: give its vocab Phi-3.5's (the model still answers; the prompt is what counts).
  std::string tmpl;
  {
    FILE* f = std::fopen((dir + "/templates/microsoft-Phi-3.5-mini-instruct.jinja").c_str(), "rb");
    ASSERT_NE(f, nullptr);
    char buf[4096];
    for (size_t n; (n = std::fread(buf, 1, sizeof buf, f)) > 0;) tmpl.append(buf, n);
    std::fclose(f);
  }
  test::stories s;
  ASSERT_TRUE(s.load(dir, tmpl));
  const int32_t n_ctx = 256;
  chat_options o = opts_with(test::seeded(11, 1.1f), 24);
  o.system_prompt = "You tell stories.";
  chat_reference ref = chat_answer(s, n_ctx, {"Tell me about a cat.", "And a dog?"}, o, 9);
  ASSERT_EQ(ref.req.messages.size(), 4u);  // system, user, assistant, user
  bool rsp = false;
  auto prompt = conversation_prompt(*s.tok, ref.req.messages, false, &rsp);
  ASSERT_TRUE(prompt.ok());
  EXPECT_TRUE(rsp);
  EXPECT_EQ(static_cast<int32_t>(prompt->size()), ref.stats.n_prompt);

  scheduler_config cfg;
  cfg.n_ctx = n_ctx;
  cfg.max_batch_tokens = 32;
  sched_driver d(s, cfg);
  d.submit("alice", ref.req);
  d.run_fifo();
  test::expect_same(d.view("alice", 9), ref, "template turn 2");
  d.expect_clean();

  // raw: the same vocab in plain mode, as chat_session with raw.
  chat_options raw = opts_with(test::greedy(), 20);
  raw.raw = true;
  chat_reference plain = chat_answer(s, n_ctx, {"Once upon", " a time"}, raw, 10);
  sched_driver d2(s, cfg);
  d2.submit("bob", plain.req);
  d2.run_fifo();
  test::expect_same(d2.view("bob", 10), plain, "raw two turns");
  d2.expect_clean();
}

TEST(scheduler_core, nine_concurrent_with_chunked_prefill) {
  LIME_REQUIRE_MODELS(dir);
  test::stories s;
  ASSERT_TRUE(s.load(dir));
  const int32_t n_ctx = 96;
  std::vector<chat_reference> refs = nine_references(s, n_ctx);
  scheduler_config cfg;
  cfg.n_ctx = n_ctx;
  cfg.max_in_flight = 3;
  cfg.max_batch_tokens = 16;
  sched_driver d(s, cfg);
  for (size_t i = 0; i < refs.size(); ++i) d.submit(i % 2 ? "bob" : "alice", refs[i].req);
  d.pump();
  EXPECT_EQ(d.core.in_flight(), 3u);  // the ready sequences are spread over every free slot
  d.run_fifo();
  for (size_t i = 0; i < refs.size(); ++i)
    test::expect_same(d.view(i % 2 ? "bob" : "alice", refs[i].req.request_id), refs[i], "request " + std::to_string(i));
  EXPECT_LE(d.max_rows, 16u);
  EXPECT_GT(d.chunks_without_sample, 0u);  // a long prompt was prefilled in pieces
  d.expect_clean();
}

TEST(scheduler_core, batches_completed_out_of_order) {
  LIME_REQUIRE_MODELS(dir);
  test::stories s;
  ASSERT_TRUE(s.load(dir));
  const int32_t n_ctx = 96;
  std::vector<chat_reference> refs = nine_references(s, n_ctx);
  scheduler_config cfg;
  cfg.n_ctx = n_ctx;
  cfg.max_in_flight = 3;
  cfg.max_batch_tokens = 16;
  sched_driver d(s, cfg);
  for (const chat_reference& r : refs) d.submit("alice", r.req);
  std::mt19937 rng(1234);
  int out_of_order = 0;
  d.run([&](size_t n) {
    const size_t i = std::uniform_int_distribution<size_t>(0, n - 1)(rng);
    out_of_order += i != 0;
    return i;
  });
  EXPECT_GT(out_of_order, 10);
  for (size_t i = 0; i < refs.size(); ++i)
    test::expect_same(d.view("alice", refs[i].req.request_id), refs[i], "request " + std::to_string(i));
  d.expect_clean();
}

TEST(scheduler_core, lost_batches_and_replay_all_change_nothing) {
  LIME_REQUIRE_MODELS(dir);
  test::stories s;
  ASSERT_TRUE(s.load(dir));
  const int32_t n_ctx = 96;
  std::vector<chat_reference> refs = nine_references(s, n_ctx);
  scheduler_config cfg;
  cfg.n_ctx = n_ctx;
  cfg.max_in_flight = 3;
  cfg.max_batch_tokens = 16;
  sched_driver d(s, cfg);
  for (const chat_reference& r : refs) d.submit("alice", r.req);
  int steps = 0, lost = 0, lost_after_run = 0, all = 0;
  while (d.core.requests() > 0 && steps < 100000) {
    d.pump();
    ASSERT_FALSE(d.pending.empty());
    ++steps;
    if (steps % 7 == 0) {
      // Lost on the way: never ran.
      const uint64_t id = d.pending.front().batch_id;
      d.pending.pop_front();
      EXPECT_TRUE(d.core.on_batch_lost(id));
      EXPECT_FALSE(d.core.on_batch_lost(id));
      ++lost;
    } else if (steps % 11 == 0) {
      // Ran (KV written under the old ids) but the result never came back; a late result is then refused.
      msg::micro_batch_msg b = std::move(d.pending.front());
      d.pending.pop_front();
      msg::sampled_tokens late = d.pipe.run(b);
      EXPECT_TRUE(d.core.on_batch_lost(b.batch_id));
      EXPECT_FALSE(d.core.on_sampled(late, d.now));
      ++lost_after_run;
    } else if (steps % 29 == 0) {
      // The placement changed: every KV is gone and every in-flight batch forgotten.
      std::vector<msg::micro_batch_msg> dropped(d.pending.begin(), d.pending.end());
      d.pending.clear();
      d.core.replay_all();
      EXPECT_EQ(d.core.in_flight(), 0u);
      for (const msg::micro_batch_msg& b : dropped) EXPECT_FALSE(d.core.on_sampled(d.pipe.run(b), d.now));
      ++all;
    } else {
      d.step(0);
      continue;
    }
    d.drain();
  }
  EXPECT_GT(lost, 0);
  EXPECT_GT(lost_after_run, 0);
  EXPECT_GT(all, 0);
  EXPECT_GT(d.core.replays(), static_cast<uint64_t>(lost + lost_after_run));
  for (size_t i = 0; i < refs.size(); ++i)
    test::expect_same(d.view("alice", refs[i].req.request_id), refs[i], "request " + std::to_string(i));
  d.expect_clean();
}

TEST(scheduler_core, duplicate_results_are_ignored) {
  LIME_REQUIRE_MODELS(dir);
  test::stories s;
  ASSERT_TRUE(s.load(dir));
  chat_reference ref = chat_answer(s, 96, {"Once upon a time"}, opts_with(test::seeded(3), 40));
  scheduler_config cfg;
  cfg.n_ctx = 96;
  sched_driver d(s, cfg);
  d.submit("alice", ref.req);
  int duplicates = 0;
  while (d.core.requests() > 0) {
    d.pump();
    ASSERT_FALSE(d.pending.empty());
    msg::sampled_tokens st = d.step(0);
    EXPECT_FALSE(d.core.on_sampled(st, d.now));
    EXPECT_TRUE(d.core.take_outgoing().empty());
    ++duplicates;
  }
  EXPECT_GT(duplicates, 10);
  test::expect_same(d.view("alice", 1), ref, "with duplicates");
  d.expect_clean();
}

}  // namespace
}  // namespace lime
