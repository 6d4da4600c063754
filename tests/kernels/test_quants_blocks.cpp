// dequantize_row on blocks built by hand from the GGML layouts (values known by construction), and on random
// block bytes against the independent decoders of test_quants_ref.h: every value must match bit for bit.
#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <vector>

#include "kernels/cpu/quants.h"
#include "kernels/quant_blocks.h"
#include "kernels/tensor_type.h"
#include "tests/kernels/test_quants_ref.h"

namespace {

using lime::kstatus;
using lime::tensor_type;
using lime::cpu::dequantize_row;
using lime::test::put16;

std::vector<float> dequant(tensor_type t, const std::vector<uint8_t>& bytes, int64_t n) {
  std::vector<float> out(static_cast<size_t>(n), -12345.f);
  EXPECT_EQ(dequantize_row(t, bytes.data(), out.data(), n), kstatus::ok);
  return out;
}

// Exact comparison, reporting the first mismatching element.
void expect_same(const std::vector<float>& got, const std::vector<float>& want) {
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < got.size(); ++i) {
    uint32_t a, b;
    std::memcpy(&a, &got[i], 4);
    std::memcpy(&b, &want[i], 4);
    ASSERT_EQ(a, b) << "element " << i << ": got " << got[i] << " want " << want[i];
  }
}

TEST(QuantBlocks, StructSizesMatchTypeTable) {
  EXPECT_EQ(sizeof(lime::block_q4_0), static_cast<size_t>(lime::tensor_type_traits(tensor_type::q4_0).block_bytes));
  EXPECT_EQ(sizeof(lime::block_q4_1), static_cast<size_t>(lime::tensor_type_traits(tensor_type::q4_1).block_bytes));
  EXPECT_EQ(sizeof(lime::block_q5_0), static_cast<size_t>(lime::tensor_type_traits(tensor_type::q5_0).block_bytes));
  EXPECT_EQ(sizeof(lime::block_q5_1), static_cast<size_t>(lime::tensor_type_traits(tensor_type::q5_1).block_bytes));
  EXPECT_EQ(sizeof(lime::block_q8_0), static_cast<size_t>(lime::tensor_type_traits(tensor_type::q8_0).block_bytes));
  EXPECT_EQ(sizeof(lime::block_q4_k), static_cast<size_t>(lime::tensor_type_traits(tensor_type::q4_k).block_bytes));
  EXPECT_EQ(sizeof(lime::block_q5_k), static_cast<size_t>(lime::tensor_type_traits(tensor_type::q5_k).block_bytes));
  EXPECT_EQ(sizeof(lime::block_q6_k), static_cast<size_t>(lime::tensor_type_traits(tensor_type::q6_k).block_bytes));
}

TEST(QuantBlocks, PlainTypes) {
  // f16: 1, -2, 0.5, smallest subnormal, largest finite, -inf, -0.
  const uint16_t h[] = {0x3c00, 0xc000, 0x3800, 0x0001, 0x7bff, 0xfc00, 0x8000};
  std::vector<uint8_t> b16;
  for (uint16_t v : h) put16(b16, v);
  const std::vector<float> f16 = dequant(tensor_type::f16, b16, 7);
  expect_same(f16, {1.f, -2.f, 0.5f, 5.9604644775390625e-8f, 65504.f, -INFINITY, -0.f});
  // bf16: 1, pi rounded, -3.
  std::vector<uint8_t> bb;
  for (uint16_t v : {uint16_t{0x3f80}, uint16_t{0x4049}, uint16_t{0xc040}}) put16(bb, v);
  expect_same(dequant(tensor_type::bf16, bb, 3), {1.f, 3.140625f, -3.f});
  // f32: bytes copied as they are (a NaN payload included).
  const uint32_t fb[] = {0x3f800000u, 0x7fc01234u, 0x80000000u};
  std::vector<uint8_t> b32(sizeof fb);
  std::memcpy(b32.data(), fb, sizeof fb);
  const std::vector<float> f32 = dequant(tensor_type::f32, b32, 3);
  EXPECT_EQ(std::memcmp(f32.data(), fb, sizeof fb), 0);
}

TEST(QuantBlocks, Q4_0ByConstruction) {
  // Block 0: d = 0.5, nibbles 0..15 in the low halves and 15..0 in the high halves.
  // Block 1: d = -2, every byte 0x8f (low nibble 15, high nibble 8).
  std::vector<uint8_t> b;
  put16(b, 0x3800);
  for (int j = 0; j < 16; ++j) b.push_back(static_cast<uint8_t>(j | ((15 - j) << 4)));
  put16(b, 0xc000);
  for (int j = 0; j < 16; ++j) b.push_back(0x8f);
  std::vector<float> want;
  for (int j = 0; j < 16; ++j) want.push_back((j - 8) * 0.5f);
  for (int j = 0; j < 16; ++j) want.push_back((15 - j - 8) * 0.5f);
  for (int j = 0; j < 16; ++j) want.push_back(7 * -2.f);
  for (int j = 0; j < 16; ++j) want.push_back(0 * -2.f);
  expect_same(dequant(tensor_type::q4_0, b, 64), want);
}

