// WordPiece (bert) on a small vocabulary built in code: normalisation (case, accents, controls),
// punctuation/CJK splitting, greedy longest match, unk, [CLS]/[SEP].
#include <gtest/gtest.h>

#include <random>

#include "runtime/tokenizer.h"

namespace lime {
namespace {

const std::string W = "\xE2\x96\x81";  // word-start marker in GGUF bert vocabularies

struct wpm_builder {
  vocab v;
  wpm_builder() {
    v.kind = vocab_kind::wpm;
    v.model = "bert";
    v.add_bos = true, v.add_sep = true, v.add_space_prefix = false;
    for (const char* s : {"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"}) add(s, token_attr::control);
    v.pad = 0, v.unk = 1, v.bos = 2, v.sep = 3, v.mask = 4;
    for (const std::string& s : std::vector<std::string>{W + "hello", W + "world", W + "un", "aff", "able", W + "!", W + ",", W + "fuhrer",
                                 W + "\xE4\xB8\xAD", W + "\xE6\x96\x87", W + "a", "b", "ab", W + "abc"}) {
      add(s, token_attr::normal);
    }
  }
  int32_t add(const std::string& s, token_attr t) {
    v.tokens.push_back(s);
    v.types.push_back(t);
    return static_cast<int32_t>(v.tokens.size() - 1);
  }
  int32_t id(const std::string& text) const {
    for (size_t i = 0; i < v.tokens.size(); ++i) {
      if (v.tokens[i] == text) return static_cast<int32_t>(i);
    }
    ADD_FAILURE() << "no token " << text;
    return -1;
  }
};

tokenizer make(const wpm_builder& b) {
  auto t = tokenizer::create(b.v);
  EXPECT_TRUE(t.ok()) << (t.ok() ? "" : t.err().message);
  return std::move(t).value();
}

TEST(TokenizerWpm, LowercasesAndSplitsPunctuation) {
  const wpm_builder b;
  EXPECT_EQ(make(b).encode("Hello, WORLD!", false, false),
            (std::vector<int32_t>{b.id(W + "hello"), b.id(W + ","), b.id(W + "world"), b.id(W + "!")}));
}

TEST(TokenizerWpm, GreedyLongestMatchWithContinuations) {
  const wpm_builder b;
  const tokenizer tok = make(b);
  EXPECT_EQ(tok.encode("unaffable", false, false),
            (std::vector<int32_t>{b.id(W + "un"), b.id("aff"), b.id("able")}));
  // "abc" is a whole token; "abb" is "▁a" + "b" + "b"; "abab" is "▁a" + "b" + "ab".
  EXPECT_EQ(tok.encode("abc abb abab", false, false),
            (std::vector<int32_t>{b.id(W + "abc"), b.id(W + "a"), b.id("b"), b.id("b"), b.id(W + "a"), b.id("b"),
                                  b.id("ab")}));
}

TEST(TokenizerWpm, WordsThatCannotBeCoveredAreUnk) {
  const wpm_builder b;
  EXPECT_EQ(make(b).encode("hello xyz unaffablex", false, false),
            (std::vector<int32_t>{b.id(W + "hello"), b.v.unk, b.v.unk}));
}

TEST(TokenizerWpm, StripsAccentsAndControlCharacters) {
  const wpm_builder b;
  const tokenizer tok = make(b);
  EXPECT_EQ(tok.encode("F\xC3\xBChrer", false, false), (std::vector<int32_t>{b.id(W + "fuhrer")}));
  EXPECT_EQ(tok.encode("Fu\xCC\x88hrer\x01", false, false), (std::vector<int32_t>{b.id(W + "fuhrer")}));
}

TEST(TokenizerWpm, CjkCharactersAreSeparateWords) {
  const wpm_builder b;
  EXPECT_EQ(make(b).encode("\xE4\xB8\xAD\xE6\x96\x87hello", false, false),
            (std::vector<int32_t>{b.id(W + "\xE4\xB8\xAD"), b.id(W + "\xE6\x96\x87"), b.id(W + "hello")}));
}

TEST(TokenizerWpm, AddSpecialWrapsInClsAndSep) {
  const wpm_builder b;
  const tokenizer tok = make(b);
  const auto ids = tok.encode("hello", true, false);
  EXPECT_EQ(ids, (std::vector<int32_t>{2, b.id(W + "hello"), 3}));
  EXPECT_EQ(tok.decode(ids, false, true), "hello");
  EXPECT_EQ(tok.decode(ids, true, true), "[CLS] hello[SEP]");
  EXPECT_EQ(tok.encode("[MASK] hello", false, true), (std::vector<int32_t>{4, b.id(W + "hello")}));
}

TEST(TokenizerWpm, ArbitraryBytesGiveKnownIds) {
  const wpm_builder b;
  const tokenizer tok = make(b);
  std::mt19937 rng(19);
  for (int i = 0; i < 500; ++i) {
    std::string s(rng() % 24, '\0');
    for (char& c : s) c = static_cast<char>(rng() % 256);
    for (int32_t id : tok.encode(s, true, true)) {
      EXPECT_GE(id, 0);
      EXPECT_LT(id, b.v.n_tokens());
    }
  }
}

}  // namespace
}  // namespace lime
