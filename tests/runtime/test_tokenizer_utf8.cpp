// UTF-8 helpers: strict decoding, sanitising and the streaming "complete prefix" rule.
#include <gtest/gtest.h>

#include <random>

#include "runtime/utf8.h"

namespace lime {
namespace {

TEST(TokenizerUtf8, DecodesEveryLength) {
  const std::string s = "a\xC3\xA9\xE2\x82\xAC\xF0\x9F\x98\x80";  // a é € 😀
  EXPECT_EQ(utf8_to_cpts(s), (std::vector<uint32_t>{0x61, 0xE9, 0x20AC, 0x1F600}));
  EXPECT_TRUE(utf8_valid(s));
}

TEST(TokenizerUtf8, RejectsMalformedSequencesOneByteAtATime) {
  // stray continuation, overlong '/', surrogate, above U+10FFFF, invalid lead, truncated 3-byte sequence
  const std::string bad[] = {"\x80", "\xC0\xAF", "\xED\xA0\x80", "\xF4\x90\x80\x80", "\xFF", "\xE2\x82"};
  for (const std::string& b : bad) {
    EXPECT_FALSE(utf8_valid(b)) << "case of size " << b.size();
    const auto cpts = utf8_to_cpts(b);
    EXPECT_EQ(cpts.size(), b.size());  // one U+FFFD per byte
    for (uint32_t c : cpts) EXPECT_EQ(c, utf8_replacement);
  }
  EXPECT_TRUE(utf8_valid("\xEF\xBF\xBD"));  // a real U+FFFD is valid text
}

TEST(TokenizerUtf8, SanitizeReplacesOnlyBadBytes) {
  EXPECT_EQ(utf8_sanitize("ok"), "ok");
  EXPECT_EQ(utf8_sanitize("a\xFF" "b"), "a\xEF\xBF\xBD" "b");
  EXPECT_EQ(utf8_sanitize("\xC3"), "\xEF\xBF\xBD");
  EXPECT_TRUE(utf8_valid(utf8_sanitize("\xE2\x82\xC3\xA9\x80")));
}

TEST(TokenizerUtf8, EncodeDecodeRoundTripsRandomCodePoints) {
  std::mt19937 rng(7);
  std::uniform_int_distribution<uint32_t> dist(0, 0x10FFFF);
  for (int i = 0; i < 20000; ++i) {
    uint32_t c = dist(rng);
    if (c >= 0xD800 && c <= 0xDFFF) continue;
    const std::string s = utf8_encode(c);
    size_t pos = 0;
    EXPECT_EQ(utf8_decode(s, &pos), c);
    EXPECT_EQ(pos, s.size());
    EXPECT_EQ(s.size(), utf8_seq_len(static_cast<uint8_t>(s[0])));
  }
  EXPECT_EQ(utf8_encode(0xD800), "\xEF\xBF\xBD");
}

TEST(TokenizerUtf8, CompletePrefixHoldsBackOnlyUnfinishedCharacters) {
  const std::string emoji = "\xF0\x9F\x98\x80";
  EXPECT_EQ(utf8_complete_prefix(""), 0u);
  EXPECT_EQ(utf8_complete_prefix("ab"), 2u);
  for (size_t k = 1; k < 4; ++k) EXPECT_EQ(utf8_complete_prefix("a" + emoji.substr(0, k)), 1u) << k;
  EXPECT_EQ(utf8_complete_prefix("a" + emoji), 5u);
  EXPECT_EQ(utf8_complete_prefix("a\xE2\x82"), 1u);
  // Bytes that can never complete are released at once.
  EXPECT_EQ(utf8_complete_prefix("a\x80"), 2u);
  EXPECT_EQ(utf8_complete_prefix("a\xFF"), 2u);
  EXPECT_EQ(utf8_complete_prefix("a\xE0\x80"), 3u);  // E0 80 is an overlong start
  EXPECT_EQ(utf8_complete_prefix("a\xC3x"), 3u);
}

}  // namespace
}  // namespace lime
