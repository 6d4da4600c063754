// attention_ref over a paged KV cache: vs naive double softmax-attention, the documented chunk order bit for bit,
// independence from the block size, GQA head mapping, causal limit, fp16 KV and argument checks.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

#include "kernels/cpu/attention.h"
#include "kernels/cpu/canonical.h"
#include "kernels/cpu/math.h"
#include "kernels/cpu/quants.h"

namespace lime::cpu {
namespace {

std::vector<float> random_floats(size_t n, uint32_t seed, float lo = -1.f, float hi = 1.f) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> dist(lo, hi);
  std::vector<float> v(n);
  for (float& f : v) f = dist(rng);
  return v;
}

uint32_t bits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, sizeof u);
  return u;
}

struct shape {
  int32_t n_head = 8, n_head_kv = 4, head_dim = 64;
  int64_t row_elems = 4 * 64;  // elements per position (>= n_head_kv * head_dim)
};

// K and V for n_ctx positions, contiguous [n_ctx, row_elems], cut into a block table. Unused slots hold NaN.
struct paged_kv {
  std::vector<std::vector<float>> kf, vf;
  std::vector<std::vector<uint16_t>> kh, vh;
  std::vector<const void*> kp, vp;
  int32_t block_size = 0;

  paged_kv(const std::vector<float>& k, const std::vector<float>& v, int64_t row_elems, int32_t n_ctx, int32_t bs,
           tensor_type t)
      : block_size(bs) {
    const int32_t n_blocks = (n_ctx + bs - 1) / bs;
    const size_t block_elems = static_cast<size_t>(bs) * row_elems;
    for (int32_t b = 0; b < n_blocks; ++b) {
      std::vector<float> kb(block_elems, std::nanf("")), vb(block_elems, std::nanf(""));
      for (int32_t p = b * bs; p < n_ctx && p < (b + 1) * bs; ++p) {
        std::memcpy(&kb[(p - b * bs) * row_elems], &k[p * row_elems], row_elems * sizeof(float));
        std::memcpy(&vb[(p - b * bs) * row_elems], &v[p * row_elems], row_elems * sizeof(float));
      }
      if (t == tensor_type::f16) {
        std::vector<uint16_t> kb16(block_elems), vb16(block_elems);
        for (size_t i = 0; i < block_elems; ++i) {
          kb16[i] = fp32_to_fp16(kb[i]);
          vb16[i] = fp32_to_fp16(vb[i]);
        }
        kh.push_back(std::move(kb16));
        vh.push_back(std::move(vb16));
      } else {
        kf.push_back(std::move(kb));
        vf.push_back(std::move(vb));
      }
    }
    for (int32_t b = 0; b < n_blocks; ++b) {
      kp.push_back(t == tensor_type::f16 ? static_cast<const void*>(kh[b].data()) : kf[b].data());
      vp.push_back(t == tensor_type::f16 ? static_cast<const void*>(vh[b].data()) : vf[b].data());
    }
  }
};

std::vector<float> run(const shape& s, const std::vector<float>& q, const paged_kv& kv, tensor_type t,
                       int32_t n_pos) {
  std::vector<float> out(static_cast<size_t>(s.n_head) * s.head_dim, -99.f);
  std::vector<float> scratch(attention_scratch_floats(s.head_dim));
  attention_args a;
  a.q = q.data();
  a.kv_type = t;
  a.k_blocks = kv.kp.data();
  a.v_blocks = kv.vp.data();
  a.block_size = kv.block_size;
  a.kv_row_elems = s.row_elems;
  a.n_head = s.n_head;
  a.n_head_kv = s.n_head_kv;
  a.head_dim = s.head_dim;
  a.n_pos = n_pos;
  a.scale = 1.0f / std::sqrt(static_cast<float>(s.head_dim));
  a.out = out.data();
  a.scratch = scratch.data();
  EXPECT_EQ(attention_ref(a), kstatus::ok);
  return out;
}

