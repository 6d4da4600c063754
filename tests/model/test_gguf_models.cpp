// GGUF reader on the real files in ../shared/models: facts about stories260K, the tiny random Llama-2 (F16),
// every vocab-only file, and a byte-exact rewrite through the writer.
#include <gtest/gtest.h>

#include <dirent.h>

#include <algorithm>
#include <cstring>

#include "runtime/gguf.h"
#include "runtime/gguf_writer.h"
#include "tests/test_models.h"

namespace lime {
namespace {

TEST(GgufModels, Stories260K) {
  LIME_REQUIRE_MODELS(models);
  auto f = gguf_file::open(models + "/stories260K.gguf");
  ASSERT_TRUE(f.ok()) << f.err().message;
  EXPECT_EQ(f->version(), 3u);
  EXPECT_EQ(f->alignment(), 32u);
  EXPECT_EQ(f->get<std::string>("general.architecture").value(), "llama");
  EXPECT_EQ(f->get<uint32_t>("llama.block_count").value(), 5u);
  EXPECT_EQ(f->get<uint32_t>("llama.embedding_length").value(), 64u);
  EXPECT_EQ(f->get<uint32_t>("llama.feed_forward_length").value(), 172u);
  EXPECT_EQ(f->get<uint32_t>("llama.attention.head_count").value(), 8u);
  EXPECT_EQ(f->get<uint32_t>("llama.attention.head_count_kv").value(), 4u);
  EXPECT_EQ(f->get<float>("llama.attention.layer_norm_rms_epsilon").value(), 1e-5f);
  // "none" token ids are stored as u32 4294967295: readable as uint32, not as int32.
  EXPECT_EQ(f->get<uint32_t>("tokenizer.ggml.padding_token_id").value(), 4294967295u);
  EXPECT_EQ(f->get<int32_t>("tokenizer.ggml.padding_token_id").err().code, errc::invalid_argument);
  EXPECT_EQ(f->get<uint32_t>("tokenizer.ggml.bos_token_id").value(), 1u);

  auto tokens = f->get_array<std::string>("tokenizer.ggml.tokens");
  ASSERT_TRUE(tokens.ok()) << tokens.err().message;
  ASSERT_EQ(tokens->size(), 512u);
  EXPECT_EQ((*tokens)[0], "<unk>");
  EXPECT_EQ((*tokens)[1], "<s>");
  EXPECT_EQ((*tokens)[2], "</s>");
  EXPECT_EQ(f->get_array<float>("tokenizer.ggml.scores")->size(), 512u);
  EXPECT_EQ(f->get_array<int32_t>("tokenizer.ggml.token_type")->size(), 512u);

  // 2 embedding-sized + output_norm + 9 per layer x 5 layers.
  EXPECT_EQ(f->tensors().size(), 48u);
  const gguf_tensor_info* emb = f->find_tensor("token_embd.weight");
  ASSERT_NE(emb, nullptr);
  EXPECT_EQ(emb->n_dims, 2u);
  EXPECT_EQ(emb->ne[0], 64);
  EXPECT_EQ(emb->ne[1], 512);
  EXPECT_EQ(emb->type, tensor_type::f32);
  EXPECT_EQ(emb->n_bytes, 64u * 512u * 4u);
  ASSERT_NE(f->find_tensor("blk.4.ffn_down.weight"), nullptr);
  EXPECT_EQ(f->find_tensor("blk.4.ffn_down.weight")->ne[0], 172);
  EXPECT_EQ(f->find_tensor("blk.5.ffn_down.weight"), nullptr);
  uint64_t end = 0;
  for (const gguf_tensor_info& t : f->tensors()) {
    EXPECT_EQ(t.type, tensor_type::f32) << t.name;
    EXPECT_EQ(reinterpret_cast<uintptr_t>(f->tensor_data(t)) % 32, 0u) << t.name;
    end = std::max(end, f->data_offset() + t.offset + t.n_bytes);
  }
  EXPECT_EQ(end, f->file_size());  // the data section fills the file exactly
}

TEST(GgufModels, TinyRandomLlama2HasF16) {
  LIME_REQUIRE_MODELS(models);
  auto f = gguf_file::open(models + "/llama-2-tiny-random.gguf");
  ASSERT_TRUE(f.ok()) << f.err().message;
  EXPECT_EQ(f->get<std::string>("general.architecture").value(), "llama");
  EXPECT_EQ(f->get<uint32_t>("llama.block_count").value(), 1u);
  EXPECT_EQ(f->get<uint32_t>("llama.embedding_length").value(), 8u);
  EXPECT_EQ(f->get_array<std::string>("tokenizer.ggml.tokens")->size(), 32000u);
  EXPECT_EQ(f->tensors().size(), 12u);
  const gguf_tensor_info* emb = f->find_tensor("token_embd.weight");
  ASSERT_NE(emb, nullptr);
  EXPECT_EQ(emb->type, tensor_type::f16);
  EXPECT_EQ(emb->ne[0], 8);
  EXPECT_EQ(emb->ne[1], 32000);
  EXPECT_EQ(emb->n_bytes, 8u * 32000u * 2u);
  int n_f16 = 0, n_f32 = 0;
  for (const gguf_tensor_info& t : f->tensors()) {
    n_f16 += t.type == tensor_type::f16;
    n_f32 += t.type == tensor_type::f32;
  }
  EXPECT_EQ(n_f16, 9);  // embeddings, output, 7 matrices of the one layer
  EXPECT_EQ(n_f32, 3);  // the norms
  EXPECT_EQ(f->find_tensor("output_norm.weight")->type, tensor_type::f32);
}

TEST(GgufModels, EveryVocabFileOpensWithoutTensors) {
  LIME_REQUIRE_MODELS(models);
  std::string dir = models + "/vocab";
  DIR* d = ::opendir(dir.c_str());
  ASSERT_NE(d, nullptr) << dir;
  std::vector<std::string> files;
  while (dirent* e = ::readdir(d)) {
    std::string n = e->d_name;
    if (n.rfind("ggml-vocab-", 0) == 0 && n.size() > 5 && n.compare(n.size() - 5, 5, ".gguf") == 0) files.push_back(n);
  }
  ::closedir(d);
  ASSERT_GE(files.size(), 10u);
  for (const std::string& n : files) {
    auto f = gguf_file::open(dir + "/" + n);
    ASSERT_TRUE(f.ok()) << n << ": " << f.err().message;
    EXPECT_TRUE(f->tensors().empty()) << n;
    EXPECT_TRUE(f->get<std::string>("general.architecture").ok()) << n;
    auto model = f->get<std::string>("tokenizer.ggml.model");
    ASSERT_TRUE(model.ok()) << n;
    EXPECT_TRUE(*model == "llama" || *model == "gpt2" || *model == "bert") << n << ": " << *model;
    auto tokens = f->get_array<std::string>("tokenizer.ggml.tokens");
    ASSERT_TRUE(tokens.ok()) << n;
    EXPECT_GT(tokens->size(), 1000u) << n;
    auto types = f->get_array<int32_t>("tokenizer.ggml.token_type");
    ASSERT_TRUE(types.ok()) << n;
    EXPECT_EQ(types->size(), tokens->size()) << n;
  }
}

// Rewriting a real file through the writer (metadata copied in order, tensors from the mapping) reproduces it
// byte for byte: both follow the same layout rules (v3, alignment 32, tensors packed in order).
TEST(GgufModels, WriterReproducesRealFiles) {
  LIME_REQUIRE_MODELS(models);
  for (const char* name : {"stories260K.gguf", "llama-2-tiny-random.gguf"}) {
    auto f = gguf_file::open(models + "/" + name);
    ASSERT_TRUE(f.ok()) << f.err().message;
    gguf_writer w;
    w.copy_metadata(*f);
    for (const gguf_tensor_info& t : f->tensors()) {
      std::vector<int64_t> dims(t.ne, t.ne + t.n_dims);
      ASSERT_TRUE(w.add_tensor(t.name, t.type, dims, f->tensor_data(t)).ok()) << t.name;
    }
    auto out = w.write_memory();
    ASSERT_TRUE(out.ok()) << out.err().message;
    ASSERT_EQ(out->size(), f->file_size()) << name;
    EXPECT_EQ(std::memcmp(out->data(), f->file_data(), out->size()), 0) << name;
  }
}

}  // namespace
}  // namespace lime
