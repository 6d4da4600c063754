// Pre-tokenizer regexes: known splits for the common schemes, and for every supported name the pieces
// always concatenate back to the input.
#include <gtest/gtest.h>

#include <random>

#include "runtime/pretokenizer.h"

namespace lime {
namespace {

std::vector<std::string> split(const std::string& pre, const std::string& text) {
  auto p = pretokenizer::create(pre);
  EXPECT_TRUE(p.ok()) << pre;
  if (!p.ok()) return {};
  std::vector<std::string> out;
  for (std::string_view s : p->split(text)) out.emplace_back(s);
  return out;
}

using pieces = std::vector<std::string>;

TEST(TokenizerPretokenizer, Gpt2) {
  EXPECT_EQ(split("gpt-2", "Hello world's  end\n"),
            (pieces{"Hello", " world", "'s", " ", " end", "\n"}));
  EXPECT_EQ(split("gpt-2", "a1234 !!x"), (pieces{"a", "1234", " !!", "x"}));
  EXPECT_EQ(split("gpt-2", "I'M"), (pieces{"I", "'", "M"}));  // contractions are lowercase only here
}

TEST(TokenizerPretokenizer, Llama3) {
  EXPECT_EQ(split("llama-bpe", "1234567"), (pieces{"123", "456", "7"}));
  EXPECT_EQ(split("llama-bpe", "I'M here"), (pieces{"I", "'M", " here"}));
  EXPECT_EQ(split("llama-bpe", "hello\n\nworld"), (pieces{"hello", "\n\n", "world"}));
  EXPECT_EQ(split("llama-bpe", "(hi)  \n x"), (pieces{"(hi", ")", "  \n", " x"}));
  EXPECT_EQ(split("llama-bpe", "\xD0\xBD\xD0\xB0 \xE4\xB8\xAD\xE6\x96\x87"),  // "на 中文"
            (pieces{"\xD0\xBD\xD0\xB0", " \xE4\xB8\xAD\xE6\x96\x87"}));
}

TEST(TokenizerPretokenizer, Qwen2SplitsDigitsOneByOne) {
  EXPECT_EQ(split("qwen2", "x123"), (pieces{"x", "1", "2", "3"}));
}

TEST(TokenizerPretokenizer, MultiStageSchemesKeepGapsAsPieces) {
  // starcoder: digits isolated first, then GPT-2 words inside the remaining pieces.
  EXPECT_EQ(split("starcoder", "ab12 cd"), (pieces{"ab", "1", "2", " cd"}));
  // deepseek-llm: trailing whitespace of a piece is split off by \s+$ (end of the piece only).
  EXPECT_EQ(split("deepseek-llm", "Hi  "), (pieces{"Hi", "  "}));
  EXPECT_EQ(split("deepseek-coder", "ab\n12"), (pieces{"ab", "\n", "1", "2"}));
}

TEST(TokenizerPretokenizer, UnknownNameIsUnsupported) {
  EXPECT_EQ(pretokenizer::create("certainly-not-a-tokenizer").err().code, errc::unsupported);
}

TEST(TokenizerPretokenizer, InvalidUtf8StaysOnePiece) {
  EXPECT_EQ(split("gpt-2", "ab\xFF cd"), (pieces{"ab\xFF cd"}));
}

TEST(TokenizerPretokenizer, PiecesConcatenateToTheInputForEveryScheme) {
  const char* names[] = {"default", "gpt-2", "llama-bpe", "qwen2", "deepseek-llm", "deepseek-coder", "deepseek-v3",
                         "falcon", "mpt", "starcoder", "refact", "command-r", "gpt-4o", "tekken", "bloom", "viking",
                         "chatglm-bpe", "smaug-bpe"};
  const std::vector<std::string> alphabet = {"a", "Z", " ", "  ", "\n", "\r\n", "\t", "1", "999", "'s", "'LL", "!?",
                                             "\xC3\xA9", "\xE4\xB8\xAD", "\xF0\x9F\x98\x80", "\xEF\xBC\x8C", "$",
                                             "\xD9\xA3", "\xE2\x80\x83"};
  std::mt19937 rng(5);
  for (const char* name : names) {
    auto p = pretokenizer::create(name);
    ASSERT_TRUE(p.ok()) << name << ": " << (p.ok() ? "" : p.err().message);
    for (int i = 0; i < 200; ++i) {
      std::string s;
      const int n = static_cast<int>(rng() % 14);
      for (int k = 0; k < n; ++k) s += alphabet[rng() % alphabet.size()];
      std::string joined;
      for (std::string_view piece : p->split(s)) {
        EXPECT_FALSE(piece.empty()) << name;
        joined.append(piece);
      }
      EXPECT_EQ(joined, s) << name;
    }
  }
}

}  // namespace
}  // namespace lime
