// Where cuda_forward's weights live, and that it never changes a bit: resident, streamed through a ring of device
// slots under a small device budget (depth 2 and 1, head in blocks), read in place on the unified path, copied from a
// host weight store; and the clear error when the device budget cannot hold the pass. Skips without a device.
#include <gtest/gtest.h>

#include "runtime/session.h"
#include "runtime/weight_plan.h"
#include "runtime/weight_store.h"
#include "tests/cuda_runtime/cuda_runtime_test_util.h"

namespace lime {
namespace {

using test::bit_diff;
using test::engine;

// Prefill in chunks of 7 then 5 single-token steps: every row's logits.
std::vector<float> run_sequence(engine& e, int32_t n_vocab) {
  auto toks = test::tokens_for(11, 40, n_vocab);
  return test::logits_all(e, toks, 7);
}

uint64_t kv_bytes(const engine& e) {
  return static_cast<uint64_t>(e.kv->config().max_blocks) * ((e.kv->block_bytes() + 255) / 256 * 256);
}

// Device bytes an engine holds besides weights and KV (activations, inputs, the head's norm), from a resident
// engine's accounting before its first batch.
uint64_t non_weight_bytes(const engine& resident) {
  return resident.be->allocated() - resident.weight_stats()->resident_bytes;
}

TEST(cuda_weights, everything_resident_when_it_fits) {
  LIME_REQUIRE_CUDA();
  auto m = test::make_tiny_model(test::streaming_spec());
  ASSERT_TRUE(m.ok());
  engine gpu(*m, {0, m->hparams().n_layer}, test::cuda_opts());
  ASSERT_TRUE(gpu.ok()) << gpu.st.err().message;
  const cuda_weights_stats* ws = gpu.weight_stats();
  ASSERT_NE(ws, nullptr);
  EXPECT_EQ(ws->ring_depth, 0);
  EXPECT_EQ(ws->resident_units, ws->units);
  EXPECT_EQ(ws->units, m->hparams().n_layer + 1);  // the head is one unit when it fits
  EXPECT_GE(ws->resident_bytes, m->weight_bytes() - m->tok_embd().n_bytes);  // embeddings stay on the host
}

TEST(cuda_weights, streamed_under_a_small_budget_equals_resident) {
  LIME_REQUIRE_CUDA();
  for (tensor_type t : {tensor_type::f32, tensor_type::q8_0}) {
    auto m = test::make_tiny_model(test::streaming_spec(t));
    ASSERT_TRUE(m.ok());
    const int32_t n_layer = m->hparams().n_layer, n_vocab = m->hparams().n_vocab;
    engine cpu(*m, {0, n_layer}, test::cpu_opts());
    engine resident(*m, {0, n_layer}, test::cuda_opts());
    ASSERT_TRUE(resident.ok()) << resident.st.err().message;
    const uint64_t slot = cuda_weights::min_device_bytes(*m, {0, n_layer});
    const uint64_t base = non_weight_bytes(resident) + kv_bytes(resident);
    const std::vector<float> want = run_sequence(cpu, n_vocab);
    EXPECT_EQ(bit_diff(want, run_sequence(resident, n_vocab)), "");
    for (double slots : {3.5, 2.5, 1.5}) {  // depth 2 with one layer resident; depth 2; depth 1
      const uint64_t budget = base + static_cast<uint64_t>(slots * static_cast<double>(slot));
      engine streamed(*m, {0, n_layer}, test::cuda_opts(budget));
      ASSERT_TRUE(streamed.ok()) << streamed.st.err().message;
      const cuda_weights_stats* ws = streamed.weight_stats();
      EXPECT_GT(ws->ring_depth, 0) << ws->describe();
      EXPECT_LT(ws->resident_units, ws->units) << ws->describe();
      EXPECT_GT(ws->units, n_layer + 1) << "the head should be split into blocks: " << ws->describe();
      if (slots < 2) {
        EXPECT_EQ(ws->ring_depth, 1);
      }
      EXPECT_EQ(bit_diff(want, run_sequence(streamed, n_vocab)), "") << tensor_type_name(t) << " " << ws->describe();
      EXPECT_LE(streamed.be->peak(), budget);
    }
  }
}

TEST(cuda_weights, a_budget_too_small_is_a_clear_error) {
  LIME_REQUIRE_CUDA();
  auto m = test::make_tiny_model(test::streaming_spec());
  ASSERT_TRUE(m.ok());
  engine tiny(*m, {0, m->hparams().n_layer}, test::cuda_opts(1ull << 20));
  ASSERT_FALSE(tiny.ok());
  EXPECT_EQ(tiny.st.err().code, errc::out_of_memory);
  EXPECT_NE(tiny.st.err().message.find("device budget"), std::string::npos) << tiny.st.err().message;
  EXPECT_NE(tiny.st.err().message.find("need at least"), std::string::npos) << tiny.st.err().message;
  // The same through a session: the budget is checked when it is created, not at the first token.
  vocab voc;
  voc.tokens.resize(static_cast<size_t>(m->hparams().n_vocab));
  session_config sc;
  sc.n_ctx = 256;
  sc.backend = test::cuda_opts(1ull << 20);
  auto s = session::create(*m, voc, sc);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.err().code, errc::out_of_memory);
  // More than the device has is refused by the backend itself.
  auto huge = make_backend(test::cuda_opts(1ull << 60));
  ASSERT_FALSE(huge.ok());
  EXPECT_EQ(huge.err().code, errc::out_of_memory);
}

// The KV pool grows past the device budget: the batch fails with out_of_memory and the cache is unchanged.
TEST(cuda_weights, kv_growth_past_the_budget_fails_cleanly) {
  LIME_REQUIRE_CUDA();
  auto m = test::make_tiny_model({});
  ASSERT_TRUE(m.ok());
  const int32_t n_layer = m->hparams().n_layer;
  engine probe(*m, {0, n_layer}, test::cuda_opts(), nullptr, tensor_type::f32, 4);
  ASSERT_TRUE(probe.ok());
  // Room for the pass and 4 blocks, then the pool limit is raised past it (as a node's KV pressure would).
  const uint64_t budget = probe.be->allocated() + kv_bytes(probe);
  engine gpu(*m, {0, n_layer}, test::cuda_opts(budget), nullptr, tensor_type::f32, 4);
  ASSERT_TRUE(gpu.ok()) << gpu.st.err().message;
  ASSERT_TRUE(gpu.kv->set_max_blocks(40).ok());
  micro_batch b;
  forward_output out;
  for (int i = 0; i < 60; ++i) b.add(5, i, 0, i == 59);  // 4 blocks: fits
  ASSERT_TRUE(gpu.fwd->run(b, out).ok());
  b.clear();
  for (int i = 60; i < 200; ++i) b.add(5, i, 0, i == 199);  // 13 blocks: the device budget refuses
  auto r = gpu.fwd->run(b, out);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.err().code, errc::out_of_memory);
  EXPECT_EQ(gpu.kv->capacity(0), 64);
}

