// Model identity: the content id follows the header (metadata, tensor table) and file size, not the tensor data;
// the full hash follows every byte; both are XXH64 as documented.
#include <gtest/gtest.h>
#include <unistd.h>
#include <xxhash.h>

#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include "runtime/model_id.h"
#include "tests/tiny_model.h"

namespace lime {
namespace {

std::string temp_path(const std::string& name) {
  return ::testing::TempDir() + "lime_model_id_" + std::to_string(::getpid()) + "_" + name;
}

void write_bytes(const std::string& path, const std::vector<uint8_t>& bytes) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  ASSERT_TRUE(f.good()) << path;
}

std::vector<uint8_t> read_bytes(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return std::vector<uint8_t>((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
}

struct variant {
  uint32_t seed = 1;       // tensor data
  uint32_t value = 7;      // one metadata value
  bool wide_extra = false; // shape of one extra tensor: [4, 2] or [8, 1] (same bytes)
};

// A tiny model written to a file; returns its path.
std::string write_model(const std::string& name, const variant& v) {
  test::tiny_spec s;
  s.seed = v.seed;
  test::tiny_model_builder b(s);
  b.writer().set_u32("lime.test.value", v.value);
  static const float extra[8] = {1, 2, 3, 4, 5, 6, 7, 8};
  const std::vector<int64_t> dims = v.wide_extra ? std::vector<int64_t>{8, 1} : std::vector<int64_t>{4, 2};
  EXPECT_TRUE(b.writer().add_tensor("extra.weight", tensor_type::f32, dims, extra).ok());
  const std::vector<uint8_t> bytes = b.build();
  EXPECT_FALSE(bytes.empty());
  const std::string path = temp_path(name);
  write_bytes(path, bytes);
  return path;
}

struct ids {
  uint64_t content = 0;
  uint64_t full = 0;
};

ids ids_of(const std::string& path) {
  ids r;
  auto f = gguf_file::open(path);
  EXPECT_TRUE(f.ok()) << (f.ok() ? "" : f.err().message);
  if (f.ok()) r.content = model_content_id(f.value());
  auto h = model_full_hash(path);
  EXPECT_TRUE(h.ok()) << (h.ok() ? "" : h.err().message);
  if (h.ok()) r.full = h.value();
  return r;
}

TEST(model_id, same_file_same_ids_and_they_are_the_documented_xxh64) {
  const std::string a = write_model("same_a", {});
  const std::string b = write_model("same_b", {});  // built again from the same spec: the same bytes
  const ids ia = ids_of(a), ib = ids_of(b), ia2 = ids_of(a);
  EXPECT_NE(ia.content, 0u);
  EXPECT_EQ(ia.content, ia2.content);
  EXPECT_EQ(ia.full, ia2.full);
  EXPECT_EQ(ia.content, ib.content);
  EXPECT_EQ(ia.full, ib.full);

  const std::vector<uint8_t> bytes = read_bytes(a);
  EXPECT_EQ(ia.full, static_cast<uint64_t>(XXH64(bytes.data(), bytes.size(), 0)));
  auto f = gguf_file::open(a);
  ASSERT_TRUE(f.ok());
  std::vector<uint8_t> header(bytes.begin(), bytes.begin() + static_cast<std::ptrdiff_t>(f->data_offset()));
  for (int i = 0; i < 8; ++i) header.push_back(static_cast<uint8_t>(static_cast<uint64_t>(bytes.size()) >> (8 * i)));
  EXPECT_EQ(ia.content, static_cast<uint64_t>(XXH64(header.data(), header.size(), 0)));
  // The same image parsed from memory has the same content id as the file.
  auto parsed = gguf_file::parse(bytes.data(), bytes.size());
  ASSERT_TRUE(parsed.ok());
  EXPECT_EQ(model_content_id(parsed.value()), ia.content);
  std::remove(a.c_str());
  std::remove(b.c_str());
}

TEST(model_id, header_differences_change_the_content_id) {
  const std::string base = write_model("hdr_base", {});
  const std::string meta = write_model("hdr_meta", {1, 8, false});
  const std::string shape = write_model("hdr_shape", {1, 7, true});
  const ids ib = ids_of(base), im = ids_of(meta), is = ids_of(shape);
  EXPECT_EQ(read_bytes(base).size(), read_bytes(meta).size());
  EXPECT_EQ(read_bytes(base).size(), read_bytes(shape).size());
  EXPECT_NE(ib.content, im.content) << "one metadata value differs";
  EXPECT_NE(ib.content, is.content) << "one tensor's shape differs";
  EXPECT_NE(im.content, is.content);
  EXPECT_NE(ib.full, im.full);
  EXPECT_NE(ib.full, is.full);
  for (const auto& p : {base, meta, shape}) std::remove(p.c_str());
}

TEST(model_id, tensor_data_changes_only_the_full_hash) {
  const std::string a = write_model("data_a", {1, 7, false});
  const std::string b = write_model("data_b", {2, 7, false});
  ASSERT_NE(read_bytes(a), read_bytes(b));
  const ids ia = ids_of(a), ib = ids_of(b);
  EXPECT_EQ(ia.content, ib.content);
  EXPECT_NE(ia.full, ib.full);
  std::remove(a.c_str());
  std::remove(b.c_str());
}

TEST(model_id, full_hash_reads_across_chunk_boundaries) {
  // Not a GGUF: the full hash reads any file. 8 MiB + a tail, so the last read is short.
  std::vector<uint8_t> bytes((8u << 20) + 4097);
  uint32_t x = 12345;
  for (uint8_t& c : bytes) {
    x = x * 1664525u + 1013904223u;
    c = static_cast<uint8_t>(x >> 24);
  }
  const std::string path = temp_path("big");
  write_bytes(path, bytes);
  auto h = model_full_hash(path);
  ASSERT_TRUE(h.ok()) << h.err().message;
  EXPECT_EQ(h.value(), static_cast<uint64_t>(XXH64(bytes.data(), bytes.size(), 0)));
  std::remove(path.c_str());
  const std::string empty = temp_path("empty");
  write_bytes(empty, {});
  auto he = model_full_hash(empty);
  ASSERT_TRUE(he.ok());
  EXPECT_EQ(he.value(), static_cast<uint64_t>(XXH64(nullptr, 0, 0)));
  std::remove(empty.c_str());
}

TEST(model_id, missing_file_is_io_error) {
  auto h = model_full_hash(temp_path("does_not_exist"));
  ASSERT_FALSE(h.ok());
  EXPECT_EQ(h.err().code, errc::io_error);
  auto d = model_full_hash(::testing::TempDir());  // a directory cannot be read as a file
  ASSERT_FALSE(d.ok());
  EXPECT_EQ(d.err().code, errc::io_error);
}

}  // namespace
}  // namespace lime