TEST(QuantBlocks, Q4_1ByConstruction) {
  // d = 0.25, m = -1: element j < 16 has q = j, element 16 + j has q = 15 - j.
  std::vector<uint8_t> b;
  put16(b, 0x3400);
  put16(b, 0xbc00);
  for (int j = 0; j < 16; ++j) b.push_back(static_cast<uint8_t>(j | ((15 - j) << 4)));
  std::vector<float> want;
  for (int j = 0; j < 16; ++j) want.push_back(j * 0.25f - 1.f);
  for (int j = 0; j < 16; ++j) want.push_back((15 - j) * 0.25f - 1.f);
  expect_same(dequant(tensor_type::q4_1, b, 32), want);
}

TEST(QuantBlocks, Q5ByConstruction) {
  // q_j = j for all 32 elements: low nibbles j & 15, fifth bit set exactly for j >= 16, i.e. qh = 0xffff0000.
  std::vector<uint8_t> b0, b1;
  put16(b0, 0x3000);  // q5_0: d = 0.125
  put16(b1, 0x3e00);  // q5_1: d = 1.5, m = 2
  put16(b1, 0x4000);
  for (uint8_t v : {0x00, 0x00, 0xff, 0xff}) {
    b0.push_back(v);
    b1.push_back(v);
  }
  for (int j = 0; j < 16; ++j) {
    b0.push_back(static_cast<uint8_t>(j | (j << 4)));
    b1.push_back(static_cast<uint8_t>(j | (j << 4)));
  }
  std::vector<float> w0, w1;
  for (int j = 0; j < 32; ++j) {
    w0.push_back((j - 16) * 0.125f);
    w1.push_back(j * 1.5f + 2.f);
  }
  expect_same(dequant(tensor_type::q5_0, b0, 32), w0);
  expect_same(dequant(tensor_type::q5_1, b1, 32), w1);
}

TEST(QuantBlocks, Q8_0ByConstruction) {
  std::vector<uint8_t> b;
  put16(b, 0x3400);  // d = 0.25
  std::vector<float> want;
  for (int j = 0; j < 32; ++j) {
    const int q = j == 0 ? -128 : j == 1 ? 127 : j * 7 - 100;
    b.push_back(static_cast<uint8_t>(static_cast<int8_t>(q)));
    want.push_back(q * 0.25f);
  }
  expect_same(dequant(tensor_type::q8_0, b, 32), want);
}

// Chosen sub-block scales/mins (several >= 16, so the top 2 bits live in bytes 0-7) packed by hand.
const int k_sc[8] = {1, 63, 17, 32, 5, 48, 60, 33};
const int k_m[8] = {0, 7, 63, 12, 40, 1, 22, 59};

std::vector<uint8_t> pack_k_scales() {
  std::vector<uint8_t> s(12);
  for (int j = 0; j < 4; ++j) {
    s[j] = static_cast<uint8_t>(k_sc[j] | ((k_sc[j + 4] >> 4) << 6));
    s[j + 4] = static_cast<uint8_t>(k_m[j] | ((k_m[j + 4] >> 4) << 6));
    s[j + 8] = static_cast<uint8_t>((k_sc[j + 4] & 15) | ((k_m[j + 4] & 15) << 4));
  }
  return s;
}

TEST(QuantBlocks, Q4_KByConstruction) {
  // d = 0.75, dmin = 0.25; element e has q = (e * 7 + e / 32) % 16.
  std::vector<uint8_t> b;
  put16(b, 0x3a00);
  put16(b, 0x3400);
  const std::vector<uint8_t> s = pack_k_scales();
  b.insert(b.end(), s.begin(), s.end());
  int q[256];
  for (int e = 0; e < 256; ++e) q[e] = (e * 7 + e / 32) % 16;
  for (int c = 0; c < 4; ++c) {
    for (int l = 0; l < 32; ++l) b.push_back(static_cast<uint8_t>(q[64 * c + l] | (q[64 * c + 32 + l] << 4)));
  }
  ASSERT_EQ(b.size(), 144u);
  std::vector<float> want;
  for (int e = 0; e < 256; ++e) want.push_back(static_cast<float>(0.75 * k_sc[e / 32] * q[e] - 0.25 * k_m[e / 32]));
  expect_same(dequant(tensor_type::q4_k, b, 256), want);
}

