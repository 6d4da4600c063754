// Byte-level BPE on a small vocabulary built in code: merge ranks, byte-level mapping, pre-tokenizer
// words, special tokens, ignore_merges, round trips.
#include <gtest/gtest.h>

#include <random>

#include "runtime/tokenizer.h"
#include "runtime/utf8.h"

namespace lime {
namespace {

// GPT-2's bytes_to_unicode, written out independently of the tokenizer's own table.
std::string byte_char(int b) {
  int cp = b;
  if (!((b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF))) {
    int n = 0;
    for (int x = 0; x < b; ++x) {
      if (!((x >= 0x21 && x <= 0x7E) || (x >= 0xA1 && x <= 0xAC) || (x >= 0xAE && x <= 0xFF))) ++n;
    }
    cp = 256 + n;
  }
  return utf8_encode(static_cast<uint32_t>(cp));
}

struct bpe_builder {
  vocab v;
  explicit bpe_builder(const std::string& pre = "gpt-2") {
    v.kind = vocab_kind::bpe;
    v.model = "gpt2";
    v.pre = pre;
    v.add_space_prefix = false;
    for (int b = 0; b < 256; ++b) add(byte_char(b));  // id == byte value
  }
  int32_t add(const std::string& text, token_attr type = token_attr::normal) {
    v.tokens.push_back(text);
    v.types.push_back(type);
    return static_cast<int32_t>(v.tokens.size() - 1);
  }
  int32_t id(const std::string& text) const {
    for (size_t i = 0; i < v.tokens.size(); ++i) {
      if (v.tokens[i] == text) return static_cast<int32_t>(i);
    }
    ADD_FAILURE() << "no token " << text;
    return -1;
  }
  void merge(const std::string& a, const std::string& b) {
    v.merges.push_back(a + " " + b);
    add(a + b);
  }
};

const std::string G = "\xC4\xA0";  // 'Ġ', the byte-level space

tokenizer make(const bpe_builder& b) {
  auto t = tokenizer::create(b.v);
  EXPECT_TRUE(t.ok()) << (t.ok() ? "" : t.err().message);
  return std::move(t).value();
}

bpe_builder hello_vocab(const std::string& pre = "gpt-2") {
  bpe_builder b(pre);
  b.merge("h", "e");
  b.merge("l", "l");
  b.merge("he", "ll");
  b.merge("hell", "o");
  b.merge(G, "w");
  b.merge("o", "r");
  b.merge(G + "w", "or");
  b.add("<|endoftext|>", token_attr::control);
  return b;
}

TEST(TokenizerBpe, MergesByRankWithinWords) {
  const bpe_builder b = hello_vocab();
  const tokenizer tok = make(b);
  EXPECT_EQ(tok.encode("hello world", false, false),
            (std::vector<int32_t>{b.id("hello"), b.id(G + "wor"), 'l', 'd'}));
}

TEST(TokenizerBpe, LowerRankWins) {
  bpe_builder b1;
  b1.merge("b", "c");
  b1.merge("a", "b");
  EXPECT_EQ(make(b1).encode("abc", false, false), (std::vector<int32_t>{'a', b1.id("bc")}));
  bpe_builder b2;
  b2.merge("a", "b");
  b2.merge("b", "c");
  EXPECT_EQ(make(b2).encode("abc", false, false), (std::vector<int32_t>{b2.id("ab"), 'c'}));
}

TEST(TokenizerBpe, BytesMapThroughTheByteLevelAlphabet) {
  const bpe_builder b = hello_vocab();
  const tokenizer tok = make(b);
  EXPECT_EQ(tok.encode("\xC3\xA9", false, false), (std::vector<int32_t>{0xC3, 0xA9}));
  EXPECT_EQ(tok.encode("\n", false, false), (std::vector<int32_t>{'\n'}));
  EXPECT_EQ(tok.token_to_piece(' ', false), " ");
  EXPECT_EQ(tok.token_to_piece(b.id(G + "wor"), false), " wor");
  EXPECT_EQ(tok.decode({0xE4, 0xB8, 0xAD}, false, false), "\xE4\xB8\xAD");
}

TEST(TokenizerBpe, RandomTextRoundTrips) {
  const bpe_builder b = hello_vocab();
  const tokenizer tok = make(b);
  const std::vector<std::string> alphabet = {"hello", " ", "world", "'s", "\n", "  ", "42", "\xC3\xA9",
                                             "\xE4\xB8\xAD", "\xF0\x9F\x98\x80", "!", "\t", "Ab"};
  std::mt19937 rng(3);
  for (int i = 0; i < 300; ++i) {
    std::string s;
    const int n = static_cast<int>(rng() % 10);
    for (int k = 0; k < n; ++k) s += alphabet[rng() % alphabet.size()];
    EXPECT_EQ(tok.decode(tok.encode(s, true, false), false, true), s) << s;
  }
}

TEST(TokenizerBpe, InvalidUtf8BecomesReplacementCharacters) {
  const tokenizer tok = make(hello_vocab());
  EXPECT_EQ(tok.decode(tok.encode("a\xFF" "b", false, false), false, false), "a\xEF\xBF\xBD" "b");
}

TEST(TokenizerBpe, SpecialTokensOnlyWithParseSpecial) {
  const bpe_builder b = hello_vocab();
  const tokenizer tok = make(b);
  const int32_t eot = b.id("<|endoftext|>");
  EXPECT_EQ(tok.encode("hello<|endoftext|>", false, true), (std::vector<int32_t>{b.id("hello"), eot}));
  const auto plain = tok.encode("hello<|endoftext|>", false, false);
  EXPECT_EQ(std::count(plain.begin(), plain.end(), eot), 0);
  EXPECT_EQ(tok.decode(plain, false, false), "hello<|endoftext|>");
  EXPECT_EQ(tok.decode({eot}, false, false), "");
  EXPECT_EQ(tok.decode({eot}, true, false), "<|endoftext|>");
}

TEST(TokenizerBpe, UserDefinedTokensSplitEvenWithoutParseSpecial) {
  bpe_builder b = hello_vocab();
  const int32_t ud = b.add("  ", token_attr::user_defined);  // e.g. neox's whitespace tokens
  const tokenizer tok = make(b);
  EXPECT_EQ(tok.encode("hello  hello", false, false), (std::vector<int32_t>{b.id("hello"), ud, b.id("hello")}));
}

TEST(TokenizerBpe, IgnoreMergesLooksUpWholeWordsForLlama3) {
  bpe_builder b3 = hello_vocab("llama-bpe");
  const int32_t xyz = b3.add("xyz");
  EXPECT_EQ(make(b3).encode("xyz", false, false), (std::vector<int32_t>{xyz}));
  bpe_builder b2 = hello_vocab("gpt-2");
  b2.add("xyz");
  EXPECT_EQ(make(b2).encode("xyz", false, false), (std::vector<int32_t>{'x', 'y', 'z'}));
}

TEST(TokenizerBpe, BosOnlyWhenTheVocabAsks) {
  bpe_builder b = hello_vocab();
  const int32_t bos = b.id("<|endoftext|>");
  b.v.bos = bos;
  EXPECT_EQ(make(b).encode("hello", true, false), (std::vector<int32_t>{b.id("hello")}));
  b.v.add_bos = true;
  EXPECT_EQ(make(b).encode("hello", true, false), (std::vector<int32_t>{bos, b.id("hello")}));
}

TEST(TokenizerBpe, ArbitraryBytesDecodeToTheSanitizedText) {
  const tokenizer tok = make(hello_vocab());
  std::mt19937 rng(17);
  for (int i = 0; i < 500; ++i) {
    std::string s(rng() % 16, '\0');
    for (char& c : s) c = static_cast<char>(rng() % 256);
    EXPECT_EQ(tok.decode(tok.encode(s, false, true), false, false), utf8_sanitize(s));
  }
}

TEST(TokenizerBpe, UnknownPreTokenizerIsUnsupported) {
  const bpe_builder b = hello_vocab("no-such-pre");
  EXPECT_EQ(tokenizer::create(b.v).err().code, errc::unsupported);
}

}  // namespace
}  // namespace lime
