// The AVX2 / AVX-512 K-quant matmuls (kernels/cpu/x86/matmul_kquants_*.cpp) against matmul_ref, bit for bit:
// random quantized rows, batches and row ranges, batch invariance, hand-made blocks with extreme scales.
// Variants this CPU lacks are skipped.
#include <gtest/gtest.h>

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "kernels/cpu/cpu_tuning.h"
#include "kernels/cpu/isa.h"
#include "kernels/cpu/matmul.h"
#include "kernels/cpu/quants.h"
#include "kernels/quant_blocks.h"
#include "kernels/tensor_type.h"
#include "tests/kernels/matmul_args_common.h"

#if defined(LIME_ARCH_X86)
#include "kernels/cpu/x86/matmul_x86.h"
#endif

namespace lime::cpu {
namespace {

using test::make_args;

#if defined(LIME_ARCH_X86)

struct variant {
  const char* name;
  kstatus (*fn)(const matmul_args&);
  bool (*available)();
};

bool have_avx2() { return isa_available(isa::avx2); }
bool have_avx512() { return isa_available(isa::avx512); }

const variant k_variants[] = {
    {"avx2", matmul_kquant_avx2, have_avx2},
    {"avx512", matmul_kquant_avx512, have_avx512},
};
const tensor_type k_types[] = {tensor_type::q4_k, tensor_type::q5_k, tensor_type::q6_k};

struct param {
  int variant;
  tensor_type type;
};

std::string param_name(const testing::TestParamInfo<param>& p) {
  return std::string(k_variants[p.param.variant].name) + "_" + tensor_type_name(p.param.type);
}

std::vector<float> random_floats(size_t n, uint32_t seed, float lo, float hi) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> dist(lo, hi);
  std::vector<float> v(n);
  for (float& f : v) f = dist(rng);
  return v;
}

// n_rows quantized rows of k elements; each row has its own magnitude (1e-4 .. 10) and an offset, so the
// K-quant scales, mins and fp16 super-scales (subnormal ones too) vary between rows.
std::vector<uint8_t> random_rows(tensor_type t, int64_t n_rows, int64_t k, uint32_t seed) {
  const size_t row_bytes = tensor_row_bytes(t, k);
  std::vector<uint8_t> w(n_rows * row_bytes);
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> u(-1.f, 1.f);
  for (int64_t r = 0; r < n_rows; ++r) {
    const float mag = std::pow(10.f, -4.f + 5.f * (0.5f + 0.5f * u(rng)));
    const float shift = 0.3f * mag * u(rng);
    std::vector<float> row(k);
    for (float& f : row) f = mag * u(rng) + shift;
    EXPECT_EQ(quantize_row(t, row.data(), &w[r * row_bytes], k), kstatus::ok);
  }
  return w;
}

// Runs matmul_ref and the variant over rows [rb, re) into NaN-filled outputs and compares all bytes (rows
// outside the range must stay untouched in both).
void expect_same(const variant& v, const matmul_args& base, int64_t rb, int64_t re, const std::string& what) {
  const size_t n = static_cast<size_t>(base.n_cols * base.n_rows);
  std::vector<float> want(n, std::nanf("1")), got(n, std::nanf("1"));
  matmul_args a = base;
  a.row_begin = rb;
  a.row_end = re;
  a.y = want.data();
  ASSERT_EQ(matmul_ref(a), kstatus::ok) << what;
  a.y = got.data();
  ASSERT_EQ(v.fn(a), kstatus::ok) << what;
  if (std::memcmp(want.data(), got.data(), n * sizeof(float)) != 0) {
    for (size_t i = 0; i < n; ++i) {
      uint32_t bw, bg;
      std::memcpy(&bw, &want[i], 4);
      std::memcpy(&bg, &got[i], 4);
      ASSERT_EQ(bw, bg) << what << " rows [" << rb << "," << re << ") col " << i / base.n_rows << " row "
                        << i % base.n_rows << ": " << want[i] << " vs " << got[i];
    }
  }
}

class kquant_simd : public testing::TestWithParam<param> {
 protected:
  void SetUp() override {
    if (!k_variants[GetParam().variant].available()) {
      GTEST_SKIP() << k_variants[GetParam().variant].name << " not available on this CPU";
    }
  }
  const variant& var() const { return k_variants[GetParam().variant]; }
  tensor_type type() const { return GetParam().type; }
};

TEST_P(kquant_simd, random_rows_equal_reference) {
  const int64_t n_rows = 11;  // not a multiple of any tile height
  for (int64_t k : {256, 512, 768, 2048, 2560}) {  // 2560: more than one staged chunk
    const std::vector<uint8_t> w = random_rows(type(), n_rows, k, 17 + static_cast<uint32_t>(k));
    for (int64_t n_cols : {1, 2, 7, 16, 64, 67}) {
      const std::vector<float> x = random_floats(n_cols * k, 23 + static_cast<uint32_t>(k + n_cols), -2.f, 2.f);
      const matmul_args base = make_args(type(), w.data(), n_rows, k, x.data(), n_cols, nullptr);
      const std::string what = "k=" + std::to_string(k) + " n_cols=" + std::to_string(n_cols);
      const int64_t ranges[][2] = {{0, n_rows}, {1, 10}, {3, 4}, {5, 5}, {6, n_rows}, {0, 3}};
      for (const auto& rg : ranges) expect_same(var(), base, rg[0], rg[1], what);
    }
  }
}

// One-column matmuls in both row orders of kernels/cpu/cpu_tuning.h (the staged matvecs walk row streams or
// adjacent groups of 4; AVX-512 q4_k has its own matvec, which keeps streams): 4 whole groups and 3 rows more,
// row ranges that cut the groups or streams, K of one super-block, 3 (a whole chunk short) and 5 (a chunk and one).
TEST_P(kquant_simd, matvec_row_orders_equal_reference) {
  struct restore_order {
    row_order saved = staged_row_order();
    ~restore_order() { set_staged_row_order(saved); }
  } restore;
  const int64_t n_rows = 19;
  for (int64_t k : {256, 768, 1280}) {
    const std::vector<uint8_t> w = random_rows(type(), n_rows, k, 91 + static_cast<uint32_t>(k));
    const std::vector<float> x = random_floats(k, 93 + static_cast<uint32_t>(k), -2.f, 2.f);
    const matmul_args base = make_args(type(), w.data(), n_rows, k, x.data(), 1, nullptr);
    for (row_order o : {row_order::streams, row_order::adjacent}) {
      set_staged_row_order(o);
      ASSERT_EQ(staged_row_order(), o);
      const int64_t ranges[][2] = {{0, n_rows}, {1, 18}, {2, 11}, {8, 9}, {4, 4}, {13, n_rows}};
      for (const auto& rg : ranges) {
        expect_same(var(), base, rg[0], rg[1], std::string(row_order_name(o)) + " k=" + std::to_string(k));
      }
    }
  }
}

// Batches through the lane path (AVX2, AVX-512): several 48-row blocks, partial tiles and panels, cut row ranges.
TEST_P(kquant_simd, lane_path_row_blocks_equal_reference) {
  const int64_t n_rows = 101, k = 512;
  const std::vector<uint8_t> w = random_rows(type(), n_rows, k, 71);
  for (int64_t n_cols : {48, 80}) {
    const std::vector<float> x = random_floats(n_cols * k, 72 + static_cast<uint32_t>(n_cols), -2.f, 2.f);
    const matmul_args base = make_args(type(), w.data(), n_rows, k, x.data(), n_cols, nullptr);
    const int64_t ranges[][2] = {{0, n_rows}, {7, 50}, {47, 97}};
    for (const auto& rg : ranges) expect_same(var(), base, rg[0], rg[1], "n_cols=" + std::to_string(n_cols));
    // The same with x packed once by the caller (matmul_args::x_lanes: the forward pass's shared packing).
    if (std::string(var().name) != isa_name(isa_best())) continue;
    std::vector<float> xl(static_cast<size_t>(matmul_lanes_floats(k, n_cols)));
    ASSERT_FALSE(xl.empty());
    ASSERT_EQ(matmul_pack_lanes(x.data(), k, n_cols, 0, (n_cols + 15) / 16, xl.data()), kstatus::ok);
    matmul_args packed = base;
    packed.x_lanes = xl.data();
    for (const auto& rg : ranges) expect_same(var(), packed, rg[0], rg[1], "packed n_cols=" + std::to_string(n_cols));
  }
}

// A row's output bits do not depend on the batch around it: matvec == its column in batches of 7 and 64.
TEST_P(kquant_simd, batch_invariant) {
  const int64_t n_rows = 9, k = 768;
  const std::vector<uint8_t> w = random_rows(type(), n_rows, k, 5);
  const std::vector<float> probe = random_floats(k, 6, -3.f, 3.f);
  std::vector<float> y1(n_rows);
  ASSERT_EQ(var().fn(make_args(type(), w.data(), n_rows, k, probe.data(), 1, y1.data())), kstatus::ok);
  for (int64_t n_cols : {7, 64}) {
    for (int64_t at : {int64_t{0}, n_cols / 2, n_cols - 1}) {
      std::vector<float> x = random_floats(n_cols * k, 7 + static_cast<uint32_t>(n_cols), -3.f, 3.f);
      std::memcpy(&x[at * k], probe.data(), k * sizeof(float));
      std::vector<float> y(n_cols * n_rows);
      ASSERT_EQ(var().fn(make_args(type(), w.data(), n_rows, k, x.data(), n_cols, y.data())), kstatus::ok);
      EXPECT_EQ(std::memcmp(&y[at * n_rows], y1.data(), n_rows * sizeof(float)), 0)
          << "n_cols=" << n_cols << " at=" << at;
    }
  }
}

// Blocks built byte by byte: random quants and packed scales, super-scales from a list of extremes (zero, -0,
// smallest/largest subnormal, smallest normal, largest finite, negative, infinite); one block of each row has
// all-ones scale bytes (every 6-bit scale and min 63, q6_k scales -1).
std::vector<uint8_t> extreme_rows(tensor_type t, int64_t n_rows, int64_t k, uint32_t seed, bool finite) {
  const uint16_t halves[] = {0x0000, 0x8000, 0x0001, 0x03ff, 0x0400, 0x3c00, 0x7bff, 0xfbff,
                             0x8001, 0x2e66, 0xb123, 0x7c00, 0xfc00};
  const int n_halves = finite ? 11 : 13;
  const int64_t nb = k / qk_k;
  const size_t bb = tensor_type_traits(t).block_bytes;
  std::vector<uint8_t> w(n_rows * nb * bb);
  std::mt19937 rng(seed);
  for (uint8_t& b : w) b = static_cast<uint8_t>(rng());
  for (int64_t i = 0; i < n_rows * nb; ++i) {
    uint8_t* blk = &w[i * bb];
    const uint16_t d = halves[rng() % n_halves], dmin = halves[rng() % n_halves];
    if (t == tensor_type::q6_k) {
      std::memcpy(blk + offsetof(block_q6_k, d), &d, 2);
      if (i % nb == 0) std::memset(blk + offsetof(block_q6_k, scales), 0xff, 16);
      if (i % nb == 1) {
        for (int s = 0; s < 16; ++s) blk[offsetof(block_q6_k, scales) + s] = s % 2 ? 0x80 : 0x7f;  // -128, 127
      }
    } else {
      std::memcpy(blk, &d, 2);
      std::memcpy(blk + 2, &dmin, 2);
      if (i % nb == 0) std::memset(blk + 4, 0xff, k_scale_size);
    }
  }
  return w;
}

// Batches from small::min_cols_for(type) columns (q6_k 16, q4_k 32, q5_k 12) up to the lane path on AVX-512 stage
// fp32 weights (kernels/cpu/x86/matmul_small.h), narrower ones take the staged 4x4 tiles: full 16-row groups, then
// fewer 4-row tiles and single rows, row ranges that cut them, K in one staged chunk and in ten (2560; q4_k takes
// the lane path there from 32 columns), partial column groups.
TEST_P(kquant_simd, small_batch_groups_and_chunks_equal_reference) {
  const int64_t n_rows = 41;  // 2 groups of 16 rows, 2 tiles of 4, 1 row
  for (int64_t k : {256, 2560}) {
    const std::vector<uint8_t> w = random_rows(type(), n_rows, k, 61 + static_cast<uint32_t>(k));
    for (int64_t n_cols : {12, 31, 47}) {
      if (k == 2560 && n_cols == 47) continue;  // the lane path's from 32 columns at this K
      const std::vector<float> x = random_floats(n_cols * k, 67 + static_cast<uint32_t>(k + n_cols), -2.f, 2.f);
      const matmul_args base = make_args(type(), w.data(), n_rows, k, x.data(), n_cols, nullptr);
      const int64_t ranges[][2] = {{0, n_rows}, {3, 40}, {17, 21}};
      for (const auto& rg : ranges) {
        expect_same(var(), base, rg[0], rg[1], "small batch k=" + std::to_string(k) + " n_cols=" + std::to_string(n_cols));
      }
    }
  }
}

// Few-column q4_k batches on AVX-512 (kernels/cpu/x86/matvec_kquant_avx512.cpp: 2 to 11 columns): every column
// count (one to three column groups of up to 4), groups of 4 row streams and single rows, row ranges that cut
// them, K of one super-block, of a 4-block scale chunk plus one (1280) and of 2048; 12 columns go on to the
// small-batch path. The other types and variants take their tiles here.
TEST_P(kquant_simd, few_column_batches_equal_reference) {
  const int64_t n_rows = 23;  // 5 groups of 4 row streams, 3 single rows
  for (int64_t k : {256, 1280, 2048}) {
    const std::vector<uint8_t> w = random_rows(type(), n_rows, k, 81 + static_cast<uint32_t>(k));
    for (int64_t n_cols = 2; n_cols <= 12; ++n_cols) {
      const std::vector<float> x = random_floats(n_cols * k, 83 + static_cast<uint32_t>(k + n_cols), -2.f, 2.f);
      const matmul_args base = make_args(type(), w.data(), n_rows, k, x.data(), n_cols, nullptr);
      const int64_t ranges[][2] = {{0, n_rows}, {1, 22}, {9, 10}};
      for (const auto& rg : ranges) {
        expect_same(var(), base, rg[0], rg[1], "few columns k=" + std::to_string(k) + " n_cols=" + std::to_string(n_cols));
      }
    }
  }
}

TEST_P(kquant_simd, extreme_blocks_equal_reference) {
  const int64_t n_rows = 13;
  for (int64_t k : {256, 512, 2048}) {
    const std::vector<uint8_t> w = extreme_rows(type(), n_rows, k, 31 + static_cast<uint32_t>(k), true);
    for (int64_t n_cols : {1, 5, 16}) {
      const std::vector<float> x = random_floats(n_cols * k, 37 + static_cast<uint32_t>(k), -1.f, 1.f);
      expect_same(var(), make_args(type(), w.data(), n_rows, k, x.data(), n_cols, nullptr), 0, n_rows,
                  "extreme k=" + std::to_string(k) + " n_cols=" + std::to_string(n_cols));
      expect_same(var(), make_args(type(), w.data(), n_rows, k, x.data(), n_cols, nullptr), 2, 7,
                  "extreme k=" + std::to_string(k) + " n_cols=" + std::to_string(n_cols));
    }
  }
}

// One super-block packed from quants q[256] (q4_k: 0..15, q5_k: 0..31, q6_k: 0..63), sub-block scales sc
// (q4_k/q5_k: 8 six-bit scales, q6_k: 16 int8) and mins m (8 six-bit), and fp16 super-scales d, dmin.
void pack_block(tensor_type t, const int* q, const int* sc, const int* m, uint16_t d, uint16_t dmin, uint8_t* out) {
  if (t == tensor_type::q6_k) {
    block_q6_k b{};
    for (int e = 0; e < qk_k; ++e) {  // element 128h + 32g + l (quant_blocks.h)
      const int h = e / 128, g = (e % 128) / 32, l = e % 32;
      b.ql[64 * h + 32 * (g & 1) + l] |= static_cast<uint8_t>((q[e] & 15) << (g < 2 ? 0 : 4));
      b.qh[32 * h + l] |= static_cast<uint8_t>((q[e] >> 4) << (2 * g));
    }
    for (int s = 0; s < 16; ++s) b.scales[s] = static_cast<int8_t>(sc[s]);
    b.d = d;
    std::memcpy(out, &b, sizeof b);
    return;
  }
  uint8_t scales[k_scale_size];
  for (int s = 0; s < 4; ++s) {  // inverse of k4_scale_min
    scales[s] = static_cast<uint8_t>(sc[s] | ((sc[s + 4] >> 4) << 6));
    scales[s + 4] = static_cast<uint8_t>(m[s] | ((m[s + 4] >> 4) << 6));
    scales[s + 8] = static_cast<uint8_t>((sc[s + 4] & 15) | ((m[s + 4] & 15) << 4));
  }
  uint8_t qs[128], qh[32] = {};
  for (int c = 0; c < 4; ++c) {
    for (int l = 0; l < 32; ++l) {
      qs[32 * c + l] = static_cast<uint8_t>((q[64 * c + l] & 15) | ((q[64 * c + 32 + l] & 15) << 4));
    }
  }
  for (int e = 0; e < qk_k; ++e) qh[e % 32] |= static_cast<uint8_t>(((q[e] >> 4) & 1) << (e / 32));
  std::memcpy(out, &d, 2);
  std::memcpy(out + 2, &dmin, 2);
  std::memcpy(out + 4, scales, k_scale_size);
  if (t == tensor_type::q5_k) {
    std::memcpy(out + 16, qh, 32);
    std::memcpy(out + 48, qs, 128);
  } else {
    std::memcpy(out + 16, qs, 128);
  }
}

// Signed zeros decide the output bits. Weights are tiny and <= -0 (negative subnormal super-scale; q6_k: q >= 32,
// q4_k/q5_k: zero mins), a third of them exactly -0 (q6_k: q = 32, q4_k/q5_k: q = 0), and x = +2^-149, so every
// product rounds to a signed zero: each lane stays -0 in the canonical order and the row's output is -0, while
// any variant that turned a weight -0 into +0 would leave a +0 lane and output +0.
TEST_P(kquant_simd, signed_zero_sums_equal_reference) {
  const int64_t n_rows = 6, k = 512, nb = k / qk_k;
  const size_t bb = tensor_type_traits(type()).block_bytes;
  const bool q6 = type() == tensor_type::q6_k;
  const int q_top = type() == tensor_type::q4_k ? 15 : type() == tensor_type::q5_k ? 31 : 63;
  std::mt19937 rng(59);
  std::vector<uint8_t> w(n_rows * nb * bb);
  for (int64_t i = 0; i < n_rows * nb; ++i) {
    int q[qk_k], sc[16], m[8] = {};
    for (int e = 0; e < qk_k; ++e) {
      const int zero_q = q6 ? 32 : 0;
      const bool first = i % nb == 0 && e < 16;  // each lane's first element is non-zero
      q[e] = (!first && rng() % 3 == 0) ? zero_q : zero_q + 1 + static_cast<int>(rng() % (q_top - zero_q));
    }
    for (int s = 0; s < 16; ++s) sc[s] = 1 + static_cast<int>(rng() % (q6 ? 127 : 63));
    const uint16_t d = i % 2 ? 0x8001 : 0x83ff;  // negative subnormals
    pack_block(type(), q, sc, m, d, static_cast<uint16_t>(i % 3 ? 0x0000 : 0x3c00), &w[i * bb]);
  }
  for (int64_t n_cols : {1, 6, 9, 50}) {  // 9: the dequantized strips (AVX2); 50: the lane path
    const std::vector<float> x(n_cols * k, std::numeric_limits<float>::denorm_min());
    std::vector<float> y(n_cols * n_rows);
    ASSERT_EQ(matmul_ref(make_args(type(), w.data(), n_rows, k, x.data(), n_cols, y.data())), kstatus::ok);
    for (float v : y) ASSERT_TRUE(v == 0.f && std::signbit(v)) << "construction must give -0, got " << v;
    expect_same(var(), make_args(type(), w.data(), n_rows, k, x.data(), n_cols, nullptr), 0, n_rows,
                "signed zeros n_cols=" + std::to_string(n_cols));
  }
}

// Infinite super-scales make NaNs (inf * 0, inf - inf); they are all the default NaN, so still bitwise equal.
TEST_P(kquant_simd, infinite_scales_equal_reference) {
  const int64_t n_rows = 6, k = 512;
  const std::vector<uint8_t> w = extreme_rows(type(), n_rows, k, 47, false);
  const std::vector<float> x = random_floats(3 * k, 53, -1.f, 1.f);
  expect_same(var(), make_args(type(), w.data(), n_rows, k, x.data(), 3, nullptr), 0, n_rows, "inf scales");
  expect_same(var(), make_args(type(), w.data(), n_rows, k, x.data(), 1, nullptr), 0, n_rows, "inf scales");
}

TEST_P(kquant_simd, arguments_checked_like_reference) {
  const int64_t k = 256;
  const std::vector<uint8_t> w = random_rows(type(), 4, k, 3);
  std::vector<float> x(k, 1.f), y(4, -1.f);
  const matmul_args good = make_args(type(), w.data(), 4, k, x.data(), 1, y.data());
  matmul_args a = good;
  a.w = nullptr;
  EXPECT_EQ(var().fn(a), kstatus::bad_argument);
  a = good;
  a.k = 128;
  EXPECT_EQ(var().fn(a), kstatus::bad_shape);
  a = good;
  a.row_end = 5;
  EXPECT_EQ(var().fn(a), kstatus::bad_argument);
  a = good;
  a.k = 0;  // sums of nothing are +0
  EXPECT_EQ(var().fn(a), kstatus::ok);
  for (float v : y) EXPECT_EQ(std::signbit(v) || v != 0.f, false);
  a = good;
  a.w_type = tensor_type::q8_0;  // not a K-quant: left to other kernels
  EXPECT_EQ(var().fn(a), kstatus::unsupported_type);
}

std::vector<param> all_params() {
  std::vector<param> p;
  for (int v = 0; v < 2; ++v) {
    for (tensor_type t : k_types) p.push_back({v, t});
  }
  return p;
}

INSTANTIATE_TEST_SUITE_P(x86, kquant_simd, testing::ValuesIn(all_params()), param_name);

#endif  // LIME_ARCH_X86

}  // namespace
}  // namespace lime::cpu
