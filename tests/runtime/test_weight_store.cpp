// Weight store: greedy generation with streamed weights equals the all-resident run bit for bit, for every policy,
// budget (100/75/50/25% of the weights and the minimum), thread count and weight type, tied or not; budget changes
// mid-generation; pipeline stages with stores; read-ahead on the I/O threads; the buffered fallback.
#include <gtest/gtest.h>

#include <chrono>
#include <thread>

#include "runtime/stage.h"
#include "tests/runtime/weight_store_test_util.h"

namespace lime {
namespace {

using test::generate_greedy;
using test::same_bits;

test::tiny_spec spec_of(tensor_type t, bool tied) {
  test::tiny_spec s;
  s.n_vocab = 384;  // big enough that tensors, not 4 KiB alignment, dominate the buffers (f32)
  s.n_embd = 192;
  s.n_layer = 10;   // a ring of two layers fits in 25% of the weights
  s.n_head = 4;
  s.n_head_kv = 2;
  s.n_ff = 384;
  s.type = t;
  s.tied = tied;
  s.seed = 7 + static_cast<uint32_t>(t);
  return s;
}

struct type_case {
  tensor_type type;
  bool tied;
  const char* tag;
};

TEST(weight_store, every_policy_budget_and_thread_count_is_bitwise_identical) {
  const type_case cases[] = {{tensor_type::f32, false, "f32"}, {tensor_type::q4_0, false, "q4_0"},
                             {tensor_type::q8_0, true, "q8_0_tied"}};
  for (const type_case& tc : cases) {
    test::model_file file(spec_of(tc.type, tc.tied), tc.tag);
    auto m = model::load(file.path);
    ASSERT_TRUE(m.ok()) << m.err().message;
    const auto prompt = test::prompt_for(7, m->hparams().n_vocab);
    const test::generation ref = generate_greedy(*m, prompt, 6, 1);
    ASSERT_TRUE(ref.st.ok());
    const uint64_t wb = m->weight_bytes();
    for (weight_policy pol : {weight_policy::lime, weight_policy::whole_layer, weight_policy::synchronous}) {
      auto min = weight_plan_min_budget(*m, weight_store::plan_config(*m, test::store_cfg(0, pol)));
      ASSERT_TRUE(min.ok()) << min.err().message;
      for (uint64_t budget : {test::percent_of(wb, 100), test::percent_of(wb, 75), test::percent_of(wb, 50),
                              test::percent_of(wb, 25), min.value()}) {
        // Quantized tiny models are small next to 4 KiB alignment: 25% can be below their minimum. f32 runs all.
        if (budget < min.value() && tc.type != tensor_type::f32) continue;
        ASSERT_GE(budget, min.value()) << tc.tag << " " << weight_policy_name(pol);
        for (int threads : {1, 2}) {
          SCOPED_TRACE(std::string(tc.tag) + " " + weight_policy_name(pol) + " budget " + std::to_string(budget) +
                       " threads " + std::to_string(threads));
          auto store = weight_store::create(*m, file.path, test::store_cfg(budget, pol));
          ASSERT_TRUE(store.ok()) << store.err().message;
          const test::generation g = generate_greedy(*m, prompt, 6, threads, store->get());
          ASSERT_TRUE(g.st.ok()) << g.st.err().message;
          EXPECT_EQ(g.tokens, ref.tokens);
          EXPECT_TRUE(same_bits(g.logits, ref.logits));
          const weight_store_stats st = (*store)->stats();
          EXPECT_LE(st.accounted, budget);
          EXPECT_LE(st.peak_accounted, budget);
          EXPECT_EQ(st.accounted, (*store)->plan().total_alloc);
          if (budget < wb / 2) {
            EXPECT_GT(st.bytes_streamed, 0u) << "a half-sized budget must stream";
          }
          if (pol == weight_policy::synchronous && st.ring_depth > 0) {
            EXPECT_EQ(st.ring_depth, 1);
          }
        }
      }
    }
  }
}

// Logits for every row of a prefill (the streamed head then computes blocks of rows for many tokens at once).
std::vector<float> prefill_all_logits(const model& m, const std::vector<int32_t>& toks, int threads, weight_source* src) {
  const model_hparams& hp = m.hparams();
  thread_pool pool(threads);
  kv_cache_config c;
  c.n_layer = hp.n_layer;
  c.row_elems = hp.n_embd_kv();
  c.block_size = 16;
  c.max_blocks = 16;
  kv_cache kv = std::move(kv_cache::create(c).value());
  forward_pass fwd(m, {0, hp.n_layer}, kv, pool, src);
  micro_batch b;
  for (size_t i = 0; i < toks.size(); ++i) b.add(toks[i], static_cast<int32_t>(i), 0, true);
  forward_output out;
  EXPECT_TRUE(fwd.run(b, out).ok());
  return out.logits;
}

TEST(weight_store, prefill_logits_for_every_row_are_bitwise_identical) {
  for (bool tied : {false, true}) {
    test::model_file file(spec_of(tensor_type::q8_0, tied), tied ? "rows_t" : "rows_u");
    auto m = model::load(file.path);
    ASSERT_TRUE(m.ok());
    const auto toks = test::prompt_for(37, m->hparams().n_vocab);
    const std::vector<float> ref = prefill_all_logits(*m, toks, 2, nullptr);
    ASSERT_EQ(ref.size(), toks.size() * static_cast<size_t>(m->hparams().n_vocab));
    for (weight_policy pol : {weight_policy::lime, weight_policy::whole_layer, weight_policy::synchronous}) {
      // 45% streams the head under lime and sync; whole-layer needs its minimum (every layer streamed) for that.
      uint64_t budget = m->weight_bytes() * 45 / 100;
      if (pol == weight_policy::whole_layer) budget = weight_plan_min_budget(*m, weight_store::plan_config(*m, test::store_cfg(0, pol))).value();
      auto store = weight_store::create(*m, file.path, test::store_cfg(budget, pol));
      ASSERT_TRUE(store.ok()) << store.err().message;
      ASSERT_GT((*store)->head_blocks(), 1) << "the head must be split into blocks for this test";
      EXPECT_TRUE(same_bits(prefill_all_logits(*m, toks, 2, store->get()), ref)) << weight_policy_name(pol) << " tied " << tied;
    }
  }
}

TEST(weight_store, all_resident_when_the_budget_allows) {
  test::model_file file(spec_of(tensor_type::q8_0, false), "resident");
  auto m = model::load(file.path);
  ASSERT_TRUE(m.ok());
  const uint64_t need = weight_plan_resident_budget(*m, weight_store::plan_config(*m, test::store_cfg(0, weight_policy::lime)));
  ASSERT_GE(need, m->weight_bytes());
  for (weight_policy pol : {weight_policy::lime, weight_policy::whole_layer, weight_policy::synchronous, weight_policy::resident}) {
    auto store = weight_store::create(*m, file.path, test::store_cfg(need, pol));
    ASSERT_TRUE(store.ok()) << store.err().message;
    const auto prompt = test::prompt_for(5, m->hparams().n_vocab);
    const test::generation g = generate_greedy(*m, prompt, 6, 2, store->get());
    ASSERT_TRUE(g.st.ok());
    EXPECT_TRUE(same_bits(g.logits, generate_greedy(*m, prompt, 6, 2).logits));
    const weight_store_stats st = (*store)->stats();
    EXPECT_EQ(st.ring_depth, 0);
    EXPECT_EQ(st.bytes_streamed, 0u);
    EXPECT_EQ(st.bytes_rows, 0u);
    EXPECT_EQ(st.resident_bytes, m->weight_bytes());
  }
  auto too_small = weight_store::create(*m, file.path, test::store_cfg(need - 1, weight_policy::resident));
  ASSERT_FALSE(too_small.ok());
  EXPECT_EQ(too_small.err().code, errc::out_of_memory);
}

TEST(weight_store, give_back_and_take_back_mid_generation_keep_bits) {
  test::model_file file(spec_of(tensor_type::f32, false), "resize");
  auto m = model::load(file.path);
  ASSERT_TRUE(m.ok());
  const auto prompt = test::prompt_for(6, m->hparams().n_vocab);
  const test::generation ref = generate_greedy(*m, prompt, 12, 2);
  const uint64_t wb = m->weight_bytes();
  auto min = weight_plan_min_budget(*m, weight_store::plan_config(*m, test::store_cfg(0, weight_policy::lime)));
  ASSERT_TRUE(min.ok());
  auto store = weight_store::create(*m, file.path, test::store_cfg(test::percent_of(wb, 90), weight_policy::lime));
  ASSERT_TRUE(store.ok()) << store.err().message;
  weight_store& s = **store;
  std::vector<uint64_t> resident;  // resident bytes seen after each change
  const test::generation g = generate_greedy(*m, prompt, 12, 2, &s, [&](int step) {
    const weight_store_stats st = s.stats();
    EXPECT_LE(st.accounted, st.budget);
    EXPECT_LE(st.peak_accounted, test::percent_of(wb, 90));
    if (step == 2 || step == 5 || step == 8 || step == 10) resident.push_back(st.resident_bytes);
    if (step == 2) {  // pressure: give back half of the weights' worth
      auto nb = s.give_back(test::percent_of(wb, 50));
      ASSERT_TRUE(nb.ok()) << nb.err().message;
      EXPECT_TRUE(s.stats().resize_pending);
    } else if (step == 5) {  // more pressure: down to the minimum; one byte more is refused and changes nothing
      const uint64_t cur = s.stats().budget;
      auto bad = s.give_back(cur - min.value() + 1);
      ASSERT_FALSE(bad.ok());
      EXPECT_EQ(bad.err().code, errc::out_of_memory);
      EXPECT_FALSE(s.stats().resize_pending);
      ASSERT_TRUE(s.give_back(cur - min.value()).ok());
    } else if (step == 8) {  // pressure gone
      ASSERT_TRUE(s.take_back(test::percent_of(wb, 90) - min.value()).ok());
    }
  });
  ASSERT_TRUE(g.st.ok()) << g.st.err().message;
  EXPECT_EQ(g.tokens, ref.tokens);
  EXPECT_TRUE(same_bits(g.logits, ref.logits));
  const weight_store_stats st = s.stats();
  EXPECT_EQ(st.n_resizes, 3u);
  EXPECT_EQ(st.budget, test::percent_of(wb, 90));
  ASSERT_EQ(resident.size(), 4u);
  EXPECT_GT(resident[0], resident[1]);  // gave back
  EXPECT_GT(resident[1], resident[2]);  // gave back to the minimum
  EXPECT_LT(resident[2], resident[3]);  // took back
  EXPECT_LE(st.peak_accounted, test::percent_of(wb, 90));
}

TEST(weight_store, stages_with_their_own_stores_equal_one_process) {
  test::model_file file(spec_of(tensor_type::q4_0, false), "stages");
  auto m = model::load(file.path);
  ASSERT_TRUE(m.ok());
  vocab voc;
  for (int32_t i = 0; i < m->hparams().n_vocab; ++i) voc.tokens.push_back("t" + std::to_string(i));
  const auto prompt = test::prompt_for(5, m->hparams().n_vocab);
  const test::generation ref = generate_greedy(*m, prompt, 8, 1);
  // Two stages [0, 4) and [4, 10), each streaming at about half of its share.
  std::vector<std::unique_ptr<weight_store>> stores;
  std::vector<std::unique_ptr<pipeline_stage>> stages;
  for (layer_range r : {layer_range{0, 4}, layer_range{4, 10}}) {
    weight_store_config c = test::store_cfg(stage_weight_bytes(*m, r) / 2, weight_policy::lime);
    c.range = r;
    auto min = weight_plan_min_budget(*m, weight_store::plan_config(*m, c));
    ASSERT_TRUE(min.ok());
    c.budget = std::max(c.budget, min.value());
    auto s = weight_store::create(*m, file.path, c);
    ASSERT_TRUE(s.ok()) << s.err().message;
    stage_config sc;
    sc.range = r;
    sc.n_threads = 2;
    sc.kv_block_size = 16;
    sc.kv_max_blocks = 16;
    sc.weights = s->get();
    auto st = pipeline_stage::create(*m, voc, sc);
    ASSERT_TRUE(st.ok()) << st.err().message;
    stores.push_back(std::move(s.value()));
    stages.push_back(std::move(st.value()));
  }
  std::vector<int32_t> tokens = prompt;
  micro_batch b;
  for (size_t i = 0; i < prompt.size(); ++i) b.add(prompt[i], static_cast<int32_t>(i), 0, i + 1 == prompt.size());
  for (int step = 0; step < 8; ++step) {
    std::vector<float> hidden;
    std::vector<sampled_row> sampled;
    ASSERT_TRUE(stages[0]->run(b, {}, &hidden, nullptr).ok());
    b.embd = hidden;
    row_sampling rs;
    rs.params.temperature = 0.f;
    rs.history = tokens;
    auto r = stages[1]->run(b, {rs}, nullptr, &sampled);
    ASSERT_TRUE(r.ok()) << r.err().message;
    ASSERT_EQ(sampled.size(), 1u);
    tokens.push_back(sampled[0].token);
    b.clear();
    b.add(tokens.back(), static_cast<int32_t>(tokens.size() - 1), 0, true);
  }
  EXPECT_EQ(tokens, std::vector<int32_t>(ref.tokens.begin(), ref.tokens.begin() + static_cast<std::ptrdiff_t>(tokens.size())));
  for (const auto& s : stores) EXPECT_GT(s->stats().bytes_streamed, 0u);
  // A store for another range is refused.
  stage_config bad;
  bad.range = {0, 4};
  bad.kv_max_blocks = 4;
  bad.weights = stores[1].get();
  EXPECT_FALSE(pipeline_stage::create(*m, voc, bad).ok());
}

TEST(weight_store, reads_ahead_on_io_threads_and_sync_does_not) {
  test::model_file file(spec_of(tensor_type::f32, false), "ahead");
  auto m = model::load(file.path);
  ASSERT_TRUE(m.ok());
  const uint64_t wb = m->weight_bytes();
  for (weight_policy pol : {weight_policy::lime, weight_policy::synchronous}) {
    weight_store_config c = test::store_cfg(test::percent_of(wb, 60), pol);
    c.ring_depth = pol == weight_policy::lime ? 2 : 0;
    auto store = weight_store::create(*m, file.path, c);
    ASSERT_TRUE(store.ok()) << store.err().message;
    weight_store& s = **store;
    ASSERT_TRUE(s.plan().units[0].streamed() && s.plan().units[1].streamed());
    ASSERT_TRUE(s.begin_pass().ok());
    auto w0 = s.acquire(0);
    ASSERT_TRUE(w0.ok());
    // Reads are queued when a slot frees up, not when the layer is needed: sync has read layer 0 only, lime has
    // also queued the next layers, which then arrive with nothing else called.
    const uint64_t first = s.plan().units[0].stream_alloc;
    if (pol == weight_policy::synchronous) {
      EXPECT_EQ(s.stats().bytes_streamed, first);
      EXPECT_FALSE(s.ready(1));
    } else {
      EXPECT_GT(s.stats().bytes_streamed, first);
      const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
      while (!s.ready(1) && std::chrono::steady_clock::now() < deadline) std::this_thread::yield();
      EXPECT_TRUE(s.ready(1));
    }
    s.release(0);
    // An out-of-order acquire (layer 2 before 1) restarts the sequence and still returns the right bytes.
    auto w2 = s.acquire(2);
    ASSERT_TRUE(w2.ok()) << w2.err().message;
    const layer_weights& ref = m->layer(2);
    EXPECT_EQ(std::memcmp((*w2)->w_down.data, ref.w_down.data, ref.w_down.n_bytes), 0);
    EXPECT_EQ(std::memcmp((*w2)->wq.data, ref.wq.data, ref.wq.n_bytes), 0);
    s.release(2);
  }
}

TEST(weight_store, buffered_fallback_is_reported_and_bitwise_identical) {
  test::model_file file(spec_of(tensor_type::q8_0, false), "fallback");
  auto m = model::load(file.path);
  ASSERT_TRUE(m.ok());
  weight_store_config c = test::store_cfg(m->weight_bytes() / 2, weight_policy::lime);
  c.direct_io = false;
  auto store = weight_store::create(*m, file.path, c);
  ASSERT_TRUE(store.ok()) << store.err().message;
  const auto prompt = test::prompt_for(4, m->hparams().n_vocab);
  const test::generation g = generate_greedy(*m, prompt, 6, 2, store->get());
  ASSERT_TRUE(g.st.ok());
  EXPECT_TRUE(same_bits(g.logits, generate_greedy(*m, prompt, 6, 2).logits));
  const weight_store_stats st = (*store)->stats();
  EXPECT_EQ(st.mode, io_mode::buffered_dontneed);
  EXPECT_FALSE(st.mode_note.empty());
  EXPECT_GT(st.bytes_streamed, 0u);
}

}  // namespace
}  // namespace lime
