// SIMD attention (kernels/cpu/ops_attention_body.h, ops_attention.h) against attention_ref, bit for bit:
// positions over several chunks, block sizes, GQA, head_dim tails, f32/f16 KV, head ranges, inf/NaN/huge/subnormal
// inputs, the long-context paths and argument checks; the body also over scalar traits (ops_emu.h) with every
// amount of per-chunk room.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <ctime>
#include <limits>
#include <map>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "kernels/cpu/attention.h"
#include "kernels/cpu/quants.h"
#include "kernels/cpu/rmsnorm.h"
#include "kernels/cpu/swiglu.h"
#include "tests/kernels/ops_simd_common.h"

namespace lime::cpu {
namespace {

class attention_simd : public variant_test {};

struct attn_case {
  int32_t n_head = 8, n_head_kv = 4, head_dim = 64, n_pos = 1, block_size = 16;
  tensor_type kv = tensor_type::f32;
  int32_t head_begin = 0, head_end = -1;
  float scale = 0.0f;  // 0: 1/sqrt(head_dim)
  int special = 0;     // 0 none; 1 scattered inf/NaN/huge/subnormal values; 2 rows of -inf / NaN keys
  int32_t row_pad = 3;  // extra elements per position row (rows wider than the heads need; 0: aligned rows)
  int32_t n_query = 1;  // consecutive query tokens: token t attends [0, n_pos + t)
  int32_t q_pad = 0;    // extra floats between tokens' q and out (0: the default strides)
};

// Query tokens and a paged KV cache filled with random values, and runs of a kernel over them.
struct attn_fixture {
  explicit attn_fixture(const attn_case& c, uint32_t seed) : c_(c) {
    row_elems_ = static_cast<int64_t>(c.n_head_kv) * c.head_dim + c.row_pad;
    const int32_t n_blocks = (c.n_pos + c.n_query - 2) / c.block_size + 1;
    const int64_t block_elems = static_cast<int64_t>(c.block_size) * row_elems_;
    q_ = random_vec(token_stride() * c.n_query, seed, 2.0f, c.special == 1);
    std::mt19937 rng(seed + 1);
    for (int32_t b = 0; b < 2 * n_blocks; ++b) {
      std::vector<float> vals = random_vec(block_elems, seed + 2 + b, 2.0f, c.special == 1);
      if (c.special == 2 && b < n_blocks) spoil_keys(vals, b, rng);
      if (c.kv == tensor_type::f32) {
        store_f32_.push_back(vals);
      } else {
        std::vector<uint16_t> h(vals.size());
        for (size_t i = 0; i < vals.size(); ++i) h[i] = fp32_to_fp16(vals[i]);
        if (c.special == 1) {  // f16 specials: inf, NaN (quiet and signaling), subnormals
          const uint16_t sp[] = {0x7c00, 0xfc00, 0x7e00, 0x7d01, 0x0001, 0x83ff, 0x8000, 0x7bff};
          for (size_t i = rng() % 17; i < h.size(); i += 1 + rng() % 40) h[i] = sp[rng() % 8];
        }
        store_f16_.push_back(h);
      }
    }
    for (int32_t b = 0; b < n_blocks; ++b) {
      k_.push_back(ptr(b));
      v_.push_back(ptr(n_blocks + b));
    }
  }

  // Chunk starts get a NaN key, one whole block of keys becomes -inf (all its scores -inf with q > 0 there).
  void spoil_keys(std::vector<float>& vals, int32_t b, std::mt19937& rng) {
    const int64_t hd = c_.head_dim;
    for (int32_t r = 0; r < c_.block_size; ++r) {
      const int32_t pos = b * c_.block_size + r;
      float* row = vals.data() + r * row_elems_;
      if (pos % k_attn_chunk == 0 && pos > 0) row[rng() % hd] = std::numeric_limits<float>::quiet_NaN();
      if (b == 1) {
        for (int64_t d = 0; d < row_elems_; ++d) row[d] = -k_inf;
      }
      if (pos == 3) row[0] = 1e30f;  // a huge score: every other e_j underflows
    }
    for (float& x : q_) x = x < 0 ? -x : x;
  }

  int64_t token_stride() const { return static_cast<int64_t>(c_.n_head) * c_.head_dim + c_.q_pad; }

  const void* ptr(int32_t b) const {
    return c_.kv == tensor_type::f32 ? static_cast<const void*>(store_f32_[b].data())
                                     : static_cast<const void*>(store_f16_[b].data());
  }

