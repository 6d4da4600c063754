// GGUF writer: key replacement and order, alignment key, copy_metadata, streaming fill, file output, errors.
#include <gtest/gtest.h>

#include <cstdio>
#include <numeric>

#include "tests/runtime/test_gguf_util.h"

namespace lime {
namespace {

using test::make_arr;
using test::make_int;
using test::make_str;
using test::parse_bytes;
using test::peek;
using test::write_or_die;

TEST(GgufWriter, HeaderBytesFollowTheSpec) {
  gguf_writer w;
  w.set_u32("ab", 0x01020304);
  std::vector<uint8_t> b = write_or_die(w);
  // magic, version 3, 0 tensors, 1 kv, key "ab", type u32 (4), value; padded to 32.
  ASSERT_EQ(b.size(), 64u);  // 4+4+8+8 + 8+2 + 4+4 = 42 -> 64
  EXPECT_EQ(std::string(b.begin(), b.begin() + 4), "GGUF");
  EXPECT_EQ(peek<uint32_t>(b, 4), 3u);
  EXPECT_EQ(peek<uint64_t>(b, 8), 0u);
  EXPECT_EQ(peek<uint64_t>(b, 16), 1u);
  EXPECT_EQ(peek<uint64_t>(b, 24), 2u);
  EXPECT_EQ(std::string(b.begin() + 32, b.begin() + 34), "ab");
  EXPECT_EQ(peek<uint32_t>(b, 34), 4u);
  EXPECT_EQ(peek<uint32_t>(b, 38), 0x01020304u);
  for (size_t i = 42; i < b.size(); ++i) EXPECT_EQ(b[i], 0) << i;
}

TEST(GgufWriter, SetReplacesInPlaceAndKeepsOrder) {
  gguf_writer w;
  w.set_u32("first", 1);
  w.set_str("second", "x");
  w.set_u32("third", 3);
  w.set_str("first", "replaced");  // same slot, new type
  auto f = parse_bytes(write_or_die(w));
  ASSERT_TRUE(f.ok()) << f.err().message;
  ASSERT_EQ(f->metadata().size(), 3u);
  EXPECT_EQ(f->metadata()[0].key, "first");
  EXPECT_EQ(f->metadata()[1].key, "second");
  EXPECT_EQ(f->metadata()[2].key, "third");
  EXPECT_EQ(f->get<std::string>("first").value(), "replaced");
}

TEST(GgufWriter, AlignmentKeyFollowsTheLayout) {
  gguf_writer w;
  w.set_alignment(64);
  float x[4] = {1, 2, 3, 4};
  ASSERT_TRUE(w.add_tensor("x", tensor_type::f32, {4}, x).ok());
  ASSERT_TRUE(w.add_tensor("y", tensor_type::f32, {4}, x).ok());
  auto f = parse_bytes(write_or_die(w));
  ASSERT_TRUE(f.ok()) << f.err().message;
  EXPECT_EQ(f->get<uint32_t>("general.alignment").value(), 64u);
  EXPECT_EQ(f->find_tensor("y")->offset, 64u);  // 16 bytes padded to 64

  // Setting the key as a u32 changes the padding too (copy_metadata relies on it).
  gguf_writer w2;
  w2.set_u32("general.alignment", 128);
  ASSERT_TRUE(w2.add_tensor("x", tensor_type::f32, {4}, x).ok());
  ASSERT_TRUE(w2.add_tensor("y", tensor_type::f32, {4}, x).ok());
  auto f2 = parse_bytes(write_or_die(w2));
  ASSERT_TRUE(f2.ok()) << f2.err().message;
  EXPECT_EQ(f2->alignment(), 128u);
  EXPECT_EQ(f2->find_tensor("y")->offset, 128u);
  EXPECT_EQ(f2->data_offset() % 128, 0u);

  gguf_writer bad;
  bad.set_alignment(48);
  auto r = bad.write_memory();
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.err().code, errc::invalid_argument);
  bad.set_alignment(0);
  EXPECT_FALSE(bad.write_memory().ok());
}

TEST(GgufWriter, CopyMetadataWithSkip) {
  gguf_writer src;
  src.set_str("general.architecture", "llama");
  src.set_arr_str("tokenizer.ggml.tokens", {"a", "b"});
  src.set_u32("llama.block_count", 5);
  auto from = parse_bytes(write_or_die(src));
  ASSERT_TRUE(from.ok());

  gguf_writer w;
  w.set_u32("llama.block_count", 1);  // replaced by the copy, keeps its slot
  w.copy_metadata(*from, [](const std::string& k) { return k == "general.architecture"; });
  auto f = parse_bytes(write_or_die(w));
  ASSERT_TRUE(f.ok()) << f.err().message;
  ASSERT_EQ(f->metadata().size(), 2u);
  EXPECT_EQ(f->metadata()[0].key, "llama.block_count");
  EXPECT_EQ(f->get<uint32_t>("llama.block_count").value(), 5u);
  EXPECT_EQ(f->get_array<std::string>("tokenizer.ggml.tokens").value(), (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(f->find("general.architecture"), nullptr);

  gguf_writer all;
  all.copy_metadata(*from);
  auto g = parse_bytes(write_or_die(all));
  ASSERT_TRUE(g.ok());
  EXPECT_EQ(g->metadata().size(), 3u);
}

TEST(GgufWriter, FillStreamsAtWriteTime) {
  int calls = 0;
  gguf_writer w;
  auto fill = [&](uint8_t* dst, uint64_t n) -> result<void> {
    ++calls;
    for (uint64_t i = 0; i < n; ++i) dst[i] = static_cast<uint8_t>(i * 7 + 1);
    return {};
  };
  ASSERT_TRUE(w.add_tensor("big", tensor_type::q8_0, {64, 5}, nullptr, fill).ok());
  ASSERT_TRUE(w.add_tensor("small", tensor_type::f16, {3}, nullptr, fill).ok());
  EXPECT_EQ(calls, 0);  // nothing generated until written
  std::string path = ::testing::TempDir() + "lime_gguf_fill_test.gguf";
  ASSERT_TRUE(w.write_file(path).ok());
  EXPECT_EQ(calls, 2);
  auto f = gguf_file::open(path);
  ASSERT_TRUE(f.ok()) << f.err().message;
  const gguf_tensor_info* big = f->find_tensor("big");
  ASSERT_NE(big, nullptr);
  EXPECT_EQ(big->n_bytes, 2u * 5u * 34u);
  for (uint64_t i = 0; i < big->n_bytes; ++i) ASSERT_EQ(f->tensor_data(*big)[i], static_cast<uint8_t>(i * 7 + 1));
  const gguf_tensor_info* small = f->find_tensor("small");
  EXPECT_EQ(small->offset, 352u);  // 340 padded to 32
  EXPECT_EQ(f->tensor_data(*small)[5], static_cast<uint8_t>(36));
  // Padding after the first tensor is zero, not left over from the reused buffer.
  for (uint64_t i = big->n_bytes; i < small->offset; ++i) EXPECT_EQ(f->tensor_data(*big)[i], 0);
  EXPECT_EQ(f->file_size(), f->data_offset() + 352 + 32);

  auto mem = w.write_memory();  // same bytes as the file
  ASSERT_TRUE(mem.ok());
  ASSERT_EQ(mem->size(), f->file_size());
  EXPECT_EQ(std::memcmp(mem->data(), f->file_data(), mem->size()), 0);
  std::remove(path.c_str());
}

TEST(GgufWriter, FillErrorPropagatesAndLeavesNoFile) {
  gguf_writer w;
  ASSERT_TRUE(w.add_tensor("t", tensor_type::f32, {4}, nullptr, [](uint8_t*, uint64_t) -> result<void> {
                 return make_error(errc::cancelled, "stop");
               }).ok());
  std::string path = ::testing::TempDir() + "lime_gguf_fill_fail.gguf";
  auto r = w.write_file(path);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.err().code, errc::cancelled);
  EXPECT_FALSE(gguf_file::open(path).ok());
  EXPECT_EQ(w.write_memory().err().code, errc::cancelled);
}

TEST(GgufWriter, RejectsBadTensorsAndValues) {
  gguf_writer w;
  float x[64] = {};
  EXPECT_TRUE(w.add_tensor("ok", tensor_type::f32, {4}, x).ok());
  EXPECT_EQ(w.add_tensor("ok", tensor_type::f32, {4}, x).err().code, errc::invalid_argument);  // duplicate
  EXPECT_FALSE(w.add_tensor("", tensor_type::f32, {4}, x).ok());
  EXPECT_FALSE(w.add_tensor("a", tensor_type::f32, {}, x).ok());
  EXPECT_FALSE(w.add_tensor("b", tensor_type::f32, {1, 1, 1, 1, 1}, x).ok());
  EXPECT_FALSE(w.add_tensor("c", tensor_type::f32, {0}, x).ok());
  EXPECT_FALSE(w.add_tensor("d", tensor_type::q4_0, {16}, x).ok());  // not a whole block
  EXPECT_FALSE(w.add_tensor("e", static_cast<tensor_type>(5), {32}, x).ok());
  EXPECT_FALSE(w.add_tensor("f", tensor_type::f32, {int64_t{1} << 40, int64_t{1} << 40}, x).ok());
  EXPECT_FALSE(w.add_tensor("g", tensor_type::f32, {4}, nullptr).ok());  // no data, no fill
  EXPECT_TRUE(w.write_memory().ok());

  gguf_writer v;
  v.set("mixed", make_arr(gguf_type::i32, {make_int(gguf_type::i32, 1), make_str("x")}));
  auto r = v.write_memory();
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.err().code, errc::invalid_argument);
  EXPECT_NE(r.err().message.find("'mixed'"), std::string::npos);
}

TEST(GgufWriter, WriteFileReportsIoErrors) {
  gguf_writer w;
  w.set_u32("a", 1);
  auto r = w.write_file("/nonexistent-dir-lime/x.gguf");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.err().code, errc::io_error);
  EXPECT_NE(r.err().message.find("/nonexistent-dir-lime/x.gguf"), std::string::npos);
}

}  // namespace
}  // namespace lime
