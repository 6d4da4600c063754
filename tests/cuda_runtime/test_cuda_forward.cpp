// cuda_forward against the CPU forward pass, bit for bit: every weight type, f16 KV, batch sizes 1/7/64, concurrent
// sequences in one batch, layer ranges that start or end inside the model, and the errors; --fast-prefill within
// its tolerance. Skips without a device.
#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <string>

#include "tests/cuda_runtime/cuda_runtime_test_util.h"

namespace lime {
namespace {

using test::bit_diff;
using test::engine;

test::tiny_spec spec_for(tensor_type t) {
  test::tiny_spec s;
  s.type = t;
  s.seed = 7;
  if (tensor_type_traits(t).block_elems == 256) {  // k-quants: rows of whole 256-element blocks
    s.n_embd = 256;
    s.n_ff = 512;
  }
  return s;
}

// Prefill of 40 tokens then 6 decode steps; every row's logits.
std::vector<float> prefill_and_decode(engine& e, int32_t n_vocab) {
  auto toks = test::tokens_for(3, 46, n_vocab);
  std::vector<float> all = test::logits_all(e, std::vector<int32_t>(toks.begin(), toks.begin() + 40), 40);
  micro_batch b;
  forward_output out;
  for (int i = 40; i < 46; ++i) {
    b.clear();
    b.add(toks[static_cast<size_t>(i)], i, 0, true);
    auto r = e.fwd->run(b, out);
    EXPECT_TRUE(r.ok()) << r.err().message;
    all.insert(all.end(), out.logits.begin(), out.logits.end());
  }
  return all;
}

class cuda_forward_types : public ::testing::TestWithParam<tensor_type> {};

TEST_P(cuda_forward_types, logits_equal_the_cpu_pass_bitwise) {
  LIME_REQUIRE_CUDA();
  auto m = test::make_tiny_model(spec_for(GetParam()));
  ASSERT_TRUE(m.ok()) << m.err().message;
  const int32_t n_layer = m->hparams().n_layer, n_vocab = m->hparams().n_vocab;
  for (tensor_type kv_type : {tensor_type::f32, tensor_type::f16}) {
    engine cpu(*m, {0, n_layer}, test::cpu_opts(), nullptr, kv_type);
    engine gpu(*m, {0, n_layer}, test::cuda_opts(), nullptr, kv_type);
    ASSERT_TRUE(cpu.ok() && gpu.ok()) << gpu.st.err().message;
    const std::vector<float> want = prefill_and_decode(cpu, n_vocab);
    const std::vector<float> got = prefill_and_decode(gpu, n_vocab);
    ASSERT_EQ(want.size(), 46u * static_cast<size_t>(n_vocab));
    EXPECT_EQ(bit_diff(want, got), "") << tensor_type_name(GetParam()) << " kv " << tensor_type_name(kv_type);
    EXPECT_GT(gpu.be->allocated(), 0u);
    EXPECT_LE(gpu.be->peak(), gpu.be->budget());
  }
}

INSTANTIATE_TEST_SUITE_P(types, cuda_forward_types,
                         ::testing::Values(tensor_type::f32, tensor_type::f16, tensor_type::q8_0, tensor_type::q4_k),
                         [](const auto& info) { return std::string(tensor_type_name(info.param)); });

TEST(cuda_forward, batch_of_1_7_64_gives_the_cpu_bits) {
  LIME_REQUIRE_CUDA();
  test::tiny_spec s;
  s.n_embd = 128;
  s.n_ff = 256;
  s.n_head = 8;
  auto m = test::make_tiny_model(s);
  ASSERT_TRUE(m.ok());
  const int32_t n_layer = m->hparams().n_layer;
  auto toks = test::tokens_for(5, 150, m->hparams().n_vocab);  // > 128 positions: several KV blocks per table
  engine cpu(*m, {0, n_layer}, test::cpu_opts());
  ASSERT_TRUE(cpu.ok());
  const std::vector<float> want = test::logits_all(cpu, toks, 150);
  for (size_t chunk : {size_t{1}, size_t{7}, size_t{64}}) {
    engine gpu(*m, {0, n_layer}, test::cuda_opts());
    ASSERT_TRUE(gpu.ok()) << gpu.st.err().message;
    EXPECT_EQ(bit_diff(want, test::logits_all(gpu, toks, chunk)), "") << "chunk " << chunk;
  }
}

// --fast-prefill: batches of k_fast_prefill_rows tokens or more go through cuBLAS in fp16. Below that (decode, small
// batches) every bit is still the CPU's; at or above it the logits are close to the CPU's but not equal (the opt-in
// gives up bitwise equality: the test makes sure the fast path really ran). Tolerance: relative L2 error of the
// whole logit block under 1e-2 (fp16 inputs carry ~5e-4 relative error per product).
TEST(cuda_forward, fast_prefill_is_close_and_small_batches_stay_bitwise) {
  LIME_REQUIRE_CUDA();
  auto m = test::make_tiny_model(spec_for(tensor_type::q8_0));
  ASSERT_TRUE(m.ok());
  const int32_t n_layer = m->hparams().n_layer;
  auto toks = test::tokens_for(9, 48, m->hparams().n_vocab);
  engine cpu(*m, {0, n_layer}, test::cpu_opts());
  ASSERT_TRUE(cpu.ok());
  const std::vector<float> want = test::logits_all(cpu, toks, 48);
  backend_options fast = test::cuda_opts();
  fast.fast_prefill = true;
  {
    engine gpu(*m, {0, n_layer}, fast);
    ASSERT_TRUE(gpu.ok()) << gpu.st.err().message;
    EXPECT_TRUE(gpu.be->fast_prefill());
    EXPECT_NE(gpu.be->describe().find("NOT bitwise"), std::string::npos) << gpu.be->describe();
    EXPECT_EQ(bit_diff(want, test::logits_all(gpu, toks, k_fast_prefill_rows - 1)), "") << "small batches are canonical";
  }
  engine gpu(*m, {0, n_layer}, fast);
  ASSERT_TRUE(gpu.ok()) << gpu.st.err().message;
  const std::vector<float> got = test::logits_all(gpu, toks, 48);
  ASSERT_EQ(got.size(), want.size());
  double diff2 = 0, ref2 = 0;
  for (size_t i = 0; i < want.size(); ++i) {
    ASSERT_TRUE(std::isfinite(got[i])) << "at " << i;
    diff2 += (static_cast<double>(got[i]) - want[i]) * (static_cast<double>(got[i]) - want[i]);
    ref2 += static_cast<double>(want[i]) * want[i];
  }
  const double rel = std::sqrt(diff2 / ref2);
  RecordProperty("fast_prefill_rel_l2", std::to_string(rel));
  EXPECT_GT(rel, 0.0) << "the fast path did not run";
  EXPECT_LT(rel, 1e-2);
}

// Three sequences advance together, one row each per batch after a joint prefill, and only some rows want logits:
// each sequence's logits are those of the CPU running it alone.
TEST(cuda_forward, concurrent_sequences_match_each_run_alone) {
  LIME_REQUIRE_CUDA();
  auto m = test::make_tiny_model(spec_for(tensor_type::q8_0));
  ASSERT_TRUE(m.ok());
  const int32_t n_layer = m->hparams().n_layer, n_vocab = m->hparams().n_vocab;
  const std::vector<std::vector<int32_t>> seqs = {test::tokens_for(1, 20, n_vocab), test::tokens_for(2, 13, n_vocab),
                                                   test::tokens_for(3, 30, n_vocab)};
  std::map<std::pair<int32_t, int32_t>, std::vector<float>> want;  // (seq, pos) -> logits
  for (size_t q = 0; q < seqs.size(); ++q) {
    engine cpu(*m, {0, n_layer}, test::cpu_opts());
    const std::vector<float> all = test::logits_all(cpu, seqs[q], 1);
    for (size_t p = 0; p < seqs[q].size(); ++p)
      want[{static_cast<int32_t>(q), static_cast<int32_t>(p)}] =
          std::vector<float>(all.begin() + static_cast<std::ptrdiff_t>(p * n_vocab), all.begin() + static_cast<std::ptrdiff_t>((p + 1) * n_vocab));
  }
  engine gpu(*m, {0, n_layer}, test::cuda_opts(), nullptr, tensor_type::f32, 64, 8);  // batches grow past 8 rows
  ASSERT_TRUE(gpu.ok()) << gpu.st.err().message;
  std::vector<size_t> next = {10, 5, 0};  // prefilled: seq 0 [0, 10), seq 1 [0, 5) in the first batch
  micro_batch b;
  forward_output out;
  for (int32_t p = 0; p < 10; ++p) b.add(seqs[0][static_cast<size_t>(p)], p, 0, p % 3 == 0);
  for (int32_t p = 0; p < 5; ++p) b.add(seqs[1][static_cast<size_t>(p)], p, 1, true);
  size_t checked = 0;
  for (int step = 0; !b.pos.empty(); ++step) {
    auto r = gpu.fwd->run(b, out);
    ASSERT_TRUE(r.ok()) << r.err().message;
    ASSERT_EQ(out.logit_rows.size() * static_cast<size_t>(n_vocab), out.logits.size());
    for (size_t i = 0; i < out.logit_rows.size(); ++i) {
      const size_t row = static_cast<size_t>(out.logit_rows[i]);
      std::vector<float> got(out.logits.begin() + static_cast<std::ptrdiff_t>(i * n_vocab),
                             out.logits.begin() + static_cast<std::ptrdiff_t>((i + 1) * n_vocab));
      EXPECT_EQ(bit_diff(want[{b.seq[row], b.pos[row]}], got), "") << "seq " << b.seq[row] << " pos " << b.pos[row];
      ++checked;
    }
    b.clear();
    for (size_t q = 0; q < seqs.size(); ++q) {
      if (next[q] >= seqs[q].size()) continue;
      b.add(seqs[q][next[q]], static_cast<int32_t>(next[q]), static_cast<int32_t>(q), (step + static_cast<int>(q)) % 2 == 0);
      ++next[q];
    }
  }
  EXPECT_GT(checked, 30u);
}

// A pipeline split on the GPU ([0, 2) then [2, n)) hands activations across and ends with the CPU's logits; the
// activations after the first range are the CPU's too.
TEST(cuda_forward, layer_ranges_pass_activations_bitwise) {
  LIME_REQUIRE_CUDA();
  test::tiny_spec s = spec_for(tensor_type::f16);
  s.n_layer = 4;
  auto m = test::make_tiny_model(s);
  ASSERT_TRUE(m.ok());
  const int32_t n_vocab = m->hparams().n_vocab;
  engine cpu_a(*m, {0, 2}, test::cpu_opts()), cpu_b(*m, {2, 4}, test::cpu_opts());
  engine gpu_a(*m, {0, 2}, test::cuda_opts()), gpu_b(*m, {2, 4}, test::cuda_opts());
  ASSERT_TRUE(gpu_a.ok() && gpu_b.ok()) << gpu_a.st.err().message;
  auto toks = test::tokens_for(9, 24, n_vocab);
  micro_batch b;
  for (size_t chunk_start : {size_t{0}, size_t{17}}) {
    b.clear();
    for (size_t i = chunk_start; i < (chunk_start == 0 ? 17 : 24); ++i) b.add(toks[i], static_cast<int32_t>(i), 0, true);
    forward_output ca, ga, cb, gb;
    ASSERT_TRUE(cpu_a.fwd->run(b, ca).ok());
    auto r = gpu_a.fwd->run(b, ga);
    ASSERT_TRUE(r.ok()) << r.err().message;
    EXPECT_TRUE(ga.logits.empty());
    EXPECT_EQ(bit_diff(ca.hidden, ga.hidden), "");
    micro_batch b2 = b;
    b2.tokens.clear();
    b2.embd = ga.hidden;
    ASSERT_TRUE(cpu_b.fwd->run(b2, cb).ok());
    r = gpu_b.fwd->run(b2, gb);
    ASSERT_TRUE(r.ok()) << r.err().message;
    EXPECT_TRUE(gb.hidden.empty());
    EXPECT_EQ(cb.logit_rows, gb.logit_rows);
    EXPECT_EQ(bit_diff(cb.logits, gb.logits), "");
  }
}

TEST(cuda_forward, errors_leave_the_cache_as_it_was) {
  LIME_REQUIRE_CUDA();
  auto m = test::make_tiny_model({});
  ASSERT_TRUE(m.ok());
  const int32_t n_layer = m->hparams().n_layer;
  engine gpu(*m, {0, n_layer}, test::cuda_opts(), nullptr, tensor_type::f32, 2);  // 2 blocks of 16 positions
  ASSERT_TRUE(gpu.ok()) << gpu.st.err().message;
  micro_batch b;
  forward_output out;
  b.add(m->hparams().n_vocab, 0, 0, true);  // out of the vocabulary
  auto r = gpu.fwd->run(b, out);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.err().code, errc::invalid_argument);
  EXPECT_EQ(gpu.kv->blocks_in_use(), 0);
  b.clear();
  for (int i = 0; i < 40; ++i) b.add(3, i, 0, i == 39);  // 3 blocks needed
  r = gpu.fwd->run(b, out);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.err().code, errc::out_of_memory);
  EXPECT_EQ(gpu.kv->blocks_in_use(), 0);
  // Still usable afterwards, and right.
  engine cpu(*m, {0, n_layer}, test::cpu_opts());
  auto toks = test::tokens_for(4, 20, m->hparams().n_vocab);
  EXPECT_EQ(bit_diff(test::logits_all(cpu, toks, 20), test::logits_all(gpu, toks, 20)), "");
}

TEST(cuda_forward, the_kv_cache_must_be_on_the_device) {
  LIME_REQUIRE_CUDA();
  auto m = test::make_tiny_model({});
  ASSERT_TRUE(m.ok());
  auto be = make_backend(test::cuda_opts());
  ASSERT_TRUE(be.ok()) << be.err().message;
  kv_cache_config c;
  c.n_layer = m->hparams().n_layer;
  c.row_elems = m->hparams().n_embd_kv();
  c.max_blocks = 4;  // no allocator: host memory
  auto kv = kv_cache::create(c);
  thread_pool pool(1);
  forward_engine_args a;
  a.m = &*m;
  a.range = {0, m->hparams().n_layer};
  a.kv = &kv.value();
  a.pool = &pool;
  auto f = be.value()->make_forward(a);
  ASSERT_FALSE(f.ok());
  EXPECT_EQ(f.err().code, errc::invalid_argument);
}

}  // namespace
}  // namespace lime