  attention_args args(float* out, float* scratch) const {
    attention_args a{};
    a.q = q_.data();
    a.kv_type = c_.kv;
    a.k_blocks = k_.data();
    a.v_blocks = v_.data();
    a.block_size = c_.block_size;
    a.kv_row_elems = row_elems_;
    a.n_head = c_.n_head;
    a.n_head_kv = c_.n_head_kv;
    a.head_dim = c_.head_dim;
    a.n_pos = c_.n_pos;
    a.scale = c_.scale != 0.0f ? c_.scale : 1.0f / std::sqrt(static_cast<float>(c_.head_dim));
    a.out = out;
    a.scratch = scratch;
    a.head_begin = c_.head_begin;
    a.head_end = c_.head_end;
    a.n_query = c_.n_query;
    a.q_stride = c_.q_pad != 0 ? token_stride() : 0;
    a.out_stride = a.q_stride;
    return a;
  }

  // Output of fn ([n_query][n_head, head_dim], heads outside the range and padding left at a sentinel) and its
  // status.
  std::vector<float> run(attention_fn fn, kstatus* st) const {
    std::vector<float> out(static_cast<size_t>(token_stride() * c_.n_query), from_bits(0x7fa5a5a5u));
    std::vector<float> scratch(static_cast<size_t>(attention_scratch_floats(c_.head_dim)), 0.0f);
    *st = fn(args(out.data(), scratch.data()));
    return out;
  }

