// session with a memory budget (runtime/mem_budget.h): the split's terms, generation at budgets from all-resident
// down to the minimum equal to the unconstrained run (tokens and logits checksum; f32 and q4_0, sampled), a budget
// below the minimum refused with the smallest one that works, and a long context generated to the limit.
#include <gtest/gtest.h>
#include <sys/mman.h>

#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "runtime/mem_budget.h"
#include "runtime/session.h"
#include "tests/runtime/weight_store_test_util.h"

namespace lime {
namespace {

test::tiny_spec spec_of(tensor_type t, int32_t n_ctx = 256) {
  test::tiny_spec s;
  s.n_vocab = 512;
  s.n_embd = 256;
  s.n_layer = 4;
  s.n_head = 4;
  s.n_head_kv = 2;
  s.n_ff = 512;
  s.n_ctx = n_ctx;
  s.type = t;
  return s;
}

vocab tiny_vocab(int32_t n_vocab) {
  vocab v;
  for (int32_t i = 0; i < n_vocab; ++i) v.tokens.push_back("t" + std::to_string(i));
  v.eos = 2;
  v.end_of_generation_ids = {2};
  return v;
}

session_config session_cfg(int32_t n_ctx, uint64_t budget) {
  session_config c;
  c.n_ctx = n_ctx;
  c.n_threads = 2;
  c.n_batch = 16;
  c.mem_budget = budget;
  c.store.lock_memory = false;  // tests run as any user (ulimit -l)
  return c;
}

// The split's inputs as session::create derives them from session_cfg.
mem_budget_config budget_cfg(const session_config& sc, uint64_t budget) {
  mem_budget_config c;
  c.budget = budget;
  c.n_ctx = sc.n_ctx;
  c.n_batch = sc.n_batch;
  c.n_threads = sc.n_threads;
  c.kv_type = sc.kv_type;
  c.store = sc.store;
  return c;
}

struct run_out {
  std::vector<int32_t> tokens;  // sampled, both turns
  uint64_t checksum = 0;
  finish_reason reason = finish_reason::length;
  status st;
};

// Two turns (the second continues the first, so it reuses the KV prefix), sampled at temperature 0.8 with a seed.
run_out run_two_turns(session& s, const std::vector<int32_t>& prompt, int32_t n_predict) {
  run_out o;
  sampling_params sp;
  sp.temperature = 0.8f;
  sp.seed = 1234;
  std::vector<int32_t> conv = prompt;
  for (int turn = 0; turn < 2; ++turn) {
    std::vector<int32_t> got;
    auto r = s.generate(conv, sp, n_predict, [&](int32_t id) { got.push_back(id); return true; }, nullptr, true);
    if (!r.ok()) {
      o.st = r.err();
      return o;
    }
    o.checksum = r->checksum;
    o.reason = r->reason;
    o.tokens.insert(o.tokens.end(), got.begin(), got.end());
    conv.insert(conv.end(), got.begin(), got.end());
    conv.push_back(static_cast<int32_t>((turn * 7 + 3) % 100 + 10));  // the "user" adds a token
  }
  return o;
}

TEST(mem_budget, terms_add_up_and_grow_with_what_they_hold) {
  test::model_file file(spec_of(tensor_type::f32), "mb_terms");
  auto m = model::load(file.path);
  ASSERT_TRUE(m.ok()) << m.err().message;
  const session_config sc = session_cfg(128, 0);
  auto base = mem_budget_overhead(*m, budget_cfg(sc, 0));
  ASSERT_TRUE(base.ok()) << base.err().message;
  EXPECT_EQ(base->kv_blocks, 4);  // 128 positions in blocks of 32
  const model_hparams& hp = m->hparams();
  EXPECT_EQ(base->kv_block_bytes, 2ull * hp.n_layer * 32 * hp.n_embd_kv() * sizeof(float));
  EXPECT_GE(base->kv, 4 * base->kv_block_bytes);
  EXPECT_GE(base->fixed, k_fixed_base + static_cast<uint64_t>(hp.n_vocab) * k_fixed_per_token);
  EXPECT_GT(base->weights_min, 0u);
  EXPECT_GE(base->weights_full, m->weight_bytes());

  const uint64_t budget = base->non_weights() + m->weight_bytes() / 2;
  auto split = mem_budget_plan(*m, budget_cfg(sc, budget));
  ASSERT_TRUE(split.ok()) << split.err().message;
  EXPECT_EQ(split->weights + split->non_weights(), budget);
  EXPECT_EQ(split->weights, m->weight_bytes() / 2);

  // More context: more KV; a larger batch: more activations; more threads: more attention scratch; f16 KV: half.
  session_config more = sc;
  more.n_ctx = 1024;
  auto big_ctx = mem_budget_overhead(*m, budget_cfg(more, 0));
  ASSERT_TRUE(big_ctx.ok());
  EXPECT_EQ(big_ctx->kv_blocks, 32);
  EXPECT_EQ(big_ctx->kv, 8 * base->kv);
  more = sc;
  more.n_batch = 128;
  auto big_batch = mem_budget_overhead(*m, budget_cfg(more, 0));
  ASSERT_TRUE(big_batch.ok());
  EXPECT_GT(big_batch->activations, base->activations);
  EXPECT_EQ(big_batch->fixed, base->fixed);
  more = sc;
  more.kv_type = tensor_type::f16;
  auto half = mem_budget_overhead(*m, budget_cfg(more, 0));
  ASSERT_TRUE(half.ok());
  EXPECT_EQ(half->kv_block_bytes * 2, base->kv_block_bytes);
  more = sc;
  more.n_ctx = 0;
  EXPECT_EQ(mem_budget_overhead(*m, budget_cfg(more, 0)).err().code, errc::invalid_argument);

  auto min = mem_budget_min(*m, budget_cfg(sc, 0));
  ASSERT_TRUE(min.ok());
  EXPECT_EQ(min.value(), base->non_weights() + base->weights_min);
  EXPECT_TRUE(mem_budget_plan(*m, budget_cfg(sc, min.value())).ok());
  auto below = mem_budget_plan(*m, budget_cfg(sc, min.value() - 1));
  ASSERT_FALSE(below.ok());
  EXPECT_EQ(below.err().code, errc::out_of_memory);
  EXPECT_NE(below.err().message.find(std::to_string(min.value()) + " bytes"), std::string::npos) << below.err().message;
}

TEST(mem_budget, process_memory_reads_proc_status) {
  const process_memory pm = process_memory_read();
  if (pm.rss == 0) GTEST_SKIP() << "no /proc/self/status";
  EXPECT_GE(pm.peak_rss, pm.rss);
  EXPECT_GT(pm.rss_anon + pm.rss_file, 0u);
  // Touching 16 MiB of fresh pages raises the resident set and the peak by about that much. A mapping of its own,
  // not the heap: memory earlier tests of this process freed may still be resident and would be reused.
  const size_t bytes = 16u << 20;
  void* p = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  ASSERT_NE(p, MAP_FAILED);
  std::memset(p, 1, bytes);
  const process_memory after = process_memory_read();
  EXPECT_GE(after.peak_rss, pm.rss + (12u << 20)) << static_cast<int>(static_cast<uint8_t*>(p)[bytes / 2]);
  munmap(p, bytes);
}

TEST(session_budget, every_budget_gives_the_unconstrained_tokens_and_checksum) {
  for (tensor_type t : {tensor_type::f32, tensor_type::q4_0}) {
    SCOPED_TRACE(tensor_type_name(t));
    test::model_file file(spec_of(t), std::string("mb_gen_") + tensor_type_name(t));
    auto m = model::load(file.path);
    ASSERT_TRUE(m.ok()) << m.err().message;
    const vocab voc = tiny_vocab(m->hparams().n_vocab);
    const auto prompt = test::prompt_for(9, m->hparams().n_vocab);
    const int32_t n_ctx = 96;

    auto ref_s = session::create(*m, voc, session_cfg(n_ctx, 0));
    ASSERT_TRUE(ref_s.ok()) << ref_s.err().message;
    EXPECT_EQ((*ref_s)->weights(), nullptr);
    EXPECT_EQ((*ref_s)->budget(), nullptr);
    const run_out ref = run_two_turns(**ref_s, prompt, 20);
    ASSERT_TRUE(ref.st.ok()) << ref.st.err().message;
    ASSERT_EQ(ref.tokens.size(), 40u);

    auto base = mem_budget_overhead(*m, budget_cfg(session_cfg(n_ctx, 0), 0));
    ASSERT_TRUE(base.ok()) << base.err().message;
    const uint64_t wb = m->weight_bytes();
    struct point { std::string name; uint64_t weights; };
    std::vector<point> points = {{"all resident", base->weights_full}, {"100%", wb}, {"75%", test::percent_of(wb, 75)},
                                 {"50%", test::percent_of(wb, 50)}, {"25%", test::percent_of(wb, 25)},
                                 {"minimum", base->weights_min}};
    for (const point& p : points) {
      SCOPED_TRACE(p.name);
      const uint64_t budget = base->non_weights() + std::max(p.weights, base->weights_min);
      auto s = session::create(*m, voc, session_cfg(n_ctx, budget));
      ASSERT_TRUE(s.ok()) << s.err().message;
      ASSERT_NE((*s)->weights(), nullptr);
      ASSERT_NE((*s)->budget(), nullptr);
      const mem_budget_split& split = *(*s)->budget();
      EXPECT_EQ(split.budget, budget);
      EXPECT_EQ((*s)->kv().config().max_blocks, split.kv_blocks);
      const run_out got = run_two_turns(**s, prompt, 20);
      ASSERT_TRUE(got.st.ok()) << got.st.err().message;
      EXPECT_EQ(got.tokens, ref.tokens);
      EXPECT_EQ(got.checksum, ref.checksum);
      const weight_store_stats st = (*s)->weights()->stats();
      SCOPED_TRACE((*s)->weights()->plan().describe());
      EXPECT_LE(st.peak_accounted, split.weights);
      EXPECT_GT(st.n_passes, 0u);
      if (p.name == "all resident") {
        EXPECT_EQ(st.streamed_per_pass, 0u);
        EXPECT_EQ(st.bytes_streamed, 0u);
      }
      if (p.name == "50%" || p.name == "25%" || p.name == "minimum") {
        EXPECT_GT(st.bytes_streamed, 0u);
        EXPECT_GT(st.streamed_per_pass, wb / 3);
      }
    }
  }
}

TEST(session_budget, too_small_a_budget_says_the_smallest_that_works) {
  test::model_file file(spec_of(tensor_type::q8_0), "mb_small");
  auto m = model::load(file.path);
  ASSERT_TRUE(m.ok()) << m.err().message;
  const vocab voc = tiny_vocab(m->hparams().n_vocab);
  auto min = mem_budget_min(*m, budget_cfg(session_cfg(64, 0), 0));
  ASSERT_TRUE(min.ok()) << min.err().message;

  auto below = session::create(*m, voc, session_cfg(64, min.value() - 1));
  ASSERT_FALSE(below.ok());
  EXPECT_EQ(below.err().code, errc::out_of_memory);
  const std::string& msg = below.err().message;
  EXPECT_NE(msg.find("too small"), std::string::npos) << msg;
  EXPECT_NE(msg.find("at least"), std::string::npos) << msg;
  EXPECT_NE(msg.find(std::to_string(min.value()) + " bytes"), std::string::npos) << msg;

  auto at = session::create(*m, voc, session_cfg(64, min.value()));
  ASSERT_TRUE(at.ok()) << at.err().message;

  // The same budget cannot hold the KV of a much longer context next to the store's minimum.
  auto long_ctx = session::create(*m, voc, session_cfg(4096, min.value()));
  ASSERT_FALSE(long_ctx.ok());
  EXPECT_EQ(long_ctx.err().code, errc::out_of_memory);
  EXPECT_NE(long_ctx.err().message.find("context of 4096"), std::string::npos) << long_ctx.err().message;

  // A model parsed from memory has no file to stream from.
  auto mem_model = test::make_tiny_model(spec_of(tensor_type::q8_0));
  ASSERT_TRUE(mem_model.ok());
  auto no_file = session::create(*mem_model, voc, session_cfg(64, 1ull << 30));
  ASSERT_FALSE(no_file.ok());
  EXPECT_EQ(no_file.err().code, errc::invalid_argument);
}

TEST(session_budget, long_context_to_the_limit_while_streaming_equals_unconstrained) {
  test::tiny_spec spec = spec_of(tensor_type::f32, 1024);
  spec.n_embd = 64;
  spec.n_ff = 128;
  spec.n_layer = 3;
  spec.n_vocab = 256;
  test::model_file file(spec, "mb_long");
  auto m = model::load(file.path);
  ASSERT_TRUE(m.ok()) << m.err().message;
  const vocab voc = tiny_vocab(m->hparams().n_vocab);
  const int32_t n_ctx = 1024;
  const auto prompt = test::prompt_for(12, m->hparams().n_vocab);
  sampling_params sp;
  sp.temperature = 0.9f;
  sp.seed = 77;
  auto run = [&](uint64_t budget, std::vector<int32_t>* tokens, generation_stats* st, weight_store_stats* ws) {
    session_config c = session_cfg(n_ctx, budget);
    c.n_batch = 8;  // the prompt in two forward calls
    auto s = session::create(*m, voc, c);
    ASSERT_TRUE(s.ok()) << s.err().message;
    auto r = (*s)->generate(prompt, sp, -1, [&](int32_t id) { tokens->push_back(id); return true; }, nullptr, true);
    ASSERT_TRUE(r.ok()) << r.err().message;
    *st = *r;
    if ((*s)->weights()) *ws = (*s)->weights()->stats();
  };
  std::vector<int32_t> ref_tokens, tokens;
  generation_stats ref_st, st;
  weight_store_stats ws;
  run(0, &ref_tokens, &ref_st, &ws);
  ASSERT_EQ(ref_st.reason, finish_reason::context_full);
  ASSERT_EQ(ref_tokens.size() + prompt.size(), static_cast<size_t>(n_ctx));

  auto base = mem_budget_overhead(*m, budget_cfg(session_cfg(n_ctx, 0), 0));
  ASSERT_TRUE(base.ok());
  const uint64_t weights = std::max(test::percent_of(m->weight_bytes(), 40), base->weights_min);
  run(base->non_weights() + weights, &tokens, &st, &ws);
  EXPECT_EQ(st.reason, finish_reason::context_full);
  EXPECT_EQ(tokens, ref_tokens);
  EXPECT_EQ(st.checksum, ref_st.checksum);
  EXPECT_GT(ws.streamed_per_pass, 0u);
  EXPECT_GE(ws.n_passes, static_cast<uint64_t>(n_ctx - 12));
  EXPECT_GE(ws.bytes_streamed, ws.streamed_per_pass * static_cast<uint64_t>(n_ctx - 12));
}

}  // namespace
}  // namespace lime
