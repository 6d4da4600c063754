// lime-bitcheck: prints one "<case> <hash>" line per kernel case (fixed seeds; FNV-1a 64 of the output bytes) so
// two machines (x86-64, aarch64) can be diffed for bit-identical results. Every dispatched kernel is also checked
// in-process against its reference; a disagreement is appended to the line and makes the exit status 1.
#include <cinttypes>
#include <cstdint>
#include <cstdio>
#include <algorithm>
#include <cstring>
#include <string>
#include <vector>

#include "kernels/cpu/attention.h"
#include "kernels/cpu/get_rows.h"
#include "kernels/cpu/isa.h"
#include "kernels/cpu/math.h"
#include "kernels/cpu/matmul.h"
#include "kernels/cpu/quants.h"
#include "kernels/cpu/rmsnorm.h"
#include "kernels/cpu/rope.h"
#include "kernels/cpu/softmax.h"
#include "kernels/cpu/swiglu.h"

namespace {

using namespace lime;
using namespace lime::cpu;

int g_failures = 0;

uint64_t fnv1a(const void* p, size_t n, uint64_t h = 0xcbf29ce484222325ull) {
  const auto* b = static_cast<const unsigned char*>(p);
  for (size_t i = 0; i < n; ++i) h = (h ^ b[i]) * 0x100000001b3ull;
  return h;
}
template <typename T>
bool same_bits(const std::vector<T>& a, const std::vector<T>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(T)) == 0;
}
template <typename T>
uint64_t hash_vec(const std::vector<T>& v) {
  return fnv1a(v.data(), v.size() * sizeof(T));
}