TEST(cuda_weights, unified_reads_registered_host_memory_in_place) {
  LIME_REQUIRE_CUDA();
  test::model_on_disk f(test::streaming_spec(tensor_type::f16), "unified");
  ASSERT_TRUE(f.m);
  const int32_t n_layer = f.m->hparams().n_layer, n_vocab = f.m->hparams().n_vocab;
  engine cpu(*f.m, {0, n_layer}, test::cpu_opts());
  const std::vector<float> want = run_sequence(cpu, n_vocab);
  engine resident(*f.m, {0, n_layer}, test::cuda_opts());
  ASSERT_TRUE(resident.ok()) << resident.st.err().message;
  engine uni(*f.m, {0, n_layer}, test::cuda_opts(0, true));
  ASSERT_TRUE(uni.ok()) << uni.st.err().message;
  ASSERT_TRUE(uni.be->unified());
  EXPECT_TRUE(uni.weight_stats()->in_place);
  // No device copy of the weights: the device holds the same as a resident engine minus its weights.
  EXPECT_LT(uni.be->allocated(), resident.be->allocated() - resident.weight_stats()->resident_bytes / 2);
  EXPECT_EQ(bit_diff(want, run_sequence(uni, n_vocab)), "");

  // Under a budget the store streams the weights from the file into registered memory: still the same bits.
  weight_store_config sc;
  sc.range = {0, n_layer};
  auto min = weight_plan_min_budget(*f.m, weight_store::plan_config(*f.m, sc));
  ASSERT_TRUE(min.ok());
  const uint64_t budget = uni.be->allocated() + kv_bytes(uni) + min.value() + (min.value() >> 2);
  ASSERT_LT(min.value() + (min.value() >> 2), f.m->weight_bytes());
  engine small(*f.m, {0, n_layer}, test::cuda_opts(budget, true));
  ASSERT_TRUE(small.ok()) << small.st.err().message;
  EXPECT_EQ(bit_diff(want, run_sequence(small, n_vocab)), "");
}

