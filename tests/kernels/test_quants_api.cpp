// dequantize_row / quantize_row argument handling: bad shapes, unsupported types, null pointers, and
// that every type the table marks computable is really handled.
#include <gtest/gtest.h>

#include <cstdint>
#include <vector>

#include "kernels/cpu/quants.h"
#include "kernels/tensor_type.h"

namespace {

using lime::kstatus;
using lime::tensor_type;
using lime::cpu::dequantize_row;
using lime::cpu::quantize_row;

TEST(QuantApi, PartialBlocksAndNegativeCountsAreBadShape) {
  std::vector<uint8_t> bytes(4096, 0);
  std::vector<float> f(1024, 0.f);
  struct c {
    tensor_type t;
    int64_t n;
  };
  for (const c& k : {c{tensor_type::q4_0, 31}, c{tensor_type::q8_0, 33}, c{tensor_type::q5_1, 16},
                     c{tensor_type::q4_k, 128}, c{tensor_type::q5_k, 255}, c{tensor_type::q6_k, 257},
                     c{tensor_type::q4_0, -32}, c{tensor_type::f32, -1}, c{tensor_type::f16, -2}}) {
    SCOPED_TRACE(lime::tensor_type_name(k.t));
    EXPECT_EQ(dequantize_row(k.t, bytes.data(), f.data(), k.n), kstatus::bad_shape);
    EXPECT_EQ(quantize_row(k.t, f.data(), bytes.data(), k.n), kstatus::bad_shape);
  }
  // An empty row is valid and writes nothing.
  f[0] = 5.f;
  EXPECT_EQ(dequantize_row(tensor_type::q4_k, bytes.data(), f.data(), 0), kstatus::ok);
  EXPECT_EQ(f[0], 5.f);
}

TEST(QuantApi, UnsupportedTypes) {
  std::vector<uint8_t> bytes(4096, 0);
  std::vector<float> f(1024, 1.f);
  for (tensor_type t : {tensor_type::q2_k, tensor_type::q3_k, tensor_type::q8_1, tensor_type::q8_k,
                        tensor_type::iq2_xxs, tensor_type::iq4_nl, tensor_type::i8, tensor_type::i32,
                        tensor_type::f64, tensor_type::mxfp4, static_cast<tensor_type>(4),
                        static_cast<tensor_type>(999)}) {
    EXPECT_EQ(dequantize_row(t, bytes.data(), f.data(), 256), kstatus::unsupported_type);
    EXPECT_EQ(quantize_row(t, f.data(), bytes.data(), 256), kstatus::unsupported_type);
  }
  EXPECT_EQ(f[0], 1.f);  // nothing written
  EXPECT_EQ(bytes[0], 0);
}

TEST(QuantApi, NullPointersAreBadArgument) {
  std::vector<uint8_t> bytes(4096, 0);
  std::vector<float> f(1024, 0.f);
  for (tensor_type t : {tensor_type::f32, tensor_type::f16, tensor_type::q4_0, tensor_type::q6_k}) {
    EXPECT_EQ(dequantize_row(t, nullptr, f.data(), 256), kstatus::bad_argument);
    EXPECT_EQ(dequantize_row(t, bytes.data(), nullptr, 256), kstatus::bad_argument);
    EXPECT_EQ(quantize_row(t, nullptr, bytes.data(), 256), kstatus::bad_argument);
    EXPECT_EQ(quantize_row(t, f.data(), nullptr, 256), kstatus::bad_argument);
  }
}

// The dispatch and the type table agree: every id the table knows is handled iff it is computable.
TEST(QuantApi, EveryComputableTypeIsHandled) {
  int n_computable = 0;
  for (uint32_t id = 0; id < 64; ++id) {
    const lime::tensor_type_info* info = lime::tensor_type_lookup(id);
    if (!info) continue;
    SCOPED_TRACE(info->name);
    const int64_t n = 2 * 256;  // a multiple of every block size
    std::vector<uint8_t> bytes(static_cast<size_t>(n) * 8, 0);
    std::vector<float> f(static_cast<size_t>(n), 0.25f);
    const kstatus want = info->computable ? kstatus::ok : kstatus::unsupported_type;
    EXPECT_EQ(quantize_row(static_cast<tensor_type>(id), f.data(), bytes.data(), n), want);
    EXPECT_EQ(dequantize_row(static_cast<tensor_type>(id), bytes.data(), f.data(), n), want);
    if (info->computable) {
      ++n_computable;
      for (float v : f) ASSERT_NEAR(v, 0.25f, 0.0025f);  // 0.25 survives every format within 1%
    }
  }
  EXPECT_EQ(n_computable, 11);  // f32 f16 bf16 q4_0 q4_1 q5_0 q5_1 q8_0 q4_k q5_k q6_k
}

}  // namespace