  attn_case c_;
  int64_t row_elems_ = 0;
  std::vector<float> q_;
  std::vector<std::vector<float>> store_f32_;
  std::vector<std::vector<uint16_t>> store_f16_;
  std::vector<const void*> k_, v_;
};

std::string describe(const attn_case& c) {
  char buf[240];
  std::snprintf(buf, sizeof buf,
                "heads %d/%d hd %d n_pos %d block %d %s heads [%d,%d) scale %g special %d pad %d tokens %d qpad %d",
                c.n_head, c.n_head_kv, c.head_dim, c.n_pos, c.block_size, c.kv == tensor_type::f32 ? "f32" : "f16",
                c.head_begin, c.head_end, c.scale, c.special, c.row_pad, c.n_query, c.q_pad);
  return buf;
}

void expect_attention_matches(attention_fn fn, const attn_case& c, uint32_t seed) {
  // The reference's outputs, computed once per case for all variants (the reference dominates the run time).
  static std::map<std::string, std::vector<float>> ref_outputs;
  const attn_fixture fx(c, seed);
  const std::string key = describe(c) + " seed " + std::to_string(seed);
  auto it = ref_outputs.find(key);
  if (it == ref_outputs.end()) {
    kstatus st_ref;
    std::vector<float> out = fx.run(attention_ref, &st_ref);
    ASSERT_EQ(st_ref, kstatus::ok) << describe(c);
    it = ref_outputs.emplace(key, std::move(out)).first;
  }
  const std::vector<float>& want = it->second;
  kstatus st;
  const std::vector<float> got = fx.run(fn, &st);
  ASSERT_EQ(st, kstatus::ok) << describe(c);
  EXPECT_SAME_BITS_IF(got.data(), want.data(), static_cast<int64_t>(got.size()), describe(c), c.special != 0);
}

TEST_P(attention_simd, attention_matches_reference_over_shapes) {
  const int32_t n_pos[] = {1, 2, 3, 15, 16, 17, 100, 255, 256, 257, 300, 511, 512, 513, 777, 1000};
  const int32_t blocks[] = {16, 32, 256};
  const int32_t gqa[][2] = {{8, 4}, {32, 8}};
  uint32_t seed = 1000;
  int k = 0;
  for (int32_t hd : {8, 64, 128}) {
    for (tensor_type kv : {tensor_type::f32, tensor_type::f16}) {
      for (int32_t np : n_pos) {
        attn_case c;
        c.head_dim = hd;
        c.kv = kv;
        c.n_pos = np;
        c.block_size = blocks[k % 3];
        c.n_head = gqa[(k / 3) % 2][0];
        c.n_head_kv = gqa[(k / 3) % 2][1];
        ++k;
        expect_attention_matches(v_.attention, c, seed++);
      }
    }
  }
  // All tails of 16 lanes and 64-wide V blocks; O > 2048; V rows staged one per pass (2100) and not staged (4100).
  for (int32_t hd : {1, 17, 40, 80, 100, 256, 2100, 4100}) {
    attn_case c;
    c.head_dim = hd;
    c.n_head = 4;
    c.n_head_kv = 2;
    c.n_pos = 300;
    c.block_size = 32;
    c.kv = hd % 2 ? tensor_type::f32 : tensor_type::f16;
    expect_attention_matches(v_.attention, c, seed++);
  }
}

TEST_P(attention_simd, attention_matches_reference_on_special_values) {
  uint32_t seed = 2000;
  for (tensor_type kv : {tensor_type::f32, tensor_type::f16}) {
    for (int32_t np : {1, 5, 256, 600}) {
      for (float scale : {0.0f, 1e30f, 1e-30f, 40.0f}) {
        for (int special : {1, 2}) {
          attn_case c;
          c.kv = kv;
          c.n_pos = np;
          c.scale = scale;
          c.special = special;
          c.block_size = special == 2 ? 256 : 32;  // 256: chunk 1 (block 1) is all -inf scores
          expect_attention_matches(v_.attention, c, seed++);
        }
      }
    }
  }
}

TEST_P(attention_simd, attention_head_ranges_and_long_context) {
  uint32_t seed = 3000;
  const int32_t ranges[][2] = {{0, 8}, {1, 3}, {7, -1}, {2, 2}, {0, 1}, {5, 8}};
  for (const auto& r : ranges) {
    attn_case c;
    c.n_pos = 700;
    c.head_begin = r[0];
    c.head_end = r[1];
    c.kv = r[0] % 2 ? tensor_type::f16 : tensor_type::f32;
    expect_attention_matches(v_.attention, c, seed++);
  }
  // Long contexts on the ISA entry points' own room (k_saved_floats): 8 query heads of head_dim 128 over 16
  // chunks share a pass 7 + 1; 65 chunks of head_dim 256 do not fit at all (the two-pass path).
  attn_case c;
  c.n_head = 8;
  c.n_head_kv = 1;
  c.head_dim = 128;
  c.n_pos = 4000;
  c.block_size = 256;
  expect_attention_matches(v_.attention, c, seed++);
  c.n_head = 2;
  c.head_dim = 256;
  c.n_pos = 16500;
  expect_attention_matches(v_.attention, c, seed++);
  c.kv = tensor_type::f16;
  c.n_pos = 16390;
  expect_attention_matches(v_.attention, c, seed++);
}

// One token over several kv heads in one call (decode): the heads are walked together, position by position, and
// weighed a few at a time (weigh_rows_multi). Without GQA (stories110M's 12 heads: every head its own slice) and
// with it, head_dim 16 * 1..4 (groups of 4 heads, 3 or 2 on the smaller V blocks), head ranges that cut the groups,
// chunk boundaries, f32 and f16 KV.
TEST_P(attention_simd, decode_across_kv_heads_matches_reference) {
  uint32_t seed = 3500;
  const int32_t heads[][2] = {{12, 12}, {12, 4}, {6, 6}, {9, 3}};
  const int32_t ranges[][2] = {{0, -1}, {1, 11}, {5, 12}, {2, 6}};
  int k = 0;
  for (int32_t hd : {16, 32, 48, 64, 128}) {
    for (int32_t np : {1, 17, 255, 256, 257, 1000}) {
      attn_case c;
      c.head_dim = hd;
      c.n_pos = np;
      c.n_head = heads[k % 4][0];
      c.n_head_kv = heads[k % 4][1];
      c.head_begin = std::min(ranges[k / 4 % 4][0], c.n_head - 1);
      c.head_end = ranges[k / 4 % 4][1] < 0 ? -1 : std::min(ranges[k / 4 % 4][1], c.n_head);
      c.block_size = (k % 3 == 0) ? 16 : 32;
      c.kv = k % 2 ? tensor_type::f16 : tensor_type::f32;
      ++k;
      expect_attention_matches(v_.attention, c, seed++);
    }
  }
  // Special values through the grouped weighing.
  for (int special : {1, 2}) {
    attn_case c;
    c.n_head = 12;
    c.n_head_kv = 12;
    c.n_pos = 300;
    c.special = special;
    c.block_size = special == 2 ? 256 : 32;
    expect_attention_matches(v_.attention, c, seed++);
  }
}

// Several consecutive tokens in one call (a prompt's tokens): each token's output must be the reference's, token
// by token, whatever chunk boundaries the tokens straddle, with GQA, head ranges, strides and special values.
TEST_P(attention_simd, token_groups_match_reference) {
  uint32_t seed = 4000;
  const int32_t firsts[] = {1, 2, 250, 255, 256, 300, 509, 770};
  const int32_t tokens[] = {2, 5, 16, 33};
  const int32_t gqa[][2] = {{8, 4}, {32, 8}, {12, 12}, {4, 1}};
  int k = 0;
  for (int32_t first : firsts) {
    for (int32_t nq : tokens) {
      attn_case c;
      c.n_pos = first;
      c.n_query = nq;
      c.n_head = gqa[k % 4][0];
      c.n_head_kv = gqa[k % 4][1];
      c.head_dim = k % 3 == 0 ? 40 : k % 3 == 1 ? 64 : 128;
      c.kv = k % 2 ? tensor_type::f16 : tensor_type::f32;
      c.block_size = k % 5 == 0 ? 256 : 16;
      c.q_pad = k % 4 == 1 ? 5 : 0;
      if (k % 6 == 2) {
        c.head_begin = 1;
        c.head_end = c.n_head - 1;
      }
      ++k;
      expect_attention_matches(v_.attention, c, seed++);
    }
  }
  for (int special : {1, 2}) {
    attn_case c;
    c.n_pos = 200;
    c.n_query = 120;  // crosses the chunk boundary at 256 with tokens on both sides
    c.special = special;
    c.block_size = special == 2 ? 256 : 32;
    expect_attention_matches(v_.attention, c, seed++);
  }
  attn_case c;  // long context: per-chunk results for 24 tokens x 2 heads over 16 chunks
  c.n_head = 2;
  c.n_head_kv = 1;
  c.head_dim = 128;
  c.n_pos = 3990;
  c.n_query = 24;
  c.block_size = 256;
  expect_attention_matches(v_.attention, c, seed++);
}

// One call over n tokens gives each token the bits of its own one-token call (the runtime may group tokens in any
// way it likes).
TEST_P(attention_simd, token_group_equals_tokens_one_by_one) {
  attn_case c;
  c.n_head = 8;
  c.n_head_kv = 2;
  c.n_pos = 240;
  c.n_query = 40;
  const attn_fixture fx(c, 77);
  kstatus st;
  const std::vector<float> group = fx.run(v_.attention, &st);
  ASSERT_EQ(st, kstatus::ok);
  const int64_t per_token = static_cast<int64_t>(c.n_head) * c.head_dim;
  std::vector<float> one(static_cast<size_t>(per_token)), scratch(static_cast<size_t>(attention_scratch_floats(64)));
  for (int32_t t = 0; t < c.n_query; ++t) {
    attention_args a = fx.args(one.data(), scratch.data());
    a.q += t * per_token;
    a.n_pos += t;
    a.n_query = 1;
    ASSERT_EQ(v_.attention(a), kstatus::ok);
    EXPECT_SAME_BITS_IF(one.data(), group.data() + t * per_token, per_token, "token " + std::to_string(t), false);
  }
}

TEST_P(attention_simd, attention_rejects_bad_arguments_like_reference) {
  attn_case c;
  c.n_pos = 40;
  const attn_fixture fx(c, 42);
  std::vector<float> out(static_cast<size_t>(c.n_head) * c.head_dim), scratch(4096);
  std::vector<const void*> holes = fx.k_;
  holes[1] = nullptr;
  const std::vector<void (*)(attention_args&)> breaks = {
      [](attention_args& a) { a.q = nullptr; },        [](attention_args& a) { a.scratch = nullptr; },
      [](attention_args& a) { a.kv_type = tensor_type::q8_0; },
      [](attention_args& a) { a.n_head_kv = 3; },       [](attention_args& a) { a.head_dim = 0; },
      [](attention_args& a) { a.kv_row_elems = 10; },   [](attention_args& a) { a.n_pos = 0; },
      [](attention_args& a) { a.head_begin = 3; a.head_end = 2; },
      [](attention_args& a) { a.head_end = 9; },        [](attention_args& a) { a.head_begin = -1; },
      [](attention_args& a) { a.n_query = 0; },         [](attention_args& a) { a.q_stride = -1; },
      [](attention_args& a) { a.out_stride = -64; },
      [](attention_args& a) { a.n_pos = 2147483000; a.n_query = 1000; },
  };
  for (size_t i = 0; i < breaks.size(); ++i) {
    attention_args a = fx.args(out.data(), scratch.data());
    breaks[i](a);
    const kstatus want = attention_ref(a);
    EXPECT_NE(want, kstatus::ok) << "case " << i;
    EXPECT_EQ(v_.attention(a), want) << "case " << i;
  }
  attention_args a = fx.args(out.data(), scratch.data());
  a.k_blocks = holes.data();
  EXPECT_EQ(v_.attention(a), attention_ref(a));
  EXPECT_EQ(v_.attention(a), kstatus::bad_argument);
  // A group's later tokens need blocks the first does not: a hole there must be seen (before anything is read).
  attn_case c9 = c;
  c9.n_query = 9;  // the last token attends [0, 48): blocks 0-2
  const attn_fixture f9(c9, 43);
  std::vector<const void*> kt = f9.k_, vt = f9.v_;
  kt.push_back(nullptr);
  vt.push_back(f9.v_[0]);
  std::vector<float> out9(out.size() * 9);
  a = f9.args(out9.data(), scratch.data());
  a.k_blocks = kt.data();
  a.v_blocks = vt.data();
  EXPECT_EQ(attention_ref(a), kstatus::ok);
  EXPECT_EQ(v_.attention(a), kstatus::ok);
  a.n_query = 10;  // position 48: block 3, the hole
  const kstatus want = attention_ref(a);
  EXPECT_EQ(want, kstatus::bad_argument);
  EXPECT_EQ(v_.attention(a), want);
}


INSTANTIATE_TEST_SUITE_P(variants, attention_simd,
                         ::testing::Values("emu", "emu_small_saved", "emu_two_pass", "avx2", "avx512", "neon"),
                         [](const ::testing::TestParamInfo<std::string>& p) { return p.param; });

// The dispatcher (whatever isa_best() picks) against the reference.
TEST(ops_dispatch, attention_matches_reference) {
  attn_case c;
  c.n_pos = 600;
  c.kv = tensor_type::f16;
  expect_attention_matches(attention, c, 5);
}

// ---- speed (not part of the suite: run with --gtest_also_run_disabled_tests --gtest_filter='*speed*')

// Best of `reps` runs, in this thread's CPU time (a shared 2-core machine makes wall time mostly a load figure).
double thread_cpu_us() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) * 1e6 + static_cast<double>(ts.tv_nsec) * 1e-3;
}

