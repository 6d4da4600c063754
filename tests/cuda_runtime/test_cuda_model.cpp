// stories260K on the GPU: the published greedy goldens through session with the cuda backend, the logits-checksum
// chain equal to the CPU's (every step's logits bitwise), and pipeline stages on the device (one backend shared by
// the stages, as on a node) sampling exactly what one CPU stage samples for concurrent sequences. Skips without a
// device or without the models.
#include <gtest/gtest.h>

#include <memory>

#include "runtime/session.h"
#include "runtime/stage.h"
#include "runtime/tokenizer.h"
#include "tests/cuda_runtime/cuda_runtime_test_util.h"
#include "tests/golden.h"
#include "tests/stories.h"
#include "tests/test_models.h"

namespace lime {
namespace {

struct stories : test::stories_model {
  std::unique_ptr<session> make(const backend_options& o, int32_t n_batch = 512) {
    session_config c;
    c.backend = o;
    c.n_batch = n_batch;
    c.n_threads = 2;
    auto s = session::create(*m, tok->get_vocab(), c);
    EXPECT_TRUE(s.ok()) << s.err().message;
    return s.ok() ? std::move(*s) : nullptr;
  }
};

struct run_out {
  std::vector<int32_t> ids;
  generation_stats st;
};

run_out greedy_run(session& s, const std::vector<int32_t>& prompt, int n) {
  sampling_params sp;
  sp.temperature = 0.0f;
  run_out o;
  auto r = s.generate(prompt, sp, n, [&](int32_t id) { o.ids.push_back(id); return true; }, nullptr);
  EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.err().message);
  if (r.ok()) o.st = *r;
  return o;
}

TEST(cuda_model, stories_goldens_and_cpu_logits_chain) {
  LIME_REQUIRE_CUDA();
  LIME_REQUIRE_MODELS(dir);
  stories st;
  ASSERT_TRUE(st.load(dir));
  auto golden = test::readme_golden_blocks(dir);
  ASSERT_GE(golden.size(), 2u);
  auto gpu = st.make(test::cuda_opts());
  auto cpu = st.make(test::cpu_opts());
  ASSERT_TRUE(gpu && cpu);
  ASSERT_EQ(gpu->device().kind(), backend_kind::cuda);

  // From BOS alone: 256 tokens.
  const std::vector<int32_t> bos = {st.tok->get_vocab().bos};
  const run_out g = greedy_run(*gpu, bos, 256);
  const run_out c = greedy_run(*cpu, bos, 256);
  EXPECT_EQ(st.tok->decode(g.ids, false, true), golden[0]);
  EXPECT_EQ(g.ids, c.ids);
  EXPECT_EQ(g.st.checksum, c.st.checksum) << "some step's logits differ from the CPU's";

  // "Once upon a time": 64 tokens, prompt included in the golden text.
  gpu->reset();
  cpu->reset();
  auto prompt = st.tok->encode("Once upon a time", true, true);
  const run_out g2 = greedy_run(*gpu, prompt, 64);
  const run_out c2 = greedy_run(*cpu, prompt, 64);
  std::vector<int32_t> all(prompt.begin() + 1, prompt.end());
  all.insert(all.end(), g2.ids.begin(), g2.ids.end());
  EXPECT_EQ(st.tok->decode(all, false, true), golden[1]);
  EXPECT_EQ(g2.st.checksum, c2.st.checksum);
}

TEST(cuda_model, prompt_logits_bitwise_for_any_prefill_chunk_and_budget) {
  LIME_REQUIRE_CUDA();
  LIME_REQUIRE_MODELS(dir);
  stories st;
  ASSERT_TRUE(st.load(dir));
  auto prompt = st.tok->encode("The little dog ran to the park and saw a big tree with red apples.", true, true);
  auto cpu = st.make(test::cpu_opts());
  auto want = cpu->eval_logits(prompt);
  ASSERT_TRUE(want.ok());
  for (int32_t n_batch : {1, 7, 64}) {
    auto gpu = st.make(test::cuda_opts(), n_batch);
    ASSERT_TRUE(gpu);
    auto got = gpu->eval_logits(prompt);
    ASSERT_TRUE(got.ok()) << got.err().message;
    EXPECT_EQ(test::bit_diff(*want, *got), "") << "n_batch " << n_batch;
  }
  // Streamed: a device budget that holds the KV pool and activations but only about half the device weights.
  auto probe = st.make(test::cuda_opts());
  ASSERT_TRUE(probe);
  const uint64_t dev_weights = st.m->weight_bytes() - (st.m->tied_embeddings() ? 0 : st.m->tok_embd().n_bytes);
  const uint64_t kv_pool = static_cast<uint64_t>(probe->kv().config().max_blocks) * ((probe->kv().block_bytes() + 255) / 256 * 256);
  auto streamed = st.make(test::cuda_opts(probe->device().allocated() + kv_pool - dev_weights / 2));
  ASSERT_TRUE(streamed);
  auto got = streamed->eval_logits(prompt);
  ASSERT_TRUE(got.ok()) << got.err().message;
  EXPECT_EQ(test::bit_diff(*want, *got), "") << "streamed";
}

// Stages on one device backend (as lime-node shares its backend between its layer groups), cut at 2, with three
// sequences decoding together: the sampled tokens and checksums are those of one CPU stage.
TEST(cuda_model, device_stages_sample_like_one_cpu_stage) {
  LIME_REQUIRE_CUDA();
  LIME_REQUIRE_MODELS(dir);
  stories st;
  ASSERT_TRUE(st.load(dir));
  auto dev = make_backend(test::cuda_opts());
  ASSERT_TRUE(dev.ok()) << dev.err().message;
  const vocab& voc = st.tok->get_vocab();
  const int32_t n_layer = st.m->hparams().n_layer;
  auto make_chain = [&](bool gpu, std::vector<int32_t> ends) {
    std::vector<std::unique_ptr<pipeline_stage>> chain;
    int32_t lo = 0;
    for (int32_t hi : ends) {
      stage_config c;
      c.range = {lo, hi};
      c.n_threads = 2;
      c.kv_block_size = 16;
      c.kv_max_blocks = 64;
      if (gpu) c.device = dev.value();
      auto s = pipeline_stage::create(*st.m, voc, c);
      EXPECT_TRUE(s.ok()) << s.err().message;
      if (s.ok()) chain.push_back(std::move(s.value()));
      lo = hi;
    }
    return chain;
  };
  auto record = [&](std::vector<std::unique_ptr<pipeline_stage>> chain) {
    std::vector<std::vector<int32_t>> hist = {st.tok->encode("Once upon a time", true, true),
                                              st.tok->encode("The cat", true, true),
                                              st.tok->encode("Lily and Ben went to the park", true, true)};
    std::vector<uint64_t> sum(3, 0);
    std::vector<sampled_row> all;
    micro_batch b;
    std::vector<float> hidden;
    std::vector<sampled_row> out;
    for (int step = 0; step < 24; ++step) {
      b.clear();
      std::vector<row_sampling> rs;
      for (size_t s = 0; s < hist.size(); ++s) {
        const size_t from = step == 0 ? 0 : hist[s].size() - 1;
        for (size_t i = from; i < hist[s].size(); ++i)
          b.add(hist[s][i], static_cast<int32_t>(i), static_cast<int32_t>(s), i + 1 == hist[s].size());
        sampling_params p;
        p.temperature = s == 0 ? 0.0f : 0.8f;
        p.seed = 40 + s;
        rs.push_back({p, sum[s], hist[s], true});
      }
      for (size_t i = 0; i < chain.size(); ++i) {
        if (i > 0) {
          b.tokens.clear();
          b.embd = hidden;
        }
        auto r = chain[i]->run(b, rs, &hidden, &out);
        EXPECT_TRUE(r.ok()) << r.err().message;
        if (!r.ok()) return all;
      }
      for (size_t s = 0; s < out.size(); ++s) {
        sum[s] = out[s].checksum;
        hist[s].push_back(out[s].token);
        all.push_back(out[s]);
      }
    }
    return all;
  };
  const auto want = record(make_chain(false, {n_layer}));
  ASSERT_EQ(want.size(), 72u);
  for (const auto& ends : std::vector<std::vector<int32_t>>{{n_layer}, {2, n_layer}}) {
    const auto got = record(make_chain(true, ends));
    ASSERT_EQ(got.size(), want.size());
    for (size_t i = 0; i < want.size(); ++i) {
      EXPECT_EQ(got[i].token, want[i].token) << "row " << i << ", " << ends.size() << " stage(s)";
      EXPECT_EQ(got[i].checksum, want[i].checksum) << "row " << i;
    }
  }
  EXPECT_GT(dev.value()->peak(), 0u);
}

}  // namespace
}  // namespace lime
