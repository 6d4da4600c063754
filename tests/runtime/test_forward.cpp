// Forward pass: bitwise invariance under batching, prefill chunking, layer splits and thread counts; errors.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <memory>

#include "runtime/forward.h"
#include "tests/tiny_model.h"

namespace lime {
namespace {

struct runner {
  std::unique_ptr<thread_pool> pool;
  std::unique_ptr<kv_cache> kv;
  std::unique_ptr<forward_pass> fwd;
  runner(const model& m, layer_range r, int threads, tensor_type kv_type = tensor_type::f32, int32_t max_blocks = 64) {
    pool = std::make_unique<thread_pool>(threads);
    kv_cache_config c;
    c.n_layer = r.hi - r.lo;
    c.row_elems = m.hparams().n_embd_kv();
    c.type = kv_type;
    c.block_size = 16;
    c.max_blocks = max_blocks;
    kv = std::make_unique<kv_cache>(std::move(kv_cache::create(c).value()));
    fwd = std::make_unique<forward_pass>(m, r, *kv, *pool);
  }
};

std::vector<int32_t> tokens_for(int32_t seed, int n, int32_t n_vocab) {
  std::vector<int32_t> t;
  for (int i = 0; i < n; ++i) t.push_back(static_cast<int32_t>((seed * 31 + i * 17 + 5) % n_vocab));
  return t;
}

bool same_bits(const float* a, const float* b, size_t n) { return std::memcmp(a, b, n * sizeof(float)) == 0; }

// Logits of every position of one sequence, evaluated in chunks of `chunk` tokens.
std::vector<float> logits_all(const model& m, const std::vector<int32_t>& toks, size_t chunk, int threads) {
  runner r(m, {0, m.hparams().n_layer}, threads);
  std::vector<float> all;
  micro_batch b;
  forward_output out;
  for (size_t s = 0; s < toks.size(); s += chunk) {
    b.clear();
    for (size_t i = s; i < std::min(toks.size(), s + chunk); ++i) b.add(toks[i], static_cast<int32_t>(i), 0, true);
    EXPECT_TRUE(r.fwd->run(b, out).ok());
    all.insert(all.end(), out.logits.begin(), out.logits.end());
  }
  return all;
}

TEST(forward, prefill_at_once_equals_token_by_token_bitwise) {
  auto m = test::make_tiny_model({});
  ASSERT_TRUE(m.ok()) << m.err().message;
  auto toks = tokens_for(3, 40, m->hparams().n_vocab);
  auto at_once = logits_all(*m, toks, 40, 1);
  auto one_by_one = logits_all(*m, toks, 1, 1);
  auto chunks7 = logits_all(*m, toks, 7, 2);
  ASSERT_EQ(at_once.size(), toks.size() * static_cast<size_t>(m->hparams().n_vocab));
  EXPECT_TRUE(same_bits(at_once.data(), one_by_one.data(), at_once.size()));
  EXPECT_TRUE(same_bits(at_once.data(), chunks7.data(), at_once.size()));
  for (float x : at_once) ASSERT_TRUE(std::isfinite(x));
}

// Attention takes a batch's runs of consecutive tokens in one kernel call; runs that straddle an attention chunk
// (256 positions) or are cut by another sequence's tokens must still give every token its one-by-one bits.
TEST(forward, token_runs_across_attention_chunks_equal_token_by_token) {
  test::tiny_spec spec;
  spec.n_ctx = 320;
  spec.n_head = 4;
  spec.n_head_kv = 2;
  auto m = test::make_tiny_model(spec);
  ASSERT_TRUE(m.ok()) << m.err().message;
  const int32_t nv = m->hparams().n_vocab;
  auto toks = tokens_for(7, 300, nv);
  auto one_by_one = logits_all(*m, toks, 1, 1);
  auto split = logits_all(*m, toks, 250, 2);  // the second batch's first run is positions 250..265
  ASSERT_EQ(split.size(), one_by_one.size());
  EXPECT_TRUE(same_bits(split.data(), one_by_one.data(), split.size()));
  // One batch: sequence 0 positions 0..19, sequence 1 positions 0..4, sequence 0 positions 20..29.
  auto other = tokens_for(8, 5, nv);
  runner r(*m, {0, m->hparams().n_layer}, 2);
  micro_batch b;
  for (int32_t i = 0; i < 20; ++i) b.add(toks[static_cast<size_t>(i)], i, 0, true);
  for (int32_t i = 0; i < 5; ++i) b.add(other[static_cast<size_t>(i)], i, 1, true);
  for (int32_t i = 20; i < 30; ++i) b.add(toks[static_cast<size_t>(i)], i, 0, true);
  forward_output out;
  ASSERT_TRUE(r.fwd->run(b, out).ok());
  auto other_alone = logits_all(*m, other, 1, 1);
  const size_t row = static_cast<size_t>(nv);
  EXPECT_TRUE(same_bits(out.logits.data(), one_by_one.data(), 20 * row));
  EXPECT_TRUE(same_bits(out.logits.data() + 20 * row, other_alone.data(), 5 * row));
  EXPECT_TRUE(same_bits(out.logits.data() + 25 * row, one_by_one.data() + 20 * row, 10 * row));
}

TEST(forward, thread_count_does_not_change_bits) {
  test::tiny_spec spec;  // big enough that matmuls and attention are split across the pool's threads
  spec.n_embd = 128;
  spec.n_ff = 384;
  spec.n_head = 8;
  spec.n_head_kv = 2;
  auto m = test::make_tiny_model(spec);
  ASSERT_TRUE(m.ok());
  auto toks = tokens_for(5, 33, m->hparams().n_vocab);
  auto t1 = logits_all(*m, toks, 33, 1);
  auto t2 = logits_all(*m, toks, 33, 2);
  auto t3 = logits_all(*m, toks, 33, 3);
  EXPECT_TRUE(same_bits(t1.data(), t2.data(), t1.size()));
  EXPECT_TRUE(same_bits(t1.data(), t3.data(), t1.size()));
}

// Shapes that reach the large lane-path row blocks (activations over 1 MiB per column block: 272 tokens x K 1024 at
// ffn_down; on 1 thread its 256 rows are a full 192-row block and a cut one) and decode attention on the pool
// (2 threads, positions from 32 on): a 272-token prefill on 1 and 2 threads and token by token on 2 threads equal
// token by token on 1 thread, bit for bit.
TEST(forward, large_batches_and_decode_on_the_pool_equal_one_thread_token_by_token) {
  for (tensor_type t : {tensor_type::f32, tensor_type::q4_k}) {
    test::tiny_spec spec;
    spec.n_embd = 256;
    spec.n_ff = 1024;
    spec.n_layer = 2;
    spec.n_head = 8;
    spec.n_head_kv = 2;
    spec.n_ctx = 512;
    spec.type = t;
    auto m = test::make_tiny_model(spec);
    ASSERT_TRUE(m.ok()) << m.err().message;
    auto toks = tokens_for(9, 272, m->hparams().n_vocab);
    auto reference = logits_all(*m, toks, 1, 1);
    auto prefill1 = logits_all(*m, toks, 272, 1);
    auto prefill2 = logits_all(*m, toks, 272, 2);
    auto decode = logits_all(*m, toks, 1, 2);
    ASSERT_EQ(prefill1.size(), reference.size());
    EXPECT_TRUE(same_bits(reference.data(), prefill1.data(), reference.size())) << tensor_type_name(t);
    EXPECT_TRUE(same_bits(reference.data(), prefill2.data(), reference.size())) << tensor_type_name(t);
    EXPECT_TRUE(same_bits(reference.data(), decode.data(), reference.size())) << tensor_type_name(t);
  }
}

TEST(forward, sequences_batched_together_equal_each_alone) {
  auto m = test::make_tiny_model({});
  ASSERT_TRUE(m.ok());
  const int32_t nv = m->hparams().n_vocab;
  std::vector<std::vector<int32_t>> seqs = {tokens_for(1, 9, nv), tokens_for(2, 17, nv), tokens_for(3, 4, nv)};
  std::vector<std::vector<float>> alone;
  for (const auto& s : seqs) alone.push_back(logits_all(*m, s, s.size(), 1));
  // Interleave: one step = every sequence's next token (continuous batching), different seq ids.
  runner r(*m, {0, m->hparams().n_layer}, 2);
  std::vector<std::vector<float>> together(seqs.size());
  micro_batch b;
  forward_output out;
  for (size_t step = 0; step < 17; ++step) {
    b.clear();
    for (size_t s = 0; s < seqs.size(); ++s)
      if (step < seqs[s].size()) b.add(seqs[s][step], static_cast<int32_t>(step), static_cast<int32_t>(10 + s), true);
    ASSERT_TRUE(r.fwd->run(b, out).ok());
    for (size_t row = 0; row < out.logit_rows.size(); ++row) {
      const size_t s = static_cast<size_t>(b.seq[static_cast<size_t>(out.logit_rows[row])] - 10);
      together[s].insert(together[s].end(), out.logits.begin() + static_cast<std::ptrdiff_t>(row * nv),
                         out.logits.begin() + static_cast<std::ptrdiff_t>((row + 1) * nv));
    }
  }
  for (size_t s = 0; s < seqs.size(); ++s) {
    ASSERT_EQ(together[s].size(), alone[s].size());
    EXPECT_TRUE(same_bits(together[s].data(), alone[s].data(), alone[s].size())) << "sequence " << s;
  }
}

TEST(forward, layer_split_with_handoff_equals_full_model_bitwise) {
  test::tiny_spec spec;
  spec.n_layer = 4;
  auto m = test::make_tiny_model(spec);
  ASSERT_TRUE(m.ok());
  auto toks = tokens_for(7, 21, m->hparams().n_vocab);
  auto full = logits_all(*m, toks, 21, 1);
  for (int32_t cut = 1; cut < spec.n_layer; ++cut) {
    runner first(*m, {0, cut}, 1), second(*m, {cut, spec.n_layer}, 2);
    std::vector<float> split;
    micro_batch b;
    forward_output out;
    for (size_t s = 0; s < toks.size(); s += 5) {  // a different prefill chunking than the full run
      b.clear();
      for (size_t i = s; i < std::min(toks.size(), s + 5); ++i) b.add(toks[i], static_cast<int32_t>(i), 0, true);
      ASSERT_TRUE(first.fwd->run(b, out).ok());
      EXPECT_TRUE(out.logits.empty());
      ASSERT_EQ(out.hidden.size(), b.size() * static_cast<size_t>(m->hparams().n_embd));
      b.embd = out.hidden;
      b.tokens.clear();
      ASSERT_TRUE(second.fwd->run(b, out).ok());
      split.insert(split.end(), out.logits.begin(), out.logits.end());
    }
    ASSERT_EQ(split.size(), full.size());
    EXPECT_TRUE(same_bits(split.data(), full.data(), full.size())) << "cut at layer " << cut;
  }
}

class forward_types : public ::testing::TestWithParam<tensor_type> {};

TEST_P(forward_types, every_weight_type_runs_finite_and_batch_invariant) {
  test::tiny_spec spec;
  spec.type = GetParam();
  spec.n_embd = 256;  // K-quants need rows of 256
  spec.n_ff = 256;
  spec.n_head = 4;
  spec.n_head_kv = 4;
  spec.n_layer = 2;
  auto m = test::make_tiny_model(spec);
  ASSERT_TRUE(m.ok()) << m.err().message;
  auto toks = tokens_for(11, 12, m->hparams().n_vocab);
  auto a = logits_all(*m, toks, 12, 2);
  auto b = logits_all(*m, toks, 1, 1);
  auto c = logits_all(*m, toks, 5, 2);  // batches of 5, 5 and 2 tokens: the few-column kernels on AVX-512
  ASSERT_FALSE(a.empty());
  for (float x : a) ASSERT_TRUE(std::isfinite(x));
  EXPECT_TRUE(same_bits(a.data(), b.data(), a.size()));
  ASSERT_EQ(c.size(), b.size());
  EXPECT_TRUE(same_bits(c.data(), b.data(), b.size()));
}

INSTANTIATE_TEST_SUITE_P(all, forward_types,
                         ::testing::Values(tensor_type::f32, tensor_type::f16, tensor_type::bf16, tensor_type::q8_0,
                                           tensor_type::q4_0, tensor_type::q4_1, tensor_type::q5_0, tensor_type::q5_1,
                                           tensor_type::q4_k, tensor_type::q5_k, tensor_type::q6_k),
                         [](const ::testing::TestParamInfo<tensor_type>& i) { return std::string(tensor_type_name(i.param)); });

TEST(forward, tied_embeddings_use_token_embd_as_output) {
  test::tiny_spec spec;
  spec.tied = true;
  auto m = test::make_tiny_model(spec);
  ASSERT_TRUE(m.ok()) << m.err().message;
  EXPECT_TRUE(m->tied_embeddings());
  EXPECT_EQ(m->output().data, m->tok_embd().data);
  auto l = logits_all(*m, tokens_for(1, 3, spec.n_vocab), 3, 1);
  for (float x : l) ASSERT_TRUE(std::isfinite(x));
}

TEST(forward, f16_kv_is_close_to_f32_kv) {
  auto m = test::make_tiny_model({});
  ASSERT_TRUE(m.ok());
  auto toks = tokens_for(2, 20, m->hparams().n_vocab);
  runner r32(*m, {0, m->hparams().n_layer}, 1), r16(*m, {0, m->hparams().n_layer}, 1, tensor_type::f16);
  micro_batch b;
  for (size_t i = 0; i < toks.size(); ++i) b.add(toks[i], static_cast<int32_t>(i), 0, i + 1 == toks.size());
  forward_output o32, o16;
  ASSERT_TRUE(r32.fwd->run(b, o32).ok());
  ASSERT_TRUE(r16.fwd->run(b, o16).ok());
  double max_diff = 0, max_abs = 0;
  for (size_t i = 0; i < o32.logits.size(); ++i) {
    max_diff = std::max(max_diff, static_cast<double>(std::fabs(o32.logits[i] - o16.logits[i])));
    max_abs = std::max(max_abs, static_cast<double>(std::fabs(o32.logits[i])));
  }
  EXPECT_LT(max_diff, 1e-2 * std::max(1.0, max_abs));
}

TEST(forward, rejects_bad_tokens_and_full_kv_without_side_effects) {
  auto m = test::make_tiny_model({});
  ASSERT_TRUE(m.ok());
  runner r(*m, {0, m->hparams().n_layer}, 1, tensor_type::f32, /*max_blocks=*/2);  // 32 positions
  micro_batch b;
  forward_output out;
  b.add(m->hparams().n_vocab, 0, 0, true);
  auto bad = r.fwd->run(b, out);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.err().code, errc::invalid_argument);
  b.clear();
  b.add(1, -1, 0, true);
  EXPECT_EQ(r.fwd->run(b, out).err().code, errc::invalid_argument);
  b.clear();
  for (int i = 0; i < 20; ++i) b.add(1, i, 0, false);  // seq 0 takes 2 blocks
  b.add(2, 0, 1, true);                                 // seq 1 needs a third: the whole batch is refused
  auto full = r.fwd->run(b, out);
  ASSERT_FALSE(full.ok());
  EXPECT_EQ(full.err().code, errc::out_of_memory);
  EXPECT_EQ(r.kv->blocks_in_use(), 0);
}

}  // namespace
}  // namespace lime
