// GGUF reader: round trips of every value type and of tensors (alignment 32 and 64), typed accessors, moves.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <random>

#include "tests/runtime/test_gguf_util.h"

namespace lime {
namespace {

using test::make_arr;
using test::make_float;
using test::make_int;
using test::make_str;
using test::parse_bytes;
using test::same_value;
using test::write_or_die;

// Every value type, edge values, nested arrays and string arrays, in a fixed order.
std::vector<gguf_kv> every_kind_of_value() {
  std::vector<gguf_kv> kvs;
  auto add = [&](std::string k, gguf_value v) { kvs.push_back(gguf_kv{std::move(k), std::move(v)}); };
  add("t.u8", make_int(gguf_type::u8, 255));
  add("t.i8", make_int(gguf_type::i8, -128));
  add("t.u16", make_int(gguf_type::u16, 65535));
  add("t.i16", make_int(gguf_type::i16, -32768));
  add("t.u32", make_int(gguf_type::u32, 4294967295LL));
  add("t.i32", make_int(gguf_type::i32, std::numeric_limits<int32_t>::min()));
  add("t.u64", make_int(gguf_type::u64, -1));  // all ones: UINT64_MAX
  add("t.i64", make_int(gguf_type::i64, std::numeric_limits<int64_t>::min()));
  add("t.f32", make_float(gguf_type::f32, 9.999999747378752e-06));  // exactly a float (1e-5f)
  add("t.f32.nan", make_float(gguf_type::f32, std::numeric_limits<float>::quiet_NaN()));
  add("t.f32.neg0", make_float(gguf_type::f32, -0.0));
  add("t.f64", make_float(gguf_type::f64, 0.1));
  add("t.f64.inf", make_float(gguf_type::f64, -std::numeric_limits<double>::infinity()));
  add("t.bool.true", make_int(gguf_type::boolean, 1));
  add("t.bool.false", make_int(gguf_type::boolean, 0));
  add("t.str", make_str("h\xc3\xa9llo"));
  add("t.str.empty", make_str(""));
  add("t.str.nul", make_str(std::string("a\0b", 3)));
  add("t.arr.u8", make_arr(gguf_type::u8, {make_int(gguf_type::u8, 0), make_int(gguf_type::u8, 200)}));
  add("t.arr.i16", make_arr(gguf_type::i16, {make_int(gguf_type::i16, -2), make_int(gguf_type::i16, 300)}));
  add("t.arr.i32", make_arr(gguf_type::i32, {make_int(gguf_type::i32, -1), make_int(gguf_type::i32, 7)}));
  add("t.arr.u64", make_arr(gguf_type::u64, {make_int(gguf_type::u64, -1)}));
  add("t.arr.f32", make_arr(gguf_type::f32, {make_float(gguf_type::f32, 0.5), make_float(gguf_type::f32, -3.0)}));
  add("t.arr.f64", make_arr(gguf_type::f64, {make_float(gguf_type::f64, 1e300)}));
  add("t.arr.bool",
      make_arr(gguf_type::boolean, {make_int(gguf_type::boolean, 1), make_int(gguf_type::boolean, 0)}));
  add("t.arr.str", make_arr(gguf_type::string, {make_str("<s>"), make_str(""), make_str("\xe2\x96\x81the")}));
  add("t.arr.empty", make_arr(gguf_type::i32, {}));
  add("t.arr.nested",
      make_arr(gguf_type::array,
               {make_arr(gguf_type::i32, {make_int(gguf_type::i32, 1), make_int(gguf_type::i32, 2)}),
                make_arr(gguf_type::string, {make_str("x")}), make_arr(gguf_type::u8, {})}));
  gguf_value inner = make_arr(gguf_type::f64, {make_float(gguf_type::f64, 2.5)});
  add("t.arr.deep", make_arr(gguf_type::array, {make_arr(gguf_type::array, {inner})}));
  return kvs;
}

TEST(GgufReader, RoundTripsEveryValueType) {
  const std::vector<gguf_kv> kvs = every_kind_of_value();
  gguf_writer w;
  for (const gguf_kv& kv : kvs) w.set(kv.key, kv.value);
  auto f = parse_bytes(write_or_die(w));
  ASSERT_TRUE(f.ok()) << f.err().message;
  EXPECT_EQ(f->version(), 3u);
  EXPECT_EQ(f->alignment(), 32u);
  EXPECT_TRUE(f->tensors().empty());
  ASSERT_EQ(f->metadata().size(), kvs.size());
  for (size_t i = 0; i < kvs.size(); ++i) {  // insertion order kept
    EXPECT_EQ(f->metadata()[i].key, kvs[i].key);
    EXPECT_TRUE(same_value(f->metadata()[i].value, kvs[i].value)) << kvs[i].key;
    const gguf_value* found = f->find(kvs[i].key);
    ASSERT_NE(found, nullptr) << kvs[i].key;
    EXPECT_EQ(found, &f->metadata()[i].value);
  }
  EXPECT_EQ(f->find("t.absent"), nullptr);
  EXPECT_EQ(f->find("t.u8")->u, 255u);
  EXPECT_EQ(static_cast<int64_t>(f->find("t.i8")->u), -128);  // sign-extended
  EXPECT_TRUE(f->find("t.i8")->is_signed());
  EXPECT_TRUE(f->find("t.u32")->is_integer());
  EXPECT_FALSE(f->find("t.u32")->is_signed());
  EXPECT_FALSE(f->find("t.f32")->is_integer());
  EXPECT_TRUE(std::isnan(f->find("t.f32.nan")->f));
  EXPECT_TRUE(std::signbit(f->find("t.f32.neg0")->f));
  EXPECT_EQ(f->find("t.str.nul")->str.size(), 3u);
  const gguf_value* deep = f->find("t.arr.deep");
  EXPECT_EQ(deep->arr[0].arr[0].arr[0].f, 2.5);
}

TEST(GgufReader, VersionTwoReadsTheSame) {
  gguf_writer w;
  w.set_version(2);
  w.set_u32("a.b", 7);
  auto f = parse_bytes(write_or_die(w));
  ASSERT_TRUE(f.ok()) << f.err().message;
  EXPECT_EQ(f->version(), 2u);
  EXPECT_EQ(f->get<uint32_t>("a.b").value(), 7u);
}

struct tensor_case {
  const char* name;
  tensor_type type;
  std::vector<int64_t> dims;
  uint64_t expect_bytes;  // from GGML's block layouts, worked out by hand
};

class GgufTensors : public ::testing::TestWithParam<uint32_t> {};

TEST_P(GgufTensors, RoundTripWithAlignment) {
  const uint32_t align = GetParam();
  const std::vector<tensor_case> cases = {
      {"a.f32", tensor_type::f32, {3, 5}, 60},
      {"b.f16", tensor_type::f16, {7}, 14},
      {"c.q4_0", tensor_type::q4_0, {64, 2}, 2 * 2 * 18},
      {"d.q8_0", tensor_type::q8_0, {32, 1, 3}, 3 * 34},
      {"e.q4_k", tensor_type::q4_k, {256, 3}, 3 * 144},
      {"f.q6_k", tensor_type::q6_k, {512, 1, 1, 2}, 4 * 210},
      {"g.bf16", tensor_type::bf16, {1}, 2},
  };
  std::mt19937 rng(align);
  std::vector<std::vector<uint8_t>> payloads;
  gguf_writer w;
  w.set_alignment(align);
  w.set_str("general.architecture", "llama");
  for (const tensor_case& c : cases) {
    std::vector<uint8_t> p(c.expect_bytes);
    for (uint8_t& b : p) b = static_cast<uint8_t>(rng());
    payloads.push_back(std::move(p));
  }
  for (size_t i = 0; i < cases.size(); ++i) {
    ASSERT_TRUE(w.add_tensor(cases[i].name, cases[i].type, cases[i].dims, payloads[i].data()).ok());
  }
  auto f = parse_bytes(write_or_die(w));
  ASSERT_TRUE(f.ok()) << f.err().message;
  EXPECT_EQ(f->alignment(), align);
  EXPECT_EQ(f->data_offset() % align, 0u);
  if (align == 32) {
    EXPECT_EQ(f->find("general.alignment"), nullptr);  // default: not written
  } else {
    EXPECT_EQ(f->get<uint32_t>("general.alignment").value(), align);
  }
  ASSERT_EQ(f->tensors().size(), cases.size());
  for (size_t i = 0; i < cases.size(); ++i) {
    const gguf_tensor_info& t = f->tensors()[i];
    EXPECT_EQ(t.name, cases[i].name);
    EXPECT_EQ(t.type, cases[i].type);
    ASSERT_EQ(t.n_dims, cases[i].dims.size());
    for (uint32_t d = 0; d < 4; ++d) EXPECT_EQ(t.ne[d], d < t.n_dims ? cases[i].dims[d] : 1);
    EXPECT_EQ(t.n_bytes, cases[i].expect_bytes) << t.name;
    EXPECT_EQ(t.offset % align, 0u);
    EXPECT_EQ(f->find_tensor(cases[i].name), &t);
    const uint8_t* data = f->tensor_data(t);
    EXPECT_EQ(static_cast<uint64_t>(data - f->file_data()) % align, 0u);
    EXPECT_EQ(reinterpret_cast<uintptr_t>(data) % std::min<uint32_t>(align, 64), 0u);  // owned copy: 64-aligned
    EXPECT_EQ(std::memcmp(data, payloads[i].data(), t.n_bytes), 0) << t.name;
  }
  EXPECT_EQ(f->find_tensor("nope"), nullptr);
}

INSTANTIATE_TEST_SUITE_P(Alignments, GgufTensors, ::testing::Values(32u, 64u, 1u, 256u));

// ---- typed accessors ----

result<gguf_file> accessor_file() {
  gguf_writer w;
  w.set_u32("pad", 4294967295u);
  w.set_i32("neg", -1);
  w.set("u8", make_int(gguf_type::u8, 200));
  w.set("i64min", make_int(gguf_type::i64, std::numeric_limits<int64_t>::min()));
  w.set("u64max", make_int(gguf_type::u64, -1));
  w.set_u64("u64small", 12345);
  w.set_f32("eps", 1e-5f);
  w.set("big", make_float(gguf_type::f64, 1e300));
  w.set_bool("flag", true);
  w.set_str("name", "stories");
  w.set_arr_i32("ids", {3, -4, 5});
  w.set("uids", make_arr(gguf_type::u32, {make_int(gguf_type::u32, 1), make_int(gguf_type::u32, 4294967295LL)}));
  w.set_arr_f32("scores", {0.25f, -1.5f});
  w.set_arr_str("tokens", {"<unk>", "", "a b"});
  w.set("bytes", make_arr(gguf_type::u8, {make_int(gguf_type::u8, 9), make_int(gguf_type::u8, 250)}));
  w.set("empty", make_arr(gguf_type::u8, {}));
  w.set("nested", make_arr(gguf_type::array, {make_arr(gguf_type::i32, {})}));
  auto bytes = w.write_memory();
  if (!bytes) return bytes.err();
  return parse_bytes(*bytes);
}

TEST(GgufAccessors, IntegerConversionsCheckRange) {
  auto f = accessor_file();
  ASSERT_TRUE(f.ok()) << f.err().message;
  EXPECT_EQ(f->get<uint32_t>("pad").value(), 4294967295u);
  EXPECT_EQ(f->get<int64_t>("pad").value(), 4294967295LL);
  EXPECT_EQ(f->get<uint64_t>("pad").value(), 4294967295ULL);
  auto as_i32 = f->get<int32_t>("pad");
  ASSERT_FALSE(as_i32.ok());
  EXPECT_EQ(as_i32.err().code, errc::invalid_argument);
  EXPECT_NE(as_i32.err().message.find("'pad'"), std::string::npos) << as_i32.err().message;

  EXPECT_EQ(f->get<int32_t>("neg").value(), -1);
  EXPECT_EQ(f->get<int8_t>("neg").value(), -1);
  EXPECT_EQ(f->get<int64_t>("neg").value(), -1);
  EXPECT_EQ(f->get<uint32_t>("neg").err().code, errc::invalid_argument);
  EXPECT_EQ(f->get<uint64_t>("neg").err().code, errc::invalid_argument);

  EXPECT_EQ(f->get<uint8_t>("u8").value(), 200);
  EXPECT_EQ(f->get<uint16_t>("u8").value(), 200);
  EXPECT_EQ(f->get<int16_t>("u8").value(), 200);
  EXPECT_EQ(f->get<int8_t>("u8").err().code, errc::invalid_argument);

  EXPECT_EQ(f->get<int64_t>("i64min").value(), std::numeric_limits<int64_t>::min());
  EXPECT_EQ(f->get<int32_t>("i64min").err().code, errc::invalid_argument);
  EXPECT_EQ(f->get<uint64_t>("u64max").value(), std::numeric_limits<uint64_t>::max());
  EXPECT_EQ(f->get<int64_t>("u64max").err().code, errc::invalid_argument);
  EXPECT_EQ(f->get<uint16_t>("u64small").value(), 12345);
  EXPECT_EQ(f->get<uint8_t>("u64small").err().code, errc::invalid_argument);
}

TEST(GgufAccessors, FloatsBoolsStringsAndKinds) {
  auto f = accessor_file();
  ASSERT_TRUE(f.ok()) << f.err().message;
  EXPECT_EQ(f->get<float>("eps").value(), 1e-5f);
  EXPECT_EQ(f->get<double>("eps").value(), static_cast<double>(1e-5f));
  EXPECT_EQ(f->get<double>("big").value(), 1e300);
  EXPECT_EQ(f->get<float>("big").err().code, errc::invalid_argument);  // finite f64 that overflows float
  EXPECT_TRUE(f->get<bool>("flag").value());
  EXPECT_EQ(f->get<std::string>("name").value(), "stories");

  // Wrong kinds: bad_format, naming the key.
  auto e1 = f->get<float>("pad");
  ASSERT_FALSE(e1.ok());
  EXPECT_EQ(e1.err().code, errc::bad_format);
  EXPECT_NE(e1.err().message.find("'pad'"), std::string::npos);
  EXPECT_EQ(f->get<std::string>("pad").err().code, errc::bad_format);
  EXPECT_EQ(f->get<uint32_t>("name").err().code, errc::bad_format);
  EXPECT_EQ(f->get<uint32_t>("eps").err().code, errc::bad_format);
  EXPECT_EQ(f->get<bool>("pad").err().code, errc::bad_format);
  EXPECT_EQ(f->get<uint32_t>("flag").err().code, errc::bad_format);
  EXPECT_EQ(f->get<uint32_t>("ids").err().code, errc::bad_format);

  auto missing = f->get<uint32_t>("nope");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.err().code, errc::missing);
  EXPECT_NE(missing.err().message.find("'nope'"), std::string::npos);