// splitmix64: the same sequence everywhere (std:: distributions are implementation-defined).
struct rng {
  uint64_t s;
  explicit rng(uint64_t seed) : s(seed) {}
  uint64_t next() {
    uint64_t z = (s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
  }
  float uniform(float scale) {  // [-scale, scale): exact arithmetic on a 24-bit integer
    return (static_cast<float>(next() >> 40) * 0x1p-23f - 1.0f) * scale;
  }
};

std::vector<float> floats(size_t n, uint64_t seed, float scale = 1.f) {
  rng r(seed);
  std::vector<float> v(n);
  for (float& f : v) f = r.uniform(scale);
  return v;
}

void line(const std::string& name, uint64_t h, const std::string& note = "") {
  if (!note.empty()) ++g_failures;
  std::printf("%s %016" PRIx64 "%s%s\n", name.c_str(), h, note.empty() ? "" : " ", note.c_str());
}

const tensor_type k_types[] = {tensor_type::f32,  tensor_type::f16,  tensor_type::bf16, tensor_type::q8_0,
                               tensor_type::q4_0, tensor_type::q4_1, tensor_type::q5_0, tensor_type::q5_1,
                               tensor_type::q4_k, tensor_type::q5_k, tensor_type::q6_k};

// Rows quantized by lime's own quantizer from random floats of a given magnitude.
std::vector<uint8_t> quantized(tensor_type t, int64_t n_rows, int64_t k, uint64_t seed, float scale) {
  const std::vector<float> f = floats(static_cast<size_t>(n_rows * k), seed, scale);
  const size_t rb = tensor_row_bytes(t, k);
  std::vector<uint8_t> w(rb * n_rows);
  for (int64_t r = 0; r < n_rows; ++r) {
    if (quantize_row(t, f.data() + r * k, w.data() + r * rb, k) != kstatus::ok) ++g_failures;
  }
  return w;
}

void check_quants() {
  for (tensor_type t : k_types) {
    const int64_t k = 512;
    for (float scale : {1.f, 1e-3f, 300.f}) {
      const std::vector<uint8_t> w = quantized(t, 3, k, 11 + static_cast<uint64_t>(t), scale);
      std::vector<float> back(3 * k);
      if (dequantize_row(t, w.data(), back.data(), 3 * k) != kstatus::ok) ++g_failures;
      char name[96];
      std::snprintf(name, sizeof name, "quantize/%s/scale=%g", tensor_type_name(t), scale);
      line(name, hash_vec(w));
      std::snprintf(name, sizeof name, "dequantize/%s/scale=%g", tensor_type_name(t), scale);
      line(name, hash_vec(back));
    }
  }
}

// matmul() (the dispatched variant) on one shape; every other available variant and matmul_ref must agree,
// and so must a split of the rows into two ranges.
void check_matmul(tensor_type t, int64_t n_rows, int64_t k, int64_t n_cols, uint64_t seed) {
  const std::vector<uint8_t> w = quantized(t, n_rows, k, seed, 0.5f);
  const std::vector<float> x = floats(static_cast<size_t>(n_cols * k), seed + 1);
  matmul_args a{t, w.data(), n_rows, k, x.data(), n_cols, nullptr, 0, n_rows};
  std::vector<float> y(n_cols * n_rows), other(n_cols * n_rows);
  std::string note;
  a.y = y.data();
  if (matmul(a) != kstatus::ok) note += " STATUS";
  for (isa i : {isa::ref, isa::avx2, isa::avx512, isa::neon}) {
    if (!isa_available(i)) continue;
    a.y = other.data();
    if (matmul_with(i, a) != kstatus::ok || !same_bits(other, y)) note += std::string(" MISMATCH-") + isa_name(i);
  }
  std::fill(other.begin(), other.end(), 0.f);
  a.y = other.data();
  a.row_end = n_rows / 2;
  matmul(a);
  a.row_begin = a.row_end;
  a.row_end = n_rows;
  matmul(a);
  if (!same_bits(other, y)) note += " MISMATCH-rowsplit";
  char name[96];
  std::snprintf(name, sizeof name, "matmul/%s/%" PRId64 "x%" PRId64 "x%" PRId64, tensor_type_name(t), n_rows, k,
                n_cols);
  line(name, hash_vec(y), note);
}

void check_matmuls() {
  for (tensor_type t : k_types) {
    const int be = tensor_type_traits(t).block_elems;
    const int64_t k1 = be == 1 ? 19 : be, k2 = be == 1 ? 64 : 2 * be, k3 = be == 1 ? 301 : (be == 32 ? 320 : 768);
    check_matmul(t, 5, k1, 1, 100);
    check_matmul(t, 8, k2, 3, 200);
    check_matmul(t, 13, k3, 8, 300);
    check_matmul(t, 6, k2, 17, 400);
  }
}

void check_get_rows() {
  for (tensor_type t : k_types) {
    const int64_t n_embd = 256, n_rows = 6;
    const std::vector<uint8_t> table = quantized(t, n_rows, n_embd, 500, 1.f);
    const int32_t ids[] = {5, 0, 3, 3};
    std::vector<float> out(4 * n_embd);
    if (get_rows_ref(t, table.data(), n_rows, n_embd, ids, 4, out.data()) != kstatus::ok) ++g_failures;
    line(std::string("get_rows/") + tensor_type_name(t), hash_vec(out));
  }
}

void check_norm_swiglu_softmax() {
  for (int64_t n : {1, 15, 64, 4096}) {
    const std::vector<float> x = floats(n, 600 + n, 3.f), w = floats(n, 700 + n);
    std::vector<float> y(n), y_ref(n), y2(n);
    rmsnorm(x.data(), w.data(), y.data(), n, 1e-5f);
    rmsnorm_ref(x.data(), w.data(), y_ref.data(), n, 1e-5f);
    rmsnorm(x.data(), nullptr, y2.data(), n, 1e-6f);
    line("rmsnorm/n=" + std::to_string(n), hash_vec(y), same_bits(y, y_ref) ? "" : "MISMATCH-ref");
    line("rmsnorm_noweight/n=" + std::to_string(n), hash_vec(y2));

    const std::vector<float> g = floats(n, 800 + n, 20.f), u = floats(n, 900 + n, 2.f);
    swiglu(g.data(), u.data(), y.data(), n);
    swiglu_ref(g.data(), u.data(), y_ref.data(), n);
    line("swiglu/n=" + std::to_string(n), hash_vec(y), same_bits(y, y_ref) ? "" : "MISMATCH-ref");

    std::vector<float> s = floats(n, 1000 + n, 30.f);
    if (n > 3) s[2] = -__builtin_inff();
    softmax_ref(s.data(), n);
    line("softmax/n=" + std::to_string(n), hash_vec(s));
  }
}

void check_rope() {
  const int32_t n_head = 4, head_dim = 64;
  const std::vector<float> factors = floats(16, 1100, 1.f);
  std::vector<float> fpos(factors.size());
  for (size_t i = 0; i < factors.size(); ++i) fpos[i] = 1.5f + factors[i];  // llama-3 style factors > 0
  for (int32_t n_rot : {64, 32}) {
    for (bool with_factors : {false, true}) {
      if (with_factors && n_rot != 32) continue;
      std::vector<double> inv(n_rot / 2);
      rope_inv_freq(inv.data(), n_rot, 500000.0, 1.0, with_factors ? fpos.data() : nullptr);
      line("rope_inv_freq/n_rot=" + std::to_string(n_rot) + (with_factors ? "/factors" : ""), hash_vec(inv));
      for (bool neox : {false, true}) {
        for (int32_t pos : {0, 1, 17, 1000, 131071}) {
          std::vector<float> x = floats(n_head * head_dim, 1200 + pos, 2.f);
          rope_ref(x.data(), n_head, head_dim, n_rot, pos, inv.data(), neox);
          line("rope/n_rot=" + std::to_string(n_rot) + (with_factors ? "/factors" : "") + (neox ? "/neox" : "") +
                   "/pos=" + std::to_string(pos),
               hash_vec(x));
        }
      }
    }
  }
}

void check_attention() {
  const int32_t n_head = 4, n_head_kv = 2, head_dim = 64, block_size = 16;
  const int64_t row = n_head_kv * head_dim;
  for (tensor_type kv : {tensor_type::f32, tensor_type::f16}) {
    for (int32_t n_pos : {1, 37, 300}) {
      const int32_t n_blocks = (n_pos + block_size - 1) / block_size;
      const size_t elem = kv == tensor_type::f32 ? 4 : 2;
      std::vector<std::vector<uint8_t>> kb(n_blocks), vb(n_blocks);
      std::vector<const void*> kp(n_blocks), vp(n_blocks);
      for (int32_t b = 0; b < n_blocks; ++b) {
        const std::vector<float> kf = floats(block_size * row, 1300 + b, 1.f), vf = floats(block_size * row, 1400 + b);
        kb[b].resize(kf.size() * elem);
        vb[b].resize(vf.size() * elem);
        if (quantize_row(kv, kf.data(), kb[b].data(), kf.size()) != kstatus::ok) ++g_failures;
        if (quantize_row(kv, vf.data(), vb[b].data(), vf.size()) != kstatus::ok) ++g_failures;
        kp[b] = kb[b].data();
        vp[b] = vb[b].data();
      }
      const std::vector<float> q = floats(n_head * head_dim, 1500 + n_pos, 2.f);
      std::vector<float> out(n_head * head_dim), out_ref(n_head * head_dim);
      std::vector<float> scratch(attention_scratch_floats(head_dim));
      attention_args a{q.data(), kv, kp.data(), vp.data(), block_size, row, n_head, n_head_kv, head_dim, n_pos,
                       0.125f, out.data(), scratch.data()};
      std::string note;
      if (attention(a) != kstatus::ok) note += " STATUS";
      a.out = out_ref.data();
      if (attention_ref(a) != kstatus::ok || !same_bits(out, out_ref)) note += " MISMATCH-ref";
      line(std::string("attention/") + tensor_type_name(kv) + "/n_pos=" + std::to_string(n_pos), hash_vec(out),
           note);
    }
  }
}

void check_math() {
  // exp_f32 / silu_f32 over a sweep of bit patterns covering [-110, 110] plus the special values.
  std::vector<float> in;
  for (int i = -110000; i <= 110000; i += 7) in.push_back(static_cast<float>(i) * 1e-3f);
  for (float f : {0.f, -0.f, 1e-30f, -1e-30f, 88.72f, 88.73f, -87.3f, -103.9f, -104.f, __builtin_inff(),
                  -__builtin_inff(), __builtin_nanf("")}) {
    in.push_back(f);
  }
  std::vector<float> e(in.size()), s(in.size());
  for (size_t i = 0; i < in.size(); ++i) {
    e[i] = exp_f32(in[i]);
    s[i] = silu_f32(in[i]);
  }
  line("exp_f32/sweep", hash_vec(e));
  line("silu_f32/sweep", hash_vec(s));
  std::vector<double> d;
  for (int i = 1; i <= 20000; ++i) {
    const double x = static_cast<double>(i) * 0.37 - 3000.0;
    double sn, cs;
    sincos_f64(x * 1000.0, &sn, &cs);
    d.push_back(exp_f64(x / 4.0));
    d.push_back(log_f64(static_cast<double>(i) * 1.7));
    d.push_back(pow_f64(500000.0, -static_cast<double>(i % 64) / 64.0));
    d.push_back(sn);
    d.push_back(cs);
  }
  line("math_f64/sweep", hash_vec(d));
}

}  // namespace

int main() {
  std::printf("# lime-bitcheck: dispatched variant %s\n", isa_name(isa_best()));
  check_quants();
  check_matmuls();
  check_get_rows();
  check_norm_swiglu_softmax();
  check_rope();
  check_attention();
  check_math();
  if (g_failures) std::fprintf(stderr, "lime-bitcheck: %d in-process disagreement(s)\n", g_failures);
  return g_failures ? 1 : 0;
}