TEST(QuantBlocks, Q5_KByConstruction) {
  // d = 0.5, dmin = 1.5; element e has q = (e * 13 + e / 32 * 7 + 5) % 32 (not periodic across sub-blocks).
  std::vector<uint8_t> b;
  put16(b, 0x3800);
  put16(b, 0x3e00);
  const std::vector<uint8_t> s = pack_k_scales();
  b.insert(b.end(), s.begin(), s.end());
  int q[256];
  for (int e = 0; e < 256; ++e) q[e] = (e * 13 + e / 32 * 7 + 5) % 32;
  for (int l = 0; l < 32; ++l) {  // qh: bit s of byte l is bit 4 of element 32 * s + l
    int v = 0;
    for (int s8 = 0; s8 < 8; ++s8) v |= ((q[32 * s8 + l] >> 4) & 1) << s8;
    b.push_back(static_cast<uint8_t>(v));
  }
  for (int c = 0; c < 4; ++c) {
    for (int l = 0; l < 32; ++l) {
      b.push_back(static_cast<uint8_t>((q[64 * c + l] & 15) | ((q[64 * c + 32 + l] & 15) << 4)));
    }
  }
  ASSERT_EQ(b.size(), 176u);
  std::vector<float> want;
  for (int e = 0; e < 256; ++e) want.push_back(static_cast<float>(0.5 * k_sc[e / 32] * q[e] - 1.5 * k_m[e / 32]));
  expect_same(dequant(tensor_type::q5_k, b, 256), want);
}

TEST(QuantBlocks, Q6_KByConstruction) {
  // d = 0.125; signed scales covering -128..127; element e has q = (e * 5 + 3) % 64 (value q - 32).
  const int sc[16] = {-128, 127, -1, 0, 1, 64, -64, 3, 100, -7, 33, -99, 12, 2, -2, 77};
  int q[256];
  for (int e = 0; e < 256; ++e) q[e] = (e * 5 + 3) % 64;
  std::vector<uint8_t> ql(128), qh(64);
  for (int n = 0; n < 2; ++n) {  // 128 elements per half: four groups of 32 share ql/qh bytes
    for (int l = 0; l < 32; ++l) {
      const int* g = q + 128 * n + l;  // g[0], g[32], g[64], g[96]
      ql[64 * n + l] = static_cast<uint8_t>((g[0] & 15) | ((g[64] & 15) << 4));
      ql[64 * n + l + 32] = static_cast<uint8_t>((g[32] & 15) | ((g[96] & 15) << 4));
      qh[32 * n + l] = static_cast<uint8_t>((g[0] >> 4) | ((g[32] >> 4) << 2) | ((g[64] >> 4) << 4) | ((g[96] >> 4) << 6));
    }
  }
  std::vector<uint8_t> b(ql);
  b.insert(b.end(), qh.begin(), qh.end());
  for (int v : sc) b.push_back(static_cast<uint8_t>(static_cast<int8_t>(v)));
  put16(b, 0x3000);
  ASSERT_EQ(b.size(), 210u);
  std::vector<float> want;
  for (int e = 0; e < 256; ++e) want.push_back(static_cast<float>(0.125 * sc[e / 16] * (q[e] - 32)));
  expect_same(dequant(tensor_type::q6_k, b, 256), want);
}

// Random block bytes (finite fp16 scales of any magnitude, subnormals included) against the reference decoders.
struct random_case {
  tensor_type t;
  int block_bytes;
  int block_elems;
  void (*ref)(const uint8_t*, std::vector<float>&);
  std::vector<int> half_offsets;  // where the fp16 fields sit in a block
};

TEST(QuantBlocks, RandomBlocksMatchReferenceDecoders) {
  const random_case cases[] = {
      {tensor_type::q4_0, 18, 32, lime::test::ref_q4_0, {0}},
      {tensor_type::q4_1, 20, 32, lime::test::ref_q4_1, {0, 2}},
      {tensor_type::q5_0, 22, 32, lime::test::ref_q5_0, {0}},
      {tensor_type::q5_1, 24, 32, lime::test::ref_q5_1, {0, 2}},
      {tensor_type::q8_0, 34, 32, lime::test::ref_q8_0, {0}},
      {tensor_type::q4_k, 144, 256, lime::test::ref_q4_k, {0, 2}},
      {tensor_type::q5_k, 176, 256, lime::test::ref_q5_k, {0, 2}},
      {tensor_type::q6_k, 210, 256, lime::test::ref_q6_k, {208}},
  };
  lime::test::byte_rng rng(42);
  for (const random_case& c : cases) {
    SCOPED_TRACE(lime::tensor_type_name(c.t));
    const int n_blocks = 64;
    // One spare byte in front: the row starts at an odd address, which the kernels must accept.
    std::vector<uint8_t> buf(1 + static_cast<size_t>(n_blocks) * c.block_bytes);
    for (auto& v : buf) v = rng.byte();
    std::vector<float> want;
    for (int i = 0; i < n_blocks; ++i) {
      uint8_t* blk = buf.data() + 1 + static_cast<size_t>(i) * c.block_bytes;
      for (int off : c.half_offsets) {
        const uint16_t h = rng.finite_half();
        blk[off] = static_cast<uint8_t>(h & 0xff);
        blk[off + 1] = static_cast<uint8_t>(h >> 8);
      }
      c.ref(blk, want);
    }
    const int64_t n = static_cast<int64_t>(n_blocks) * c.block_elems;
    std::vector<float> got(static_cast<size_t>(n));
    ASSERT_EQ(dequantize_row(c.t, buf.data() + 1, got.data(), n), kstatus::ok);
    expect_same(got, want);
  }
}

}  // namespace
