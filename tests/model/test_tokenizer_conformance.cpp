// Tokenizer conformance against llama.cpp's vocab test set (models/vocab/ggml-vocab-*.gguf with .inp/.out):
// ids must match the reference exactly (no BOS, parse_special off, as llama.cpp's test-tokenizer-0 runs
// them). llama-spm, phi-3 and gpt-2 must match fully; the others are held at the rate they reach now.
#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>
#include <sstream>

#include "runtime/gguf.h"
#include "runtime/tokenizer.h"
#include "runtime/utf8.h"
#include "tests/test_models.h"

namespace lime {
namespace {

struct vocab_cases {
  std::vector<std::string> inputs;
  std::vector<std::vector<int32_t>> expected;
};

std::string read_all(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

// Inputs are separated by "\n__ggml_vocab_test__\n"; line k of .out holds the ids of input k.
vocab_cases read_cases(const std::string& base) {
  vocab_cases c;
  const std::string raw = read_all(base + ".inp");
  const std::string sep = "\n__ggml_vocab_test__\n";
  for (size_t pos = 0; pos < raw.size();) {
    const size_t next = raw.find(sep, pos);
    if (next == std::string::npos) {
      c.inputs.push_back(raw.substr(pos));
      break;
    }
    c.inputs.push_back(raw.substr(pos, next - pos));
    pos = next + sep.size();
  }
  std::istringstream out(read_all(base + ".out"));
  for (std::string line; std::getline(out, line);) {
    std::istringstream ls(line);
    std::vector<int32_t> ids;
    for (int32_t id; ls >> id;) ids.push_back(id);
    c.expected.push_back(std::move(ids));
  }
  return c;
}

std::string ids_str(const std::vector<int32_t>& ids) {
  std::string s;
  for (int32_t id : ids) s += std::to_string(id) + " ";
  return s;
}

result<tokenizer> load_tokenizer(const std::string& path) {
  LIME_TRY(gguf_file f, gguf_file::open(path));
  LIME_TRY(vocab v, vocab_load(f));
  return tokenizer::create(std::move(v));
}

// Returns the pass rate (0..1) of one vocabulary and prints it (and the first failures) to the test log.
double pass_rate(const std::string& models, const std::string& name) {
  const std::string base = models + "/vocab/ggml-vocab-" + name + ".gguf";
  auto tok = load_tokenizer(base);
  EXPECT_TRUE(tok.ok()) << name << ": " << (tok.ok() ? "" : tok.err().message);
  if (!tok.ok()) return 0.0;
  const vocab_cases c = read_cases(base);
  EXPECT_EQ(c.inputs.size(), c.expected.size()) << name;
  EXPECT_GT(c.inputs.size(), 10u) << name;
  const size_t n = std::min(c.inputs.size(), c.expected.size());
  size_t pass = 0, shown = 0;
  for (size_t i = 0; i < n; ++i) {
    const auto got = tok->encode(c.inputs[i], false, false);
    if (got == c.expected[i]) {
      ++pass;
    } else if (shown++ < 3) {
      std::printf("  [%s] case %zu '%s'\n    want %s\n    got  %s\n", name.c_str(), i, c.inputs[i].c_str(),
                  ids_str(c.expected[i]).c_str(), ids_str(got).c_str());
    }
  }
  const double rate = n ? static_cast<double>(pass) / static_cast<double>(n) : 0.0;
  std::printf("tokenizer conformance %-15s %zu/%zu = %.1f%%\n", name.c_str(), pass, n, 100.0 * rate);
  ::testing::Test::RecordProperty("pass_rate_" + name, std::to_string(rate));
  return rate;
}

TEST(TokenizerConformance, LlamaSpmMatchesFully) {
  LIME_REQUIRE_MODELS(models);
  EXPECT_EQ(pass_rate(models, "llama-spm"), 1.0);
}

TEST(TokenizerConformance, Phi3MatchesFully) {
  LIME_REQUIRE_MODELS(models);
  EXPECT_EQ(pass_rate(models, "phi-3"), 1.0);
}

TEST(TokenizerConformance, Gpt2MatchesFully) {
  LIME_REQUIRE_MODELS(models);
  EXPECT_EQ(pass_rate(models, "gpt-2"), 1.0);
}

// Floors at the rates reached when this test was written: a drop is a regression.
TEST(TokenizerConformance, OtherVocabsAtRecordedRates) {
  LIME_REQUIRE_MODELS(models);
  const std::pair<const char*, double> floors[] = {
      {"deepseek-llm", 1.0}, {"deepseek-coder", 1.0}, {"falcon", 1.0}, {"mpt", 1.0},
      {"refact", 1.0},       {"starcoder", 1.0},      {"bert-bge", 1.0},
  };
  for (const auto& [name, floor] : floors) EXPECT_GE(pass_rate(models, name), floor) << name;
}

TEST(TokenizerConformance, DecodeInvertsEncodeOnSpmAndBpeVocabs) {
  LIME_REQUIRE_MODELS(models);
  for (const char* name : {"llama-spm", "phi-3", "gpt-2", "deepseek-llm", "deepseek-coder", "falcon", "mpt",
                           "refact", "starcoder"}) {
    const std::string base = models + "/vocab/ggml-vocab-" + std::string(name) + ".gguf";
    auto tok = load_tokenizer(base);
    ASSERT_TRUE(tok.ok()) << name;
    for (const std::string& s : read_cases(base).inputs) {
      EXPECT_EQ(tok->decode(tok->encode(s, true, false), false, true), s) << name << ": '" << s << "'";
    }
  }
}

TEST(TokenizerConformance, StreamingKeepsMultiByteCharactersWhole) {
  LIME_REQUIRE_MODELS(models);
  const std::string text = "llama \xF0\x9F\xA6\x99 \xE6\x88\x91\xE6\x83\xB3\xE5\x9C\xA8 \xE1\x9E\x80\xE1\x9E\xB6 "
                           "\xF0\x9F\x98\xB6\xE2\x80\x8D\xF0\x9F\x8C\xAB\xEF\xB8\x8F end";
  for (const char* name : {"llama-spm", "gpt-2"}) {
    auto tok = load_tokenizer(models + "/vocab/ggml-vocab-" + std::string(name) + ".gguf");
    ASSERT_TRUE(tok.ok()) << name;
    const auto ids = tok->encode(text, false, false);
    // The emoji are spelled with several byte tokens in both vocabularies.
    size_t partial_tokens = 0;
    for (int32_t id : ids) partial_tokens += !utf8_valid(tok->token_to_piece(id, false));
    EXPECT_GE(partial_tokens, 4u) << name;
    detokenizer_stream st(*tok, false, true);
    std::string all;
    for (int32_t id : ids) {
      const std::string piece = st.push(id);
      EXPECT_TRUE(utf8_valid(piece)) << name << ": partial character after id " << id;
      all += piece;
    }
    all += st.flush();
    EXPECT_EQ(all, text) << name;
  }
}

TEST(TokenizerConformance, ModelFilesTokenizeLikeTheirVocabs) {
  LIME_REQUIRE_MODELS(models);
  // stories260K: the prompt ids its README documents (BOS first).
  auto stories = load_tokenizer(models + "/stories260K.gguf");
  ASSERT_TRUE(stories.ok()) << stories.err().message;
  EXPECT_EQ(stories->encode("Once upon a time", true, true), (std::vector<int32_t>{1, 403, 407, 261, 378}));
  EXPECT_TRUE(stories->get_vocab().is_end_of_generation(2));
  // llama-2-tiny-random carries the full Llama-2 vocabulary: it must reproduce llama-spm's reference ids.
  auto tiny = load_tokenizer(models + "/llama-2-tiny-random.gguf");
  ASSERT_TRUE(tiny.ok()) << tiny.err().message;
  const vocab_cases c = read_cases(models + "/vocab/ggml-vocab-llama-spm.gguf");
  for (size_t i = 0; i < std::min(c.inputs.size(), c.expected.size()); ++i) {
    EXPECT_EQ(tiny->encode(c.inputs[i], false, false), c.expected[i]) << "case " << i;
  }
}

}  // namespace
}  // namespace lime