  EXPECT_EQ(f->get_or<uint32_t>("nope", 17u), 17u);
  EXPECT_EQ(f->get_or<int32_t>("pad", -5), -5);  // present but does not convert
  EXPECT_EQ(f->get_or<uint32_t>("pad", 0u), 4294967295u);
  EXPECT_EQ(f->get_or<std::string>("name", "x"), "stories");
  EXPECT_EQ(f->get_or<std::string>("nope", "x"), "x");
  EXPECT_EQ(f->get_or<float>("eps", 2.0f), 1e-5f);
  EXPECT_FALSE(f->get_or<bool>("nope", false));
}

TEST(GgufAccessors, Arrays) {
  auto f = accessor_file();
  ASSERT_TRUE(f.ok()) << f.err().message;
  EXPECT_EQ(f->get_array<int32_t>("ids").value(), (std::vector<int32_t>{3, -4, 5}));
  EXPECT_EQ(f->get_array<int64_t>("ids").value(), (std::vector<int64_t>{3, -4, 5}));
  auto neg = f->get_array<uint32_t>("ids");
  ASSERT_FALSE(neg.ok());
  EXPECT_EQ(neg.err().code, errc::invalid_argument);
  EXPECT_NE(neg.err().message.find("'ids'[1]"), std::string::npos) << neg.err().message;

  EXPECT_EQ(f->get_array<uint32_t>("uids").value(), (std::vector<uint32_t>{1, 4294967295u}));
  EXPECT_EQ(f->get_array<uint64_t>("uids").value(), (std::vector<uint64_t>{1, 4294967295u}));
  EXPECT_EQ(f->get_array<int32_t>("uids").err().code, errc::invalid_argument);

  EXPECT_EQ(f->get_array<float>("scores").value(), (std::vector<float>{0.25f, -1.5f}));
  EXPECT_EQ(f->get_array<double>("scores").value(), (std::vector<double>{0.25, -1.5}));
  EXPECT_EQ(f->get_array<std::string>("tokens").value(), (std::vector<std::string>{"<unk>", "", "a b"}));
  EXPECT_EQ(f->get_array<uint8_t>("bytes").value(), (std::vector<uint8_t>{9, 250}));
  EXPECT_EQ(f->get_array<int8_t>("bytes").err().code, errc::invalid_argument);

  EXPECT_TRUE(f->get_array<std::string>("empty").value().empty());
  EXPECT_TRUE(f->get_array<float>("empty").value().empty());

  EXPECT_EQ(f->get_array<float>("tokens").err().code, errc::bad_format);
  EXPECT_EQ(f->get_array<std::string>("ids").err().code, errc::bad_format);
  EXPECT_EQ(f->get_array<int32_t>("nested").err().code, errc::bad_format);
  EXPECT_EQ(f->get_array<int32_t>("pad").err().code, errc::bad_format);
  EXPECT_EQ(f->get_array<int32_t>("nope").err().code, errc::missing);
}

TEST(GgufReader, MoveKeepsLookupsValid) {
  auto r = accessor_file();
  ASSERT_TRUE(r.ok()) << r.err().message;
  gguf_file a = std::move(r).value();
  gguf_file b = std::move(a);
  EXPECT_EQ(b.get<std::string>("name").value(), "stories");
  auto other = accessor_file();
  ASSERT_TRUE(other.ok());
  gguf_file c = std::move(other).value();
  c = std::move(b);
  EXPECT_EQ(c.get<uint32_t>("pad").value(), 4294967295u);
  ASSERT_NE(c.find("tokens"), nullptr);
  EXPECT_EQ(c.find("tokens")->arr.size(), 3u);
}

TEST(GgufReader, OpenMapsAFile) {
  std::vector<float> weights(48);
  for (size_t i = 0; i < weights.size(); ++i) weights[i] = static_cast<float>(i) * 0.5f;
  gguf_writer w;
  w.set_str("general.architecture", "llama");
  ASSERT_TRUE(w.add_tensor("w", tensor_type::f32, {16, 3}, weights.data()).ok());
  std::string path = ::testing::TempDir() + "lime_gguf_open_test.gguf";
  ASSERT_TRUE(w.write_file(path).ok());
  auto f = gguf_file::open(path);
  ASSERT_TRUE(f.ok()) << f.err().message;
  EXPECT_EQ(f->path(), path);
  const gguf_tensor_info* t = f->find_tensor("w");
  ASSERT_NE(t, nullptr);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(f->tensor_data(*t)) % 32, 0u);  // mapping is page aligned
  EXPECT_EQ(std::memcmp(f->tensor_data(*t), weights.data(), t->n_bytes), 0);
  EXPECT_EQ(f->file_size(), f->data_offset() + 192);
  // The mapping is the file: same bytes as write_memory().
  auto mem = w.write_memory();
  ASSERT_TRUE(mem.ok());
  ASSERT_EQ(mem->size(), f->file_size());
  EXPECT_EQ(std::memcmp(mem->data(), f->file_data(), mem->size()), 0);
  std::remove(path.c_str());
}

}  // namespace
}  // namespace lime
