// cuda_forward on generated models at real shapes (runtime/model_gen.h; the layer count cut to keep the CPU
// reference quick): Llama-3.2-1B in Q4_K_M (q4_k/q6_k mix, tied 128256-row head, GQA, Llama-3 rope factors) and
// Llama-2-7B in Q8_0 and F16 (MHA, 32000-row head). Logits of a prefill, decode steps and two sequences batched
// together equal the CPU pass's bit for bit, resident and streamed. Skips without a device.
#include <gtest/gtest.h>

#include <algorithm>

#include "runtime/model_gen.h"
#include "tests/cuda_runtime/cuda_runtime_test_util.h"

namespace lime {
namespace {

using test::bit_diff;
using test::engine;

result<model> real_shape(const std::string& shape, model_ftype ft, int32_t n_layer) {
  model_gen_options o;
  LIME_TRY(o.shape, model_shape_find(shape));
  o.shape.n_layer = n_layer;
  o.ftype = ft;
  o.seed = 5;
  LIME_TRY(std::vector<uint8_t> bytes, model_gen_write_memory(o));
  LIME_TRY(gguf_file f, gguf_file::parse(bytes.data(), bytes.size()));
  return model::from_gguf(std::move(f));
}

// Two sequences: a 9-token prefill of sequence 0, then 3 steps decoding sequence 0 next to a prefill chunk of
// sequence 1; every row wants logits.
std::vector<float> run(engine& e, int32_t n_vocab) {
  std::vector<float> all;
  micro_batch b;
  forward_output out;
  auto toks = test::tokens_for(3, 24, n_vocab);
  for (int i = 0; i < 9; ++i) b.add(toks[static_cast<size_t>(i)], i, 0, true);
  for (int step = 0; step <= 3; ++step) {
    auto r = e.fwd->run(b, out);
    EXPECT_TRUE(r.ok()) << r.err().message;
    if (!r.ok()) return {};
    all.insert(all.end(), out.logits.begin(), out.logits.end());
    b.clear();
    b.add(toks[static_cast<size_t>(9 + step)], 9 + step, 0, true);
    for (int i = 0; i < 3; ++i) b.add(toks[static_cast<size_t>(12 + 3 * step + i)], 3 * step + i, 1, true);
  }
  return all;
}

struct shape_case {
  const char* shape;
  model_ftype ftype;
  int32_t n_layer;
};

class cuda_real_shapes : public ::testing::TestWithParam<shape_case> {};

TEST_P(cuda_real_shapes, logits_equal_the_cpu_pass_bitwise) {
  LIME_REQUIRE_CUDA();
  const shape_case c = GetParam();
  auto m = real_shape(c.shape, c.ftype, c.n_layer);
  ASSERT_TRUE(m.ok()) << m.err().message;
  const int32_t n_vocab = m->hparams().n_vocab;
  const layer_range all{0, c.n_layer};
  engine cpu(*m, all, test::cpu_opts(), nullptr, tensor_type::f32, 8, 16, default_thread_count());
  const std::vector<float> want = run(cpu, n_vocab);
  ASSERT_EQ(want.size(), static_cast<size_t>(9 + 3 * 4) * static_cast<size_t>(n_vocab));

  engine resident(*m, all, test::cuda_opts(), nullptr, tensor_type::f32, 8, 16);
  ASSERT_TRUE(resident.ok()) << resident.st.err().message;
  EXPECT_EQ(bit_diff(want, run(resident, n_vocab)), "") << c.shape << " resident";

  // Streamed: room for about one layer resident next to a ring of two, and never for all of the weights (these
  // cases have 1-3 layers, so 3.5 slots can exceed them): at most three quarters.
  const uint64_t slot = cuda_weights::min_device_bytes(*m, all);
  const uint64_t weights = resident.weight_stats()->resident_bytes;
  const uint64_t base = resident.be->allocated() - weights +
                        static_cast<uint64_t>(resident.kv->config().max_blocks) * ((resident.kv->block_bytes() + 255) / 256 * 256);
  engine streamed(*m, all, test::cuda_opts(base + std::min(3 * slot + slot / 2, weights / 4 * 3)), nullptr, tensor_type::f32,
                  8, 16);
  ASSERT_TRUE(streamed.ok()) << streamed.st.err().message;
  EXPECT_GT(streamed.weight_stats()->ring_depth, 0) << streamed.weight_stats()->describe();
  EXPECT_EQ(bit_diff(want, run(streamed, n_vocab)), "") << c.shape << " streamed: " << streamed.weight_stats()->describe();
}

INSTANTIATE_TEST_SUITE_P(shapes, cuda_real_shapes,
                         ::testing::Values(shape_case{"llama-3.2-1b", model_ftype::q4_k_m, 3},
                                           shape_case{"llama-2-7b", model_ftype::q8_0, 2},
                                           shape_case{"llama-2-7b", model_ftype::f16, 1}),
                         [](const auto& info) {
                           std::string n = std::string(info.param.shape) + "_" + model_ftype_name(info.param.ftype);
                           for (char& ch : n) if (ch == '-' || ch == '.') ch = '_';
                           return n;
                         });

}  // namespace
}  // namespace lime
