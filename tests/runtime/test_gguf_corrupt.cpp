// GGUF reader on corrupt and hostile images: one test per validation rule, every truncation, random byte flips.
// Each bad image is built here: a valid file from the writer with bytes patched, or raw bytes.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <chrono>
#include <cstdio>
#include <random>

#include "tests/runtime/test_gguf_util.h"

namespace lime {
namespace {

using test::find_bytes;
using test::make_arr;
using test::make_int;
using test::make_str;
using test::parse_bytes;
using test::peek;
using test::poke;
using test::raw_bytes;
using test::write_or_die;

// A small valid file: a few kinds of metadata and two tensors ("tensor.a": q4_0 [64, 2] = 72 bytes at 0,
// "tensor.b": f32 [8] = 32 bytes at 96).
std::vector<uint8_t> base_file() {
  static const std::vector<uint8_t> bytes = [] {
    static uint8_t payload[128];
    for (int i = 0; i < 128; ++i) payload[i] = static_cast<uint8_t>(i * 3);
    gguf_writer w;
    w.set_str("general.architecture", "llama");
    w.set_u32("llama.block_count", 5);
    w.set_arr_str("tok.list", {"a", "bc", ""});
    w.set_arr_f32("tok.scores", {1.0f, 2.0f, 3.0f});
    w.set("nest", make_arr(gguf_type::array, {make_arr(gguf_type::i16, {make_int(gguf_type::i16, -3)})}));
    w.set_bool("flag", true);
    EXPECT_TRUE(w.add_tensor("tensor.a", tensor_type::q4_0, {64, 2}, payload).ok());
    EXPECT_TRUE(w.add_tensor("tensor.b", tensor_type::f32, {8}, payload).ok());
    return write_or_die(w);
  }();
  return bytes;
}

// Byte positions of one tensor info's fields in base_file().
struct info_pos {
  size_t n_dims, ne0, type, offset;
};
info_pos tensor_fields(const std::vector<uint8_t>& b, const char* name, uint32_t n_dims) {
  size_t p = find_bytes(b, name) + std::strlen(name);
  return info_pos{p, p + 4, p + 4 + 8 * n_dims, p + 8 + 8 * n_dims};
}

// Parses and expects failure with `code` and a message holding each of `needles`.
void expect_error(const std::vector<uint8_t>& b, errc code, std::initializer_list<const char*> needles) {
  auto r = parse_bytes(b);
  ASSERT_FALSE(r.ok()) << "accepted a bad image";
  EXPECT_EQ(r.err().code, code) << r.err().message;
  EXPECT_EQ(r.err().message.rfind("gguf: ", 0), 0u) << r.err().message;
  EXPECT_EQ(r.err().message.find('\n'), std::string::npos) << "message is not one line";
  for (const char* n : needles) EXPECT_NE(r.err().message.find(n), std::string::npos) << r.err().message;
}

TEST(GgufCorrupt, BaseFileIsValid) {
  auto f = parse_bytes(base_file());
  ASSERT_TRUE(f.ok()) << f.err().message;
  EXPECT_EQ(f->find_tensor("tensor.b")->offset, 96u);
}

TEST(GgufCorrupt, BadMagic) {
  auto b = base_file();
  b[0] = 'X';
  expect_error(b, errc::bad_format, {"magic"});
}

TEST(GgufCorrupt, UnsupportedVersions) {
  for (uint32_t v : {0u, 1u, 4u, 0xffffffffu}) {
    auto b = base_file();
    poke<uint32_t>(b, 4, v);
    expect_error(b, errc::unsupported, {"version"});
  }
  auto b = base_file();
  poke<uint32_t>(b, 4, 0x03000000u);  // 3 written big-endian
  expect_error(b, errc::unsupported, {"big-endian"});
}

TEST(GgufCorrupt, EveryTruncationFails) {
  const auto full = base_file();
  auto f = parse_bytes(full);
  ASSERT_TRUE(f.ok());
  const gguf_tensor_info& last = f->tensors().back();
  const size_t end = f->data_offset() + last.offset + last.n_bytes;  // trailing padding is optional
  ASSERT_LE(end, full.size());
  for (size_t n = 0; n < end; ++n) {
    std::vector<uint8_t> prefix(full.begin(), full.begin() + n);
    auto r = parse_bytes(prefix);
    ASSERT_FALSE(r.ok()) << "prefix of " << n << " bytes accepted";
    ASSERT_EQ(r.err().code, errc::bad_format) << n << ": " << r.err().message;
  }
  for (size_t n = end; n <= full.size(); ++n) {
    std::vector<uint8_t> prefix(full.begin(), full.begin() + n);
    EXPECT_TRUE(parse_bytes(prefix).ok()) << n;
  }
}

TEST(GgufCorrupt, NoTensorsNeedsNoPadding) {
  // llama.cpp's vocab-only files end right after their metadata.
  gguf_writer w;
  w.set_str("general.architecture", "gpt2");
  w.set_arr_str("tokenizer.ggml.tokens", {"!", "\""});
  auto full = write_or_die(w);
  raw_bytes r;
  r.header(0, 0);
  EXPECT_TRUE(parse_bytes(r.b).ok());  // 24 bytes: header only
  size_t meta_end = find_bytes(full, "\"") + 1;
  std::vector<uint8_t> unpadded(full.begin(), full.begin() + meta_end);
  auto f = parse_bytes(unpadded);
  ASSERT_TRUE(f.ok()) << f.err().message;
  EXPECT_EQ(f->get_array<std::string>("tokenizer.ggml.tokens")->size(), 2u);
}

TEST(GgufCorrupt, AbsurdCountsFailFast) {
  auto t0 = std::chrono::steady_clock::now();
  auto b = base_file();
  poke<uint64_t>(b, 16, uint64_t{1} << 60);  // n_kv
  expect_error(b, errc::bad_format, {"metadata entries"});
  b = base_file();
  poke<uint64_t>(b, 8, uint64_t{1} << 60);  // n_tensors
  expect_error(b, errc::bad_format, {"tensors"});
  b = base_file();
  poke<uint64_t>(b, 8, 3);  // one tensor more than there are infos for
  expect_error(b, errc::bad_format, {});

  for (uint32_t elem : {0u /*u8*/, 8u /*string*/, 9u /*array*/}) {
    raw_bytes r;
    r.header(0, 1).str("huge.array").put<uint32_t>(9).put<uint32_t>(elem).put<uint64_t>(uint64_t{1} << 60);
    r.put<uint64_t>(0);
    expect_error(r.b, errc::bad_format, {"'huge.array'", "1152921504606846976"});
  }
  {
    raw_bytes r;
    r.header(0, 1).put<uint64_t>(uint64_t{1} << 63);  // key length
    r.b.resize(r.b.size() + 32, 'k');                  // enough bytes for one entry to be plausible
    expect_error(r.b, errc::bad_format, {"string length"});
  }
  {
    raw_bytes r;
    r.header(0, 1).str("long.str").put<uint32_t>(8).put<uint64_t>(~uint64_t{0}).put<uint64_t>(0);
    expect_error(r.b, errc::bad_format, {"'long.str'", "string length"});
  }
  {
    auto b2 = base_file();  // tensor name length
    size_t name = find_bytes(b2, "tensor.a");
    poke<uint64_t>(b2, name - 8, uint64_t{1} << 62);
    expect_error(b2, errc::bad_format, {"tensor info 0", "string length"});
  }
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0).count();
  EXPECT_LT(ms, 1000);  // no giant allocation or loop behind any of these
}

TEST(GgufCorrupt, MetadataValueBudget) {
  const uint64_t n = (uint64_t{1} << 24) + 1;
  raw_bytes r;
  r.header(0, 1).str("too.many").put<uint32_t>(9).put<uint32_t>(0).put<uint64_t>(n);
  r.b.resize(r.b.size() + n, 7);
  expect_error(r.b, errc::unsupported, {"'too.many'"});
}

gguf_value nest(int levels) {
  gguf_value v = make_arr(gguf_type::u8, {make_int(gguf_type::u8, 1)});
  for (int i = 1; i < levels; ++i) v = make_arr(gguf_type::array, {v});
  return v;
}

TEST(GgufCorrupt, ArrayNestingDepth) {
  gguf_writer ok;
  ok.set("deep", nest(8));
  auto f = parse_bytes(write_or_die(ok));
  ASSERT_TRUE(f.ok()) << f.err().message;
  gguf_writer bad;
  bad.set("deep", nest(9));
  expect_error(write_or_die(bad), errc::bad_format, {"'deep'", "nested"});
}

TEST(GgufCorrupt, UnknownValueTypes) {
  for (uint32_t t : {13u, 100u, 0xffffffffu}) {
    auto b = base_file();
    size_t key = find_bytes(b, "llama.block_count");
    poke<uint32_t>(b, key + 17, t);
    expect_error(b, errc::bad_format, {"'llama.block_count'", "type"});
  }
  auto b = base_file();
  size_t key = find_bytes(b, "tok.scores");
  ASSERT_EQ(peek<uint32_t>(b, key + 10), 9u);  // array
  poke<uint32_t>(b, key + 14, 13u);          // its element type
  expect_error(b, errc::bad_format, {"'tok.scores'", "element type 13"});
}

TEST(GgufCorrupt, BoolMustBeZeroOrOne) {
  auto b = base_file();
  size_t key = find_bytes(b, "flag");
  ASSERT_EQ(b[key + 8], 1);
  b[key + 8] = 2;
  expect_error(b, errc::bad_format, {"'flag'", "bool"});
}

TEST(GgufCorrupt, EmptyKeyAndEmptyTensorName) {
  gguf_writer w;
  w.set_u32("", 1);
  expect_error(write_or_die(w), errc::bad_format, {"empty key"});
  raw_bytes r;
  r.header(1, 0).str("").put<uint32_t>(1).put<int64_t>(1).put<uint32_t>(0).put<uint64_t>(0);
  r.b.resize(64, 0);
  expect_error(r.b, errc::bad_format, {"empty tensor name"});
}

TEST(GgufCorrupt, DuplicateKeys) {
  gguf_writer w;
  w.set_u32("dup.x1", 1);
  w.set_u32("dup.x2", 2);
  auto b = write_or_die(w);
  b[find_bytes(b, "dup.x2") + 5] = '1';
  expect_error(b, errc::bad_format, {"duplicate key", "'dup.x1'"});
}

TEST(GgufCorrupt, DuplicateTensorNames) {
  auto b = base_file();
  b[find_bytes(b, "tensor.b") + 7] = 'a';
  expect_error(b, errc::bad_format, {"duplicate tensor", "'tensor.a'"});
}

TEST(GgufCorrupt, TensorDims) {
  struct patch {
    const char* tensor;
    uint32_t n_dims;
    size_t dim;
    int64_t value;
    errc code;
    const char* needle;
  };
  const patch patches[] = {
      {"tensor.b", 1, 0, 0, errc::bad_format, "must be >= 1"},
      {"tensor.b", 1, 0, -8, errc::bad_format, "must be >= 1"},
      {"tensor.a", 2, 1, int64_t{1} << 60, errc::bad_format, "element count overflows"},
      {"tensor.b", 1, 0, int64_t{1} << 62, errc::bad_format, "byte size overflows"},
      {"tensor.a", 2, 0, 48, errc::bad_format, "block size 32"},
      {"tensor.b", 1, 0, int64_t{1} << 40, errc::bad_format, "past end of file"},
  };
  for (const patch& p : patches) {
    auto b = base_file();
    info_pos pos = tensor_fields(b, p.tensor, p.n_dims);
    poke<int64_t>(b, pos.ne0 + 8 * p.dim, p.value);
    expect_error(b, p.code, {p.tensor, p.needle});
  }
  for (uint32_t nd : {0u, 5u, 1000u}) {
    auto b = base_file();
    poke<uint32_t>(b, tensor_fields(b, "tensor.a", 2).n_dims, nd);
    expect_error(b, errc::bad_format, {"'tensor.a'", "n_dims"});
  }
}

TEST(GgufCorrupt, UnknownTensorType) {
  for (uint32_t id : {4u, 31u, 1000u}) {
    auto b = base_file();
    poke<uint32_t>(b, tensor_fields(b, "tensor.b", 1).type, id);
    expect_error(b, errc::unsupported, {"'tensor.b'", ("type id " + std::to_string(id)).c_str()});
  }
}

TEST(GgufCorrupt, TensorOffsets) {
  struct patch {
    uint64_t offset;
    const char* needle;
  };
  const patch patches[] = {
      {104, "alignment"},                  // misaligned
      {uint64_t{1} << 40, "past end of file"},
      {~uint64_t{31}, "past end of file"},  // aligned, near 2^64: must not wrap
      {64, "overlap"},                      // inside tensor.a's [0, 72)
      {0, "overlap"},                       // same start
  };
  for (const patch& p : patches) {
    auto b = base_file();
    poke<uint64_t>(b, tensor_fields(b, "tensor.b", 1).offset, p.offset);
    expect_error(b, errc::bad_format, {"tensor", p.needle});
  }
  // Out of order but disjoint is fine.
  auto b = base_file();
  poke<uint64_t>(b, tensor_fields(b, "tensor.a", 2).offset, 128);
  poke<uint64_t>(b, tensor_fields(b, "tensor.b", 1).offset, 0);
  b.resize(b.size() + 128, 0);
  EXPECT_TRUE(parse_bytes(b).ok());
}

TEST(GgufCorrupt, GeneralAlignment) {
  const gguf_value bad_types[] = {make_str("32"), make_int(gguf_type::u64, 32), make_int(gguf_type::i32, 32)};
  for (const gguf_value& v : bad_types) {
    gguf_writer w;
    w.set("general.alignment", v);
    expect_error(write_or_die(w), errc::bad_format, {"general.alignment", "expected u32"});
  }
  for (uint32_t a : {0u, 48u, 0x80000001u}) {
    gguf_writer w;
    w.set_alignment(64);
    auto b = write_or_die(w);
    size_t key = find_bytes(b, "general.alignment");
    poke<uint32_t>(b, key + 21, a);
    expect_error(b, errc::bad_format, {"general.alignment", "power of two"});
  }
  // A power of two larger than the file: no writer makes that (its header is padded to the alignment), and a
  // 2 GiB one on a file without tensors once made the writer pad 2 GiB when it wrote the file back.
  {
    gguf_writer w;
    w.set_alignment(64);
    auto b = write_or_die(w);
    ASSERT_TRUE(parse_bytes(b).ok());
    size_t key = find_bytes(b, "general.alignment");
    poke<uint32_t>(b, key + 21, 0x80000000u);
    expect_error(b, errc::bad_format, {"general.alignment", "larger than the file"});
    poke<uint32_t>(b, key + 21, static_cast<uint32_t>(b.size()));  // 64: as long as the file, still a GGUF file
    EXPECT_TRUE(parse_bytes(b).ok());
  }
}

// Touches everything a parsed file exposes, so a bad pointer or length would be read.
uint64_t touch_all(const gguf_file& f) {
  uint64_t sum = 0;
  for (const gguf_kv& kv : f.metadata()) {
    sum += kv.key.size() + kv.value.arr.size() + kv.value.str.size();
    sum += f.get_or<uint64_t>(kv.key, 0) + f.get_or<std::string>(kv.key, "").size();
    if (auto a = f.get_array<std::string>(kv.key); a.ok()) sum += a->size();
    if (auto a = f.get_array<float>(kv.key); a.ok()) sum += a->size();
  }
  for (const gguf_tensor_info& t : f.tensors()) {
    const uint8_t* d = f.tensor_data(t);
    for (uint64_t i = 0; i < t.n_bytes; ++i) sum += d[i];
  }
  return sum;
}

TEST(GgufCorrupt, RandomByteFlipsNeverCrash) {
  const auto base = base_file();
  std::mt19937_64 rng(20240611);
  int accepted = 0, rejected = 0;
  for (int iter = 0; iter < 4000; ++iter) {
    auto b = base;
    int flips = 1 + static_cast<int>(rng() % 6);
    for (int k = 0; k < flips; ++k) {
      size_t pos = rng() % b.size();
      // Half the time a small edit, else a random byte; bias towards the header and infos where damage matters.
      if (rng() % 2) pos %= std::min<size_t>(b.size(), 512);
      b[pos] = (rng() % 2) ? static_cast<uint8_t>(rng()) : static_cast<uint8_t>(b[pos] ^ (1u << (rng() % 8)));
    }
    if (rng() % 8 == 0) b.resize(rng() % (b.size() + 1));
    auto r = parse_bytes(b);
    if (r.ok()) {
      ++accepted;
      touch_all(*r);
    } else {
      ++rejected;
      ASSERT_EQ(r.err().message.rfind("gguf: ", 0), 0u) << r.err().message;
      ASSERT_TRUE(r.err().code == errc::bad_format || r.err().code == errc::unsupported) << r.err().message;
    }
  }
  EXPECT_GT(rejected, 0);
  EXPECT_GT(accepted, 0);  // flips inside tensor data or string bytes are still valid files
}

TEST(GgufCorrupt, OpenErrors) {
  auto missing = gguf_file::open("/nonexistent-lime/model.gguf");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.err().code, errc::io_error);
  EXPECT_NE(missing.err().message.find("/nonexistent-lime/model.gguf"), std::string::npos);

  auto dir = gguf_file::open(::testing::TempDir());
  ASSERT_FALSE(dir.ok());
  EXPECT_EQ(dir.err().code, errc::io_error);

  std::string empty = ::testing::TempDir() + "lime_gguf_empty.gguf";
  std::fclose(std::fopen(empty.c_str(), "wb"));
  auto e = gguf_file::open(empty);
  ASSERT_FALSE(e.ok());
  EXPECT_EQ(e.err().code, errc::bad_format);
  EXPECT_NE(e.err().message.find(empty), std::string::npos);
  std::remove(empty.c_str());

  std::string trunc = ::testing::TempDir() + "lime_gguf_trunc.gguf";
  auto b = base_file();
  FILE* fp = std::fopen(trunc.c_str(), "wb");
  std::fwrite(b.data(), 1, b.size() - 40, fp);
  std::fclose(fp);
  auto t = gguf_file::open(trunc);
  ASSERT_FALSE(t.ok());
  EXPECT_EQ(t.err().code, errc::bad_format);
  EXPECT_NE(t.err().message.find("'tensor.b'"), std::string::npos) << t.err().message;
  std::remove(trunc.c_str());
}

}  // namespace
}  // namespace lime
