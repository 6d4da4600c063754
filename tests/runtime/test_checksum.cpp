// Tests for runtime/checksum: the XXH64 chain over raw logits bytes and its hex form.
#include <gtest/gtest.h>
#include <xxhash.h>

#include <cstring>
#include <vector>

#include "runtime/checksum.h"

namespace lime {
namespace {

std::vector<float> make_row(int n, float scale) {
  std::vector<float> v(static_cast<size_t>(n));
  for (int i = 0; i < n; ++i) v[static_cast<size_t>(i)] = scale * static_cast<float>((i * 37) % 101 - 50) / 7.0f;
  return v;
}

TEST(checksum, step_is_xxh64_of_raw_bytes_seeded_by_previous) {
  std::vector<float> row = make_row(1000, 1.0f);
  const uint64_t prev = 0x1234567890abcdefull;
  EXPECT_EQ(logits_checksum_step(prev, row.data(), 1000), XXH64(row.data(), row.size() * sizeof(float), prev));
  // XXH64 of no bytes with seed 0 is the published constant ef46db3751d8e999.
  EXPECT_EQ(logits_checksum_step(k_logits_checksum_init, nullptr, 0), 0xef46db3751d8e999ull);
}

TEST(checksum, equal_inputs_equal_hashes) {
  std::vector<float> a = make_row(4096, 1.5f);
  std::vector<float> b = a;  // a separate buffer with the same bytes
  EXPECT_EQ(logits_checksum_step(0, a.data(), 4096), logits_checksum_step(0, b.data(), 4096));
  EXPECT_EQ(logits_checksum_step(99, a.data(), 4096), logits_checksum_step(99, b.data(), 4096));
  EXPECT_NE(logits_checksum_step(0, a.data(), 4096), logits_checksum_step(1, a.data(), 4096));
}

TEST(checksum, one_bit_changes_the_hash) {
  std::vector<float> a = make_row(2048, 1.0f);
  a[5] = 0.0f;
  const uint64_t h = logits_checksum_step(0, a.data(), 2048);
  for (size_t idx : {size_t{0}, size_t{5}, size_t{1023}, size_t{2047}}) {
    for (int bit : {0, 1, 22, 23, 30, 31}) {
      std::vector<float> b = a;
      uint32_t u;
      std::memcpy(&u, &b[idx], 4);
      u ^= 1u << bit;
      std::memcpy(&b[idx], &u, 4);
      EXPECT_NE(logits_checksum_step(0, b.data(), 2048), h) << "idx " << idx << " bit " << bit;
    }
  }
  // +0.0 and -0.0 compare equal as floats but are different logits bytes.
  std::vector<float> c = a;
  c[5] = -0.0f;
  EXPECT_NE(logits_checksum_step(0, c.data(), 2048), h);
  // A shorter row is a different row.
  EXPECT_NE(logits_checksum_step(0, a.data(), 2047), h);
}

TEST(checksum, chain_depends_on_order) {
  std::vector<float> r1 = make_row(512, 1.0f);
  std::vector<float> r2 = make_row(512, -2.0f);
  const uint64_t h12 = logits_checksum_step(logits_checksum_step(0, r1.data(), 512), r2.data(), 512);
  const uint64_t h21 = logits_checksum_step(logits_checksum_step(0, r2.data(), 512), r1.data(), 512);
  EXPECT_NE(h12, h21);
  // The same stream twice gives the same chain.
  EXPECT_EQ(h12, logits_checksum_step(logits_checksum_step(0, r1.data(), 512), r2.data(), 512));
  // Repeating a row is not a no-op.
  EXPECT_NE(logits_checksum_step(h12, r2.data(), 512), h12);
}

TEST(checksum, hex_is_16_lowercase_digits) {
  EXPECT_EQ(checksum_hex(0), "0000000000000000");
  EXPECT_EQ(checksum_hex(0x0123456789abcdefull), "0123456789abcdef");
  EXPECT_EQ(checksum_hex(0xfedcba9876543210ull), "fedcba9876543210");
  EXPECT_EQ(checksum_hex(~0ull), "ffffffffffffffff");
  EXPECT_EQ(checksum_hex(0xa), "000000000000000a");
}

}  // namespace
}  // namespace lime
