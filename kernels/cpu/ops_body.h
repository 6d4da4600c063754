// The one SIMD body of the vector exp_f32/silu_f32, swiglu and rmsnorm (attention: ops_attention_body.h and
// ops_attention.h), written against a 16-lane fp32 traits type V (x86/ops_avx2.cpp, x86/ops_avx512.cpp,
// arm/ops_neon.cpp; tests add a scalar one). Every op repeats its reference's operations in its order (math.cpp,
// swiglu.cpp, rmsnorm.h), so results are bitwise equal. Unnamed namespace: each ISA file compiles a private copy
// with its flags; no std:: math (scalar fma/sqrt come from V).
#pragma once
#include <cstdint>

namespace lime::cpu {
namespace {
namespace ops {

// exp16/silu16 return two ymm on AVX2, which a call would pass through memory: keep them in their callers.
#define LIME_OPS_INLINE inline __attribute__((always_inline))

// ---- exp_f32 / silu_f32 on 16 lanes: math.cpp's sequence, its three early returns as blends.
template <class V>
LIME_OPS_INLINE typename V::f exp16(typename V::f x) {
  using f = typename V::f;
  using i = typename V::i;
  const f shift = V::set1(0x1.8p+23f);  // 1.5 * 2^23 (math.cpp: k_shift_f)
  const f nf = V::sub(V::add(V::mul(x, V::set1(0x1.715476p+0f)), shift), shift);
  f r = V::fnma(nf, V::set1(0x1.62e4p-1f), x);  // fma(-nf, ln2_hi, x)
  r = V::fnma(nf, V::set1(0x1.7f7d1cp-20f), r);
  f p = V::set1(1.0f / 5040.0f);
  p = V::fma(p, r, V::set1(1.0f / 720.0f));
  p = V::fma(p, r, V::set1(1.0f / 120.0f));
  p = V::fma(p, r, V::set1(1.0f / 24.0f));
  p = V::fma(p, r, V::set1(1.0f / 6.0f));
  p = V::fma(p, r, V::set1(0.5f));
  p = V::fma(p, r, V::set1(1.0f));
  p = V::fma(p, r, V::set1(1.0f));
  // scale_f32(p, n): n1 = n / 2 truncated toward zero (add the sign bit, then shift arithmetically);
  // (p * 2^n1) * 2^(n - n1). Lanes outside [-104, 89] compute garbage here and are replaced below.
  const i n = V::to_int(nf);
  const i n1 = V::template sra_i<1>(V::add_i(n, V::template srl_i<31>(n)));
  const i n2 = V::sub_i(n, n1);
  const i bias = V::set1_i(127);
  const f s1 = V::as_f(V::template sll_i<23>(V::add_i(n1, bias)));
  const f s2 = V::as_f(V::template sll_i<23>(V::add_i(n2, bias)));
  f y = V::mul(V::mul(p, s1), s2);
  y = V::select(V::cmp_lt(x, V::set1(-104.0f)), V::zero(), y);
  y = V::select(V::cmp_gt(x, V::set1(89.0f)), V::set1_bits(0x7f800000u), y);
  return V::select(V::is_nan(x), V::add(x, x), y);
}

template <class V>
LIME_OPS_INLINE typename V::f silu16(typename V::f x) {
  const typename V::f y = V::div(x, V::add(V::set1(1.0f), exp16<V>(V::neg(x))));
  return V::select(V::cmp_eq(x, V::set1_bits(0xff800000u)), V::set1_bits(0x80000000u), y);  // silu(-inf) = -0
}

template <class V, class Fn>
void map_array(const float* x, float* y, int64_t n, Fn fn) {
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) V::store(y + i, fn(V::load(x + i)));
  if (i < n) V::store_n(y + i, fn(V::load_n(x + i, static_cast<int>(n - i))), static_cast<int>(n - i));
}

template <class V>
void exp_array(const float* x, float* y, int64_t n) {
  map_array<V>(x, y, n, [](typename V::f v) { return exp16<V>(v); });
}

template <class V>
void silu_array(const float* x, float* y, int64_t n) {
  map_array<V>(x, y, n, [](typename V::f v) { return silu16<V>(v); });
}

// ---- swiglu: out[i] = silu_f32(gate[i]) * up[i]. Each step loads before it stores, so out may alias an input.
template <class V>
void swiglu(const float* gate, const float* up, float* out, int64_t n) {
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) V::store(out + i, V::mul(silu16<V>(V::load(gate + i)), V::load(up + i)));
  if (i < n) {
    const int t = static_cast<int>(n - i);
    V::store_n(out + i, V::mul(silu16<V>(V::load_n(gate + i, t)), V::load_n(up + i, t)), t);
  }
}

// ---- rmsnorm: sum of squares in the canonical lanes (masked tail), then the reference's scalar steps.
template <class V>
void rmsnorm(const float* x, const float* w, float* y, int64_t n, float eps) {
  using f = typename V::f;
  if (n <= 0) return;
  f acc = V::zero();
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    const f v = V::load(x + i);
    acc = V::fma(v, v, acc);
  }
  const int tail = static_cast<int>(n - i);
  if (tail) {
    const f v = V::load_n(x + i, tail);
    acc = V::fma_first(v, v, acc, tail);
  }
  const float mean = V::fold(acc) / static_cast<float>(n);
  const f scale = V::set1(1.0f / V::sqrt_s(mean + eps));
  for (i = 0; i + 16 <= n; i += 16) {
    const f v = V::mul(V::load(x + i), scale);
    V::store(y + i, w ? V::mul(v, V::load(w + i)) : v);
  }
  if (tail) {
    const f v = V::mul(V::load_n(x + i, tail), scale);
    V::store_n(y + i, w ? V::mul(v, V::load_n(w + i, tail)) : v, tail);
  }
}

#undef LIME_OPS_INLINE

}  // namespace ops
}  // namespace
}  // namespace lime::cpu