// Naive softmax attention in double; query head h reads kv head h / (n_head / n_head_kv).
std::vector<double> reference(const shape& s, const std::vector<float>& q, const std::vector<float>& k,
                              const std::vector<float>& v, int32_t n_pos) {
  const double scale = 1.0 / std::sqrt(static_cast<double>(s.head_dim));
  std::vector<double> out(static_cast<size_t>(s.n_head) * s.head_dim, 0.0), p(n_pos);
  for (int32_t h = 0; h < s.n_head; ++h) {
    const int32_t kvh = h / (s.n_head / s.n_head_kv);
    double m = -std::numeric_limits<double>::infinity(), sum = 0;
    for (int32_t j = 0; j < n_pos; ++j) {
      double d = 0;
      for (int32_t i = 0; i < s.head_dim; ++i) {
        d += static_cast<double>(q[h * s.head_dim + i]) * k[j * s.row_elems + kvh * s.head_dim + i];
      }
      p[j] = d * scale;
      m = std::max(m, p[j]);
    }
    for (int32_t j = 0; j < n_pos; ++j) sum += (p[j] = std::exp(p[j] - m));
    for (int32_t j = 0; j < n_pos; ++j) {
      for (int32_t i = 0; i < s.head_dim; ++i) {
        out[h * s.head_dim + i] += p[j] / sum * v[j * s.row_elems + kvh * s.head_dim + i];
      }
    }
  }
  return out;
}

// attention.h's canonical order written out directly, keeping every chunk's (m, l, o) before merging.
std::vector<float> chunked_definition(const shape& s, const std::vector<float>& q, const std::vector<float>& k,
                                      const std::vector<float>& v, int32_t n_pos) {
  const float scale = 1.0f / std::sqrt(static_cast<float>(s.head_dim));
  std::vector<float> out(static_cast<size_t>(s.n_head) * s.head_dim);
  for (int32_t h = 0; h < s.n_head; ++h) {
    const int32_t kvh = h / (s.n_head / s.n_head_kv);
    std::vector<float> ms, ls;
    std::vector<std::vector<float>> os;
    for (int32_t j0 = 0; j0 < n_pos; j0 += 256) {
      const int32_t j1 = std::min(n_pos, j0 + 256);
      std::vector<float> sc;
      for (int32_t j = j0; j < j1; ++j) {
        sc.push_back(dot_canonical(&q[h * s.head_dim], &k[j * s.row_elems + kvh * s.head_dim], s.head_dim) * scale);
      }
      float m = sc[0];
      for (float x : sc) m = x > m ? x : m;
      float l = 0;
      std::vector<float> o(s.head_dim, 0.0f);
      for (int32_t j = j0; j < j1; ++j) {
        const float e = exp_f32(sc[j - j0] - m);
        l += e;
        for (int32_t d = 0; d < s.head_dim; ++d) o[d] = std::fma(e, v[j * s.row_elems + kvh * s.head_dim + d], o[d]);
      }
      ms.push_back(m);
      ls.push_back(l);
      os.push_back(o);
    }
    float big_m = ms[0];
    for (float m : ms) big_m = m > big_m ? m : big_m;
    float big_l = 0;
    std::vector<float> big_o(s.head_dim, 0.0f);
    for (size_t c = 0; c < ms.size(); ++c) {
      const float w = exp_f32(ms[c] - big_m);
      big_l = std::fma(ls[c], w, big_l);
      for (int32_t d = 0; d < s.head_dim; ++d) big_o[d] = std::fma(os[c][d], w, big_o[d]);
    }
    for (int32_t d = 0; d < s.head_dim; ++d) out[h * s.head_dim + d] = big_o[d] / big_l;
  }
  return out;
}

struct data {
  std::vector<float> q, k, v;
  data(const shape& s, int32_t n_ctx, uint32_t seed, float q_range = 2.f) {
    q = random_floats(static_cast<size_t>(s.n_head) * s.head_dim, seed, -q_range, q_range);
    k = random_floats(static_cast<size_t>(n_ctx) * s.row_elems, seed + 1);
    v = random_floats(static_cast<size_t>(n_ctx) * s.row_elems, seed + 2);
  }
};

void expect_close(const std::vector<float>& got, const std::vector<double>& ref, double tol, const char* what) {
  ASSERT_EQ(got.size(), ref.size());
  for (size_t i = 0; i < got.size(); ++i) ASSERT_NEAR(got[i], ref[i], tol) << what << " at " << i;
}

