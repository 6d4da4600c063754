// Model loading: hyperparameters and shapes are checked; every problem is a clear error, never a crash.
#include <gtest/gtest.h>

#include "runtime/model.h"
#include "tests/tiny_model.h"

namespace lime {
namespace {

result<model> load_bytes(const std::vector<uint8_t>& bytes) {
  LIME_TRY(gguf_file f, gguf_file::parse(bytes.data(), bytes.size()));
  return model::from_gguf(std::move(f));
}

// Builds the tiny model, lets `edit` change the writer, and loads the rewritten image.
template <class Edit>
result<model> load_edited(const test::tiny_spec& spec, Edit edit) {
  test::tiny_model_builder b(spec);
  (void)b.build();
  edit(b.writer());
  auto bytes = b.writer().write_memory();
  if (!bytes.ok()) return bytes.err();
  return load_bytes(*bytes);
}

TEST(model_load, reads_hyperparameters) {
  test::tiny_spec spec;
  auto m = test::make_tiny_model(spec);
  ASSERT_TRUE(m.ok()) << m.err().message;
  const model_hparams& hp = m->hparams();
  EXPECT_EQ(hp.n_layer, spec.n_layer);
  EXPECT_EQ(hp.n_embd, spec.n_embd);
  EXPECT_EQ(hp.n_head, spec.n_head);
  EXPECT_EQ(hp.n_head_kv, spec.n_head_kv);
  EXPECT_EQ(hp.head_dim, spec.n_embd / spec.n_head);
  EXPECT_EQ(hp.n_vocab, spec.n_vocab);
  EXPECT_EQ(hp.n_ctx_train, spec.n_ctx);
  EXPECT_EQ(m->rope_inv_freq().size(), static_cast<size_t>(hp.n_rot / 2));
  EXPECT_DOUBLE_EQ(m->rope_inv_freq()[0], 1.0);
  EXPECT_FALSE(m->describe().empty());
}

TEST(model_load, missing_tensor_is_named) {
  test::tiny_model_builder b({});
  b.skip("blk.1.ffn_up.weight");
  auto m = load_bytes(b.build());
  ASSERT_FALSE(m.ok());
  EXPECT_EQ(m.err().code, errc::missing);
  EXPECT_NE(m.err().message.find("blk.1.ffn_up.weight"), std::string::npos);
}

TEST(model_load, shape_mismatch_is_bad_format) {
  auto m = load_edited({}, [](gguf_writer& w) { w.set_u32("llama.feed_forward_length", 100); });
  ASSERT_FALSE(m.ok());
  EXPECT_EQ(m.err().code, errc::bad_format);
  EXPECT_NE(m.err().message.find("ffn_gate"), std::string::npos) << m.err().message;
}

TEST(model_load, unsupported_architecture) {
  auto m = load_edited({}, [](gguf_writer& w) { w.set_str("general.architecture", "mamba"); });
  ASSERT_FALSE(m.ok());
  EXPECT_EQ(m.err().code, errc::unsupported);
  EXPECT_NE(m.err().message.find("mamba"), std::string::npos);
}

TEST(model_load, missing_required_key) {
  test::tiny_spec spec;
  auto m = load_edited(spec, [](gguf_writer& w) { w.set_str("general.architecture", "mistral"); });  // keys are llama.*
  ASSERT_FALSE(m.ok());
  EXPECT_EQ(m.err().code, errc::missing);
}

TEST(model_load, heads_not_divisible_by_kv_heads) {
  auto m = load_edited({}, [](gguf_writer& w) { w.set_u32("llama.attention.head_count_kv", 3); });
  ASSERT_FALSE(m.ok());
  EXPECT_EQ(m.err().code, errc::bad_format);
}

TEST(model_load, unsupported_rope_scaling) {
  auto m = load_edited({}, [](gguf_writer& w) { w.set_str("llama.rope.scaling.type", "yarn"); });
  ASSERT_FALSE(m.ok());
  EXPECT_EQ(m.err().code, errc::unsupported);
}

TEST(model_load, linear_rope_scaling_and_rope_factors) {
  std::vector<float> factors(8, 2.0f);  // head_dim 16 -> 8 pairs
  auto m = load_edited({}, [&](gguf_writer& w) {
    w.set_str("llama.rope.scaling.type", "linear");
    w.set_f32("llama.rope.scaling.factor", 4.0f);
    ASSERT_TRUE(w.add_tensor("rope_freqs.weight", tensor_type::f32, {8}, factors.data()).ok());
  });
  ASSERT_TRUE(m.ok()) << m.err().message;
  EXPECT_TRUE(m->hparams().has_rope_factors);
  EXPECT_DOUBLE_EQ(m->hparams().rope_freq_scale, 0.25);
  EXPECT_NEAR(m->rope_inv_freq()[0], 0.25 / 2.0, 1e-15);
}

TEST(model_load, non_computable_weight_type_is_unsupported) {
  test::tiny_spec spec;
  auto m = load_edited(spec, [](gguf_writer& w) {
    static std::vector<uint8_t> blocks(static_cast<size_t>(84) * 64, 0);  // 64 rows of one 256-block
    ASSERT_TRUE(w.add_tensor("extra.q2k", tensor_type::q2_k, {256, 64}, blocks.data()).ok());
  });
  ASSERT_TRUE(m.ok()) << "an unused exotic tensor must not stop loading: " << m.err().message;
}

TEST(model_load, corrupt_file_is_an_error_not_a_crash) {
  test::tiny_model_builder b({});
  std::vector<uint8_t> bytes = b.build();
  bytes.resize(bytes.size() / 2);
  auto m = load_bytes(bytes);
  ASSERT_FALSE(m.ok());
  auto missing = model::load("/nonexistent/dir/model.gguf");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.err().code, errc::io_error);
}

}  // namespace
}  // namespace lime

namespace lime {
namespace {

TEST(model_load, layer_weight_of_uncomputable_type_is_unsupported) {
  test::tiny_spec spec;
  spec.type = tensor_type::q2_k;  // the builder cannot quantize it: blocks stay zero, which is still valid q2_k
  spec.n_embd = 256;
  spec.n_ff = 256;
  auto m = test::make_tiny_model(spec);
  ASSERT_FALSE(m.ok());
  EXPECT_EQ(m.err().code, errc::unsupported);
  EXPECT_NE(m.err().message.find("q2_k"), std::string::npos) << m.err().message;
}

}  // namespace
}  // namespace lime