template <class Fn>
double best_us(Fn fn, int reps) {
  double best = 1e30;
  for (int r = 0; r < reps; ++r) {
    const double t0 = thread_cpu_us();
    fn();
    const double us = thread_cpu_us() - t0;
    best = us < best ? us : best;
  }
  return best;
}

TEST(ops_simd_bench, DISABLED_speed) {
  for (const char* name : {"ref", "avx2", "avx512", "neon"}) {
    const bool ref = std::string(name) == "ref";
    const variant v = find_variant(name);
    if (!ref && !v.exp) continue;
    for (tensor_type kv : {tensor_type::f32, tensor_type::f16}) {
      attn_case c;
      c.n_head = 32;
      c.n_head_kv = 8;
      c.head_dim = 64;
      c.n_pos = 4096;
      c.block_size = 256;
      c.kv = kv;
      c.row_pad = 0;
      const attn_fixture fx(c, 9);
      std::vector<float> out(32 * 64), scratch(static_cast<size_t>(attention_scratch_floats(64)));
      const attention_args a = fx.args(out.data(), scratch.data());
      const double us = best_us([&] { (ref ? attention_ref : v.attention)(a); }, ref ? 3 : 10);
      std::printf("attention | %-6s | n_pos 4096 hd 64 heads 32/8 %s | %9.1f us/token\n", name,
                  kv == tensor_type::f32 ? "f32" : "f16", us);
      if (ref) continue;
      c.n_pos = 4096 - 15;  // a prompt's 16 tokens in one call: K and V read once for all of them
      c.n_query = 16;
      const attn_fixture fq(c, 9);
      std::vector<float> outq(16 * 32 * 64);
      const attention_args aq = fq.args(outq.data(), scratch.data());
      const double usq = best_us([&] { v.attention(aq); }, 10) / 16;
      std::printf("attention | %-6s | 16 tokens to n_pos 4096 hd 64 heads 32/8 %s | %9.1f us/token\n", name,
                  kv == tensor_type::f32 ? "f32" : "f16", usq);
    }
    const std::vector<float> g = random_vec(8192, 1, 8.0f, false), u = random_vec(8192, 2, 2.0f, false);
    std::vector<float> out(8192);
    const double us = best_us([&] { (ref ? swiglu_ref : v.swiglu)(g.data(), u.data(), out.data(), 8192); }, 200);
    std::printf("swiglu    | %-6s | n 8192 | %9.2f us\n", name, us);
    std::vector<float> w = random_vec(8192, 3, 1.0f, false);
    const double us_n = best_us([&] { (ref ? rmsnorm_ref : v.rmsnorm)(g.data(), w.data(), out.data(), 8192, 1e-5f); }, 200);
    std::printf("rmsnorm   | %-6s | n 8192 | %9.2f us\n", name, us_n);
  }
}

}  // namespace
}  // namespace lime::cpu