TEST(attention_ref, matches_double_reference_gqa) {
  shape s;  // 8 query heads over 4 kv heads
  for (int32_t n_pos : {1, 2, 5, 255, 256, 257, 1000}) {
    data d(s, 1000, 10 + n_pos);
    paged_kv kv(d.k, d.v, s.row_elems, 1000, 16, tensor_type::f32);
    expect_close(run(s, d.q, kv, tensor_type::f32, n_pos), reference(s, d.q, d.k, d.v, n_pos), 2e-6, "f32");
  }
}

TEST(attention_ref, large_scores_and_row_stride) {
  shape s;
  s.n_head = 6;
  s.n_head_kv = 2;
  s.head_dim = 40;
  s.row_elems = 2 * 40 + 7;  // padded rows
  data d(s, 600, 77, 12.f);  // scores of order +-50: the max must be taken out before exp
  paged_kv kv(d.k, d.v, s.row_elems, 600, 32, tensor_type::f32);
  expect_close(run(s, d.q, kv, tensor_type::f32, 600), reference(s, d.q, d.k, d.v, 600), 5e-6, "large");
}

TEST(attention_ref, follows_the_chunk_order_bit_for_bit) {
  shape s;
  for (int32_t n_pos : {1, 100, 256, 257, 600, 1000}) {
    data d(s, 1000, 20 + n_pos);
    paged_kv kv(d.k, d.v, s.row_elems, 1000, 16, tensor_type::f32);
    const std::vector<float> got = run(s, d.q, kv, tensor_type::f32, n_pos);
    const std::vector<float> want = chunked_definition(s, d.q, d.k, d.v, n_pos);
    for (size_t i = 0; i < got.size(); ++i) ASSERT_EQ(bits(got[i]), bits(want[i])) << n_pos << " " << i;
  }
}

TEST(attention_ref, single_chunk_is_plain_softmax_formula) {
  // For n_pos <= 256 the chunk merge must reduce to out = o / l exactly (w = exp(0) = 1).
  shape s;
  s.n_head = 2;
  s.n_head_kv = 1;
  s.head_dim = 32;
  s.row_elems = 32;
  for (int32_t n_pos : {3, 256}) {
    data d(s, n_pos, 30 + n_pos);
    paged_kv kv(d.k, d.v, s.row_elems, n_pos, 64, tensor_type::f32);
    const std::vector<float> got = run(s, d.q, kv, tensor_type::f32, n_pos);
    const float scale = 1.0f / std::sqrt(32.0f);
    for (int32_t h = 0; h < 2; ++h) {
      std::vector<float> e(n_pos);
      for (int32_t j = 0; j < n_pos; ++j) e[j] = dot_canonical(&d.q[h * 32], &d.k[j * 32], 32) * scale;
      float m = e[0];
      for (float x : e) m = x > m ? x : m;
      float l = 0;
      std::vector<float> o(32, 0.0f);
      for (int32_t j = 0; j < n_pos; ++j) {
        e[j] = exp_f32(e[j] - m);
        l += e[j];
        for (int32_t i = 0; i < 32; ++i) o[i] = std::fma(e[j], d.v[j * 32 + i], o[i]);
      }
      for (int32_t i = 0; i < 32; ++i) ASSERT_EQ(bits(got[h * 32 + i]), bits(o[i] / l)) << h << " " << i;
    }
  }
}

TEST(attention_ref, block_size_does_not_change_bits) {
  shape s;
  const int32_t n_pos = 1000;
  data d(s, n_pos, 40);
  std::vector<float> first;
  for (int32_t bs : {16, 256, 7, 1000, 4096}) {
    paged_kv kv(d.k, d.v, s.row_elems, n_pos, bs, tensor_type::f32);
    const std::vector<float> out = run(s, d.q, kv, tensor_type::f32, n_pos);
    if (first.empty()) {
      first = out;
      continue;
    }
    for (size_t i = 0; i < out.size(); ++i) ASSERT_EQ(bits(out[i]), bits(first[i])) << "block_size " << bs;
  }
}

