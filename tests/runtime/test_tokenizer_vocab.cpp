// vocab_load from GGUF images written in the test: defaults per model type, special ids ("none" values,
// out-of-range ids), array length checks, end-of-generation ids.
#include <gtest/gtest.h>

#include "runtime/gguf_writer.h"
#include "runtime/tokenizer.h"
#include "runtime/vocab.h"

namespace lime {
namespace {

gguf_writer spm_writer() {
  gguf_writer w;
  w.set_str("general.name", "tiny");
  w.set_str("tokenizer.ggml.model", "llama");
  w.set_arr_str("tokenizer.ggml.tokens", {"<unk>", "<s>", "</s>", "<|eot_id|>", "\xE2\x96\x81" "a", "<|im_end|>"});
  w.set_arr_f32("tokenizer.ggml.scores", {0, 0, 0, 0, -1, 0});
  w.set_arr_i32("tokenizer.ggml.token_type", {2, 3, 3, 3, 1, 1});
  return w;
}

result<vocab> load(const gguf_writer& w) {
  auto bytes = w.write_memory();
  EXPECT_TRUE(bytes.ok());
  if (!bytes.ok()) return bytes.err();
  auto f = gguf_file::parse(bytes->data(), bytes->size());
  EXPECT_TRUE(f.ok()) << (f.ok() ? "" : f.err().message);
  if (!f.ok()) return f.err();
  return vocab_load(*f);
}

TEST(TokenizerVocab, SpmDefaults) {
  auto v = load(spm_writer());
  ASSERT_TRUE(v.ok()) << v.err().message;
  EXPECT_EQ(v->kind, vocab_kind::spm);
  EXPECT_EQ(v->name, "tiny");
  EXPECT_EQ(v->n_tokens(), 6);
  EXPECT_EQ(v->bos, 1);
  EXPECT_EQ(v->eos, 2);
  EXPECT_EQ(v->unk, 0);
  EXPECT_TRUE(v->add_bos);
  EXPECT_FALSE(v->add_eos);
  EXPECT_TRUE(v->add_space_prefix);
  EXPECT_EQ(v->types[3], token_attr::control);
  EXPECT_FLOAT_EQ(v->scores[4], -1.0f);
}

TEST(TokenizerVocab, EndOfGenerationIds) {
  auto v = load(spm_writer());
  ASSERT_TRUE(v.ok());
  // eos, and the control token named <|eot_id|> (auto-detected as eot). <|im_end|> is a normal token here.
  EXPECT_EQ(v->end_of_generation_ids, (std::vector<int32_t>{2, 3}));
  EXPECT_EQ(v->eot, 3);
  EXPECT_TRUE(v->is_end_of_generation(2));
  EXPECT_TRUE(v->is_end_of_generation(3));
  EXPECT_FALSE(v->is_end_of_generation(1));
  EXPECT_FALSE(v->is_end_of_generation(5));
  EXPECT_FALSE(v->is_end_of_generation(-1));
}

TEST(TokenizerVocab, NoneValuesAndExplicitIds) {
  gguf_writer w = spm_writer();
  w.set_u32("tokenizer.ggml.bos_token_id", 4294967295u);
  w.set_i32("tokenizer.ggml.unknown_token_id", -1);
  w.set_u32("tokenizer.ggml.eos_token_id", 5);
  w.set_bool("tokenizer.ggml.add_bos_token", false);
  w.set_bool("tokenizer.ggml.add_space_prefix", false);
  w.set_str("tokenizer.chat_template", "{{ x }}");
  auto v = load(w);
  ASSERT_TRUE(v.ok()) << v.err().message;
  EXPECT_EQ(v->bos, -1);
  EXPECT_EQ(v->unk, -1);
  EXPECT_EQ(v->eos, 5);
  EXPECT_FALSE(v->add_bos);
  EXPECT_FALSE(v->add_space_prefix);
  EXPECT_EQ(v->chat_template, "{{ x }}");
  EXPECT_TRUE(v->is_end_of_generation(5));
}

TEST(TokenizerVocab, OutOfRangeSpecialIdIsBadFormat) {
  gguf_writer w = spm_writer();
  w.set_u32("tokenizer.ggml.eos_token_id", 6);
  EXPECT_EQ(load(w).err().code, errc::bad_format);
  gguf_writer w2 = spm_writer();
  w2.set_i32("tokenizer.ggml.padding_token_id", -7);
  EXPECT_EQ(load(w2).err().code, errc::bad_format);
}

TEST(TokenizerVocab, AddBosWithoutBosIsBadFormat) {
  gguf_writer w = spm_writer();
  w.set_u32("tokenizer.ggml.bos_token_id", 4294967295u);
  w.set_bool("tokenizer.ggml.add_bos_token", true);
  EXPECT_EQ(load(w).err().code, errc::bad_format);
}

TEST(TokenizerVocab, ArrayLengthsMustAgree) {
  gguf_writer w = spm_writer();
  w.set_arr_f32("tokenizer.ggml.scores", {0, 0, 0});
  EXPECT_EQ(load(w).err().code, errc::bad_format);
  gguf_writer w2 = spm_writer();
  w2.set_arr_i32("tokenizer.ggml.token_type", {1, 1, 1, 1, 1, 1, 1});
  EXPECT_EQ(load(w2).err().code, errc::bad_format);
  gguf_writer w3 = spm_writer();
  w3.set_str("tokenizer.ggml.scores", "nope");
  EXPECT_EQ(load(w3).err().code, errc::bad_format);
}

TEST(TokenizerVocab, MissingKeys) {
  gguf_writer w;
  w.set_arr_str("tokenizer.ggml.tokens", {"a"});
  EXPECT_EQ(load(w).err().code, errc::missing);
  gguf_writer w2;
  w2.set_str("tokenizer.ggml.model", "llama");
  EXPECT_EQ(load(w2).err().code, errc::missing);
  gguf_writer w3;
  w3.set_str("tokenizer.ggml.model", "gpt2");
  w3.set_arr_str("tokenizer.ggml.tokens", {"a", "b"});
  EXPECT_EQ(load(w3).err().code, errc::missing);  // BPE needs merges
}

TEST(TokenizerVocab, Gpt2AndBertDefaults) {
  gguf_writer w;
  w.set_str("tokenizer.ggml.model", "gpt2");
  w.set_str("tokenizer.ggml.pre", "llama-bpe");
  w.set_arr_str("tokenizer.ggml.tokens", {"a", "b", "ab"});
  w.set_arr_str("tokenizer.ggml.merges", {"a b"});
  w.set_u32("tokenizer.ggml.bos_token_id", 2);
  auto v = load(w);
  ASSERT_TRUE(v.ok()) << v.err().message;
  EXPECT_EQ(v->kind, vocab_kind::bpe);
  EXPECT_TRUE(v->add_bos);  // llama3 family
  EXPECT_FALSE(v->add_space_prefix);
  EXPECT_EQ(v->merges, (std::vector<std::string>{"a b"}));
  auto tok = tokenizer::create(*v);
  ASSERT_TRUE(tok.ok()) << tok.err().message;
  EXPECT_EQ(tok->encode("ab", true, false), (std::vector<int32_t>{2, 2}));

  gguf_writer b;
  b.set_str("tokenizer.ggml.model", "bert");
  std::vector<std::string> toks;
  for (int i = 0; i < 110; ++i) toks.push_back("t" + std::to_string(i));
  b.set_arr_str("tokenizer.ggml.tokens", toks);
  b.set_u32("tokenizer.ggml.seperator_token_id", 105);
  auto bv = load(b);
  ASSERT_TRUE(bv.ok()) << bv.err().message;
  EXPECT_EQ(bv->kind, vocab_kind::wpm);
  EXPECT_EQ(bv->bos, 101);
  EXPECT_EQ(bv->sep, 105);
  EXPECT_EQ(bv->unk, 100);
  EXPECT_TRUE(bv->add_sep);
}

TEST(TokenizerVocab, UnknownModelLoadsButIsUnsupportedByTheTokenizer) {
  gguf_writer w;
  w.set_str("tokenizer.ggml.model", "rwkv");
  w.set_arr_str("tokenizer.ggml.tokens", {"a"});
  auto v = load(w);
  ASSERT_TRUE(v.ok());
  EXPECT_EQ(v->kind, vocab_kind::none);
  EXPECT_EQ(tokenizer::create(*v).err().code, errc::unsupported);
}

}  // namespace
}  // namespace lime