// A host weight store streaming from the file (a memory budget on the host) feeds the device through page-locked
// staging: same bits, with everything device-resident and with a device ring as well.
TEST(cuda_weights, copied_from_a_host_weight_store) {
  LIME_REQUIRE_CUDA();
  test::model_on_disk f(test::streaming_spec(tensor_type::q8_0), "source");
  ASSERT_TRUE(f.m);
  const int32_t n_layer = f.m->hparams().n_layer, n_vocab = f.m->hparams().n_vocab;
  engine cpu(*f.m, {0, n_layer}, test::cpu_opts());
  const std::vector<float> want = run_sequence(cpu, n_vocab);
  weight_store_config sc;
  sc.range = {0, n_layer};
  auto min = weight_plan_min_budget(*f.m, weight_store::plan_config(*f.m, sc));
  ASSERT_TRUE(min.ok());
  sc.budget = min.value() + (min.value() >> 1);
  ASSERT_LT(sc.budget, f.m->weight_bytes());  // the store streams
  for (uint64_t device_budget : {uint64_t{0}, uint64_t{1}}) {
    auto store = weight_store::create(*f.m, f.path, sc);
    ASSERT_TRUE(store.ok()) << store.err().message;
    uint64_t budget = 0;
    if (device_budget == 1) {  // small: the device streams too
      engine probe(*f.m, {0, n_layer}, test::cuda_opts(), store.value().get());
      ASSERT_TRUE(probe.ok()) << probe.st.err().message;
      budget = probe.be->allocated() - probe.weight_stats()->resident_bytes + kv_bytes(probe) +
               3 * cuda_weights::min_device_bytes(*f.m, {0, n_layer});
    }
    engine gpu(*f.m, {0, n_layer}, test::cuda_opts(budget), store.value().get());
    ASSERT_TRUE(gpu.ok()) << gpu.st.err().message;
    EXPECT_GT(gpu.weight_stats()->ring_depth, 0);
    EXPECT_EQ(bit_diff(want, run_sequence(gpu, n_vocab)), "") << gpu.weight_stats()->describe();
    EXPECT_GT(store.value()->stats().bytes_streamed, 0u);
  }
}

// session: --mem-budget on the host with --backend cuda (and unified: the store's buffers are registered).
TEST(cuda_weights, session_with_a_host_budget_on_the_device) {
  LIME_REQUIRE_CUDA();
  test::model_on_disk f(test::streaming_spec(tensor_type::f16), "session");
  ASSERT_TRUE(f.m);
  vocab voc;
  voc.tokens.resize(static_cast<size_t>(f.m->hparams().n_vocab));
  session_config base;
  base.n_ctx = 64;
  base.n_threads = 2;
  auto ref = session::create(*f.m, voc, base);
  ASSERT_TRUE(ref.ok());
  const std::vector<int32_t> prompt = test::tokens_for(2, 30, f.m->hparams().n_vocab);
  auto want = (*ref)->eval_logits(prompt);
  ASSERT_TRUE(want.ok());
  mem_budget_config bc;
  bc.n_ctx = 64;
  bc.n_threads = 2;
  auto min = mem_budget_min(*f.m, bc);
  ASSERT_TRUE(min.ok()) << min.err().message;
  for (bool unified : {false, true}) {
    session_config sc = base;
    sc.mem_budget = min.value() + (1u << 20);
    sc.backend = test::cuda_opts(0, unified);
    auto s = session::create(*f.m, voc, sc);
    ASSERT_TRUE(s.ok()) << s.err().message;
    ASSERT_NE((*s)->weights(), nullptr);
    auto got = (*s)->eval_logits(prompt);
    ASSERT_TRUE(got.ok()) << got.err().message;
    EXPECT_EQ(bit_diff(*want, *got), "") << (unified ? "unified" : "copied");
  }
}

}  // namespace
}  // namespace lime