TEST(attention_ref, causal_limit_ignores_later_positions) {
  // Positions >= n_pos hold NaN in K and V (the NaN fill of the last block and beyond): nothing may leak.
  shape s;
  data d(s, 1000, 50);
  for (int32_t n_pos : {1, 300, 999}) {
    std::vector<float> k = d.k, v = d.v;
    for (size_t i = static_cast<size_t>(n_pos) * s.row_elems; i < k.size(); ++i) k[i] = v[i] = std::nanf("");
    paged_kv kv(k, v, s.row_elems, 1000, 16, tensor_type::f32);
    const std::vector<float> out = run(s, d.q, kv, tensor_type::f32, n_pos);
    expect_close(out, reference(s, d.q, d.k, d.v, n_pos), 2e-6, "causal");
  }
}

TEST(attention_ref, f16_kv_equals_f32_on_the_same_values) {
  shape s;
  const int32_t n_pos = 700;
  data d(s, n_pos, 60);
  std::vector<float> k16 = d.k, v16 = d.v;  // the values an f16 cache really holds
  for (float& x : k16) x = fp16_to_fp32(fp32_to_fp16(x));
  for (float& x : v16) x = fp16_to_fp32(fp32_to_fp16(x));
  paged_kv kvh(d.k, d.v, s.row_elems, n_pos, 16, tensor_type::f16);
  paged_kv kvf(k16, v16, s.row_elems, n_pos, 64, tensor_type::f32);
  const std::vector<float> got = run(s, d.q, kvh, tensor_type::f16, n_pos);
  const std::vector<float> want = run(s, d.q, kvf, tensor_type::f32, n_pos);
  for (size_t i = 0; i < got.size(); ++i) ASSERT_EQ(bits(got[i]), bits(want[i])) << i;
  expect_close(got, reference(s, d.q, d.k, d.v, n_pos), 2e-3, "f16 vs exact");
}

TEST(attention_ref, rejects_bad_arguments) {
  shape s;
  data d(s, 40, 70);
  paged_kv kv(d.k, d.v, s.row_elems, 40, 16, tensor_type::f32);
  std::vector<float> out(s.n_head * s.head_dim), scratch(attention_scratch_floats(s.head_dim));
  attention_args good;
  good.q = d.q.data();
  good.kv_type = tensor_type::f32;
  good.k_blocks = kv.kp.data();
  good.v_blocks = kv.vp.data();
  good.block_size = 16;
  good.kv_row_elems = s.row_elems;
  good.n_head = s.n_head;
  good.n_head_kv = s.n_head_kv;
  good.head_dim = s.head_dim;
  good.n_pos = 40;
  good.scale = 0.125f;
  good.out = out.data();
  good.scratch = scratch.data();
  EXPECT_EQ(attention_ref(good), kstatus::ok);
  attention_args a = good;
  a.scratch = nullptr;
  EXPECT_EQ(attention_ref(a), kstatus::bad_argument);
  a = good;
  a.q = nullptr;
  EXPECT_EQ(attention_ref(a), kstatus::bad_argument);
  a = good;
  a.n_head_kv = 3;
  EXPECT_EQ(attention_ref(a), kstatus::bad_shape);
  a = good;
  a.n_pos = 0;
  EXPECT_EQ(attention_ref(a), kstatus::bad_shape);
  a = good;
  a.block_size = 0;
  EXPECT_EQ(attention_ref(a), kstatus::bad_shape);
  a = good;
  a.kv_row_elems = s.row_elems - 1;
  EXPECT_EQ(attention_ref(a), kstatus::bad_shape);
  a = good;
  a.kv_type = tensor_type::q8_0;
  EXPECT_EQ(attention_ref(a), kstatus::unsupported_type);
  std::vector<const void*> holes = kv.kp;
  holes[2] = nullptr;  // block 2 holds positions 32..47, needed for n_pos 40
  a = good;
  a.k_blocks = holes.data();
  EXPECT_EQ(attention_ref(a), kstatus::bad_argument);
  a.n_pos = 32;  // no longer needed
  EXPECT_EQ(attention_ref(a), kstatus::ok);
}

}  // namespace
}  // namespace lime::cpu
