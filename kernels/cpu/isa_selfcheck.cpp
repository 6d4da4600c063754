// Run-time self-check of a SIMD variant: before the dispatcher trusts a variant it must reproduce the reference
// bits on fixed small inputs for every kernel it provides. A variant that was never run on real hardware (e.g.
// AVX-512 built on a machine without it) can therefore never silently change results; it is skipped instead.
#include <cstdint>
#include <cstring>
#include <vector>

#include "kernels/cpu/attention.h"
#include "kernels/cpu/isa.h"
#include "kernels/cpu/quants.h"
#include "kernels/cpu/rmsnorm.h"
#include "kernels/cpu/swiglu.h"
#if LIME_ARCH_X86
#include "kernels/cpu/x86/ops_x86.h"
#endif

namespace lime::cpu {
namespace {

// Deterministic values in [-1, 1) (no libm, no <random>: the same inputs on every platform).
struct lcg {
  uint64_t s;
  float next() {
    s = s * 6364136223846793005ull + 1442695040888963407ull;
    return static_cast<float>(static_cast<int32_t>(s >> 32)) * (1.0f / 2147483648.0f);
  }
  std::vector<float> fill(size_t n) {
    std::vector<float> v(n);
    for (float& x : v) x = next();
    return v;
  }
};

bool same(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

bool matmul_matches(isa i, tensor_type t, int64_t k, int64_t n_cols, lcg& rng) {
  const int64_t n_rows = 9;
  std::vector<float> wf = rng.fill(static_cast<size_t>(n_rows * k));
  std::vector<uint8_t> w(tensor_row_bytes(t, k) * static_cast<size_t>(n_rows));
  for (int64_t r = 0; r < n_rows; ++r)
    if (quantize_row(t, &wf[static_cast<size_t>(r * k)], w.data() + static_cast<size_t>(r) * tensor_row_bytes(t, k), k) != kstatus::ok) return false;
  std::vector<float> x = rng.fill(static_cast<size_t>(n_cols * k));
  std::vector<float> y_ref(static_cast<size_t>(n_cols * n_rows)), y(y_ref.size());
  matmul_args a{t, w.data(), n_rows, k, x.data(), n_cols, y_ref.data(), 0, n_rows};
  if (matmul_ref(a) != kstatus::ok) return false;
  a.y = y.data();
  return matmul_with(i, a) == kstatus::ok && same(y, y_ref);
}

#if LIME_ARCH_X86
bool ops_match(isa i, lcg& rng) {
  const bool wide = i == isa::avx512;
  const int64_t n = 300;
  std::vector<float> g = rng.fill(n), u = rng.fill(n), w = rng.fill(n);
  std::vector<float> ref(n), out(n);
  swiglu_ref(g.data(), u.data(), ref.data(), n);
  (wide ? swiglu_avx512 : swiglu_avx2)(g.data(), u.data(), out.data(), n);
  if (!same(ref, out)) return false;
  rmsnorm_ref(g.data(), w.data(), ref.data(), n, 1e-5f);
  (wide ? rmsnorm_avx512 : rmsnorm_avx2)(g.data(), w.data(), out.data(), n, 1e-5f);
  if (!same(ref, out)) return false;
  // Attention of 8 tokens at positions 249..256 (the last one sees two chunks) in one call, GQA 4/2, head_dim 64,
  // blocks of 32, f32 and f16 KV.
  const int32_t n_head = 4, n_kv = 2, hd = 64, n_pos = 250, n_query = 8, bs = 32;
  const int64_t row = static_cast<int64_t>(n_kv) * hd;
  for (tensor_type kv_t : {tensor_type::f32, tensor_type::f16}) {
    const size_t esz = kv_t == tensor_type::f32 ? 4 : 2;
    const int32_t n_blocks = (n_pos + n_query - 1 + bs - 1) / bs;
    std::vector<uint8_t> kmem(static_cast<size_t>(n_blocks) * bs * row * esz), vmem(kmem.size());
    std::vector<float> kv = rng.fill(static_cast<size_t>(n_blocks) * bs * row * 2);
    quantize_row(kv_t, kv.data(), kmem.data(), static_cast<int64_t>(n_blocks) * bs * row);
    quantize_row(kv_t, kv.data() + static_cast<size_t>(n_blocks) * bs * row, vmem.data(), static_cast<int64_t>(n_blocks) * bs * row);
    std::vector<const void*> kb, vb;
    for (int32_t b = 0; b < n_blocks; ++b) {
      kb.push_back(kmem.data() + static_cast<size_t>(b) * bs * row * esz);
      vb.push_back(vmem.data() + static_cast<size_t>(b) * bs * row * esz);
    }
    std::vector<float> q = rng.fill(static_cast<size_t>(n_query) * n_head * hd);
    std::vector<float> scratch(static_cast<size_t>(attention_scratch_floats(hd)));
    std::vector<float> o_ref(q.size()), o(q.size());
    attention_args a;
    a.q = q.data(); a.kv_type = kv_t; a.k_blocks = kb.data(); a.v_blocks = vb.data(); a.block_size = bs;
    a.kv_row_elems = row; a.n_head = n_head; a.n_head_kv = n_kv; a.head_dim = hd; a.n_pos = n_pos;
    a.scale = 0.125f; a.out = o_ref.data(); a.scratch = scratch.data(); a.n_query = n_query;
    if (attention_ref(a) != kstatus::ok) return false;
    a.out = o.data();
    if ((wide ? attention_avx512 : attention_avx2)(a) != kstatus::ok || !same(o, o_ref)) return false;
  }
  return true;
}
#endif

}  // namespace

bool isa_selfcheck(isa i) {
  if (i == isa::ref) return true;
  if (!isa_available(i)) return false;
  lcg rng{0x5eed1234abcdull};
  const tensor_type types[] = {tensor_type::f32, tensor_type::f16, tensor_type::bf16, tensor_type::q8_0,
                               tensor_type::q4_0, tensor_type::q4_1, tensor_type::q5_0, tensor_type::q5_1,
                               tensor_type::q4_k, tensor_type::q5_k, tensor_type::q6_k};
  for (tensor_type t : types) {
    for (int64_t n_cols : {1, 5}) {
      if (!matmul_matches(i, t, 512, n_cols, rng)) return false;
      const bool plain = tensor_type_traits(t).block_elems == 1;
      if (plain && !matmul_matches(i, t, 173, n_cols, rng)) return false;
    }
  }
#if LIME_ARCH_X86
  if ((i == isa::avx2 || i == isa::avx512) && !ops_match(i, rng)) return false;
#endif
  return true;
}

}  // namespace lime::cpu
