// lime's elementary functions (exp, log, pow, sin/cos, silu) from IEEE +, *, fma and bit manipulation only.
// Never calls libm for a result, so every platform (and every SIMD/CUDA twin) can reproduce the same bits.
#include "kernels/cpu/math.h"

#include "kernels/cpu/math_impl.h"  // exp_f32 / silu_f32: one algorithm for the host and CUDA

#include <cmath>
#include <cstring>
#include <limits>

namespace lime::cpu {
namespace {

double bits_to_f64(uint64_t u) {
  double d;
  std::memcpy(&d, &u, sizeof d);
  return d;
}

uint64_t f64_to_bits(double d) {
  uint64_t u;
  std::memcpy(&u, &d, sizeof u);
  return u;
}

// 2^n for n in the normal range (callers keep n there).
double pow2_f64(int n) { return bits_to_f64(static_cast<uint64_t>(n + 1023) << 52); }

// p * 2^n in two steps so that the first product stays normal and exact and only the second rounds: the result is
// round(p * 2^n) even when it is subnormal, and overflows to inf when it should.
double scale_f64(double p, int n) {
  int n1 = n / 2;
  return (p * pow2_f64(n1)) * pow2_f64(n - n1);
}

// ---- fp64 exp/log constants. k_ln2_hi has 32 significant bits (n * k_ln2_hi exact for |n| < 2^21).
constexpr double k_log2e = 0x1.71547652b82fep+0;
constexpr double k_ln2_hi = 0x1.62e42feep-1;
constexpr double k_ln2_lo = 0x1.a39ef35793c76p-33;
constexpr double k_shift = 0x1.8p+52;  // 1.5 * 2^52
constexpr double k_sqrt2 = 0x1.6a09e667f3bcdp+0;

// ---- pi/2 in three parts: k_pio2_1 and k_pio2_2 have 23 significant bits each, so n * k_pio2_{1,2} is exact for
// |n| < 2^30; k_pio2_3 is the rest rounded to double (pi/2 to about 101 bits in all).
constexpr double k_2_over_pi = 0x1.45f306dc9c883p-1;
constexpr double k_pio2_1 = 0x1.921fb4p+0;
constexpr double k_pio2_2 = 0x1.4442dp-24;
constexpr double k_pio2_3 = 0x1.8469898cc5170p-48;

}  // namespace

// Both live in math_impl.h so kernels/cuda compiles the very same sequence.
float exp_f32(float x) { return math_impl::exp_f32(x); }

float silu_f32(float x) { return math_impl::silu_f32(x); }

double exp_f64(double x) {
  if (x != x) return x + x;
  if (x > 710.0) return std::numeric_limits<double>::infinity();  // e^710 > DBL_MAX
  if (x < -746.0) return 0.0;                                     // e^-746 < 2^-1075
  double nd = (x * k_log2e + k_shift) - k_shift;
  double r = x - nd * k_ln2_hi;  // exact: nd * k_ln2_hi is exact and close to x
  r = r - nd * k_ln2_lo;
  // Taylor polynomial of degree 13 (truncation error < 0.05 ulp on |r| <= 0.35).
  double p = 1.0 / 6227020800.0;  // 1/13!
  p = std::fma(p, r, 1.0 / 479001600.0);
  p = std::fma(p, r, 1.0 / 39916800.0);
  p = std::fma(p, r, 1.0 / 3628800.0);
  p = std::fma(p, r, 1.0 / 362880.0);
  p = std::fma(p, r, 1.0 / 40320.0);
  p = std::fma(p, r, 1.0 / 5040.0);
  p = std::fma(p, r, 1.0 / 720.0);
  p = std::fma(p, r, 1.0 / 120.0);
  p = std::fma(p, r, 1.0 / 24.0);
  p = std::fma(p, r, 1.0 / 6.0);
  p = std::fma(p, r, 0.5);
  p = std::fma(p, r, 1.0);
  p = std::fma(p, r, 1.0);
  return scale_f64(p, static_cast<int>(nd));
}

double log_f64(double x) {
  if (x != x) return x + x;
  if (x < 0.0) return std::numeric_limits<double>::quiet_NaN();
  if (x == 0.0) return -std::numeric_limits<double>::infinity();
  if (x == std::numeric_limits<double>::infinity()) return x;
  int e = 0;
  uint64_t u = f64_to_bits(x);
  if ((u >> 52) == 0) {  // subnormal: bring it into the normal range first
    u = f64_to_bits(x * 0x1p54);
    e = -54;
  }
  e += static_cast<int>(u >> 52) - 1023;
  double m = bits_to_f64((u & 0x000fffffffffffffull) | 0x3ff0000000000000ull);  // [1, 2)
  if (m > k_sqrt2) {
    m = m * 0.5;
    e += 1;
  }
  // m in [sqrt(2)/2, sqrt(2)]; log(m) = log(1+f) = 2 atanh(s) with s = f / (2 + f), |s| <= 0.1716.
  // Written as f - (hfsq - s*(hfsq + R)), R = sum_{k=1..10} 2 s^(2k) / (2k+1), so the large terms are exact-ish.
  double f = m - 1.0;  // exact
  double s = f / (2.0 + f);
  double z = s * s;
  double rz = 2.0 / 21.0;
  rz = std::fma(rz, z, 2.0 / 19.0);
  rz = std::fma(rz, z, 2.0 / 17.0);
  rz = std::fma(rz, z, 2.0 / 15.0);
  rz = std::fma(rz, z, 2.0 / 13.0);
  rz = std::fma(rz, z, 2.0 / 11.0);
  rz = std::fma(rz, z, 2.0 / 9.0);
  rz = std::fma(rz, z, 2.0 / 7.0);
  rz = std::fma(rz, z, 2.0 / 5.0);
  rz = std::fma(rz, z, 2.0 / 3.0);
  double big_r = rz * z;
  double hfsq = 0.5 * f * f;
  double dk = static_cast<double>(e);
  double t = s * (hfsq + big_r) + dk * k_ln2_lo;
  return dk * k_ln2_hi + (f - (hfsq - t));
}

double pow_f64(double base, double e) { return exp_f64(e * log_f64(base)); }

void sincos_f64(double x, double* s, double* c) {
  if (!(std::fabs(x) <= std::numeric_limits<double>::max())) {  // inf or NaN
    *s = x - x;
    *c = x - x;
    return;
  }
  if (std::fabs(x) < 0x1p-27) {  // sin x = x and cos x = 1 after rounding; also keeps sin(-0) = -0
    *s = x;
    *c = 1.0;
    return;
  }
  // n = round(x * 2/pi); quadrant = n mod 4 (computed in double so huge |x| has no integer overflow).
  double nd = (x * k_2_over_pi + k_shift) - k_shift;
  double quad = nd - 4.0 * std::floor(nd * 0.25);
  int q = static_cast<int>(quad);
  double r = x - nd * k_pio2_1;  // exact for |n| < 2^30
  r = r - nd * k_pio2_2;
  r = r - nd * k_pio2_3;
  double z = r * r;
  // sin(r) = r + r^3 * S(z), Taylor to r^17; cos(r) = 1 - z/2 + z^2 * C(z), Taylor to r^16.
  double ps = -1.0 / 355687428096000.0;  // -1/17!
  ps = std::fma(ps, z, 1.0 / 1307674368000.0);
  ps = std::fma(ps, z, -1.0 / 6227020800.0);
  ps = std::fma(ps, z, 1.0 / 39916800.0);
  ps = std::fma(ps, z, -1.0 / 362880.0);
  ps = std::fma(ps, z, 1.0 / 5040.0);
  ps = std::fma(ps, z, -1.0 / 120.0);
  ps = std::fma(ps, z, 1.0 / 6.0);
  double sin_r = r - (r * z) * ps;
  double pc = 1.0 / 20922789888000.0;  // 1/16!
  pc = std::fma(pc, z, -1.0 / 87178291200.0);
  pc = std::fma(pc, z, 1.0 / 479001600.0);
  pc = std::fma(pc, z, -1.0 / 3628800.0);
  pc = std::fma(pc, z, 1.0 / 40320.0);
  pc = std::fma(pc, z, -1.0 / 720.0);
  pc = std::fma(pc, z, 1.0 / 24.0);
  double hz = 0.5 * z;
  double w = 1.0 - hz;
  // ((1 - w) - hz) recovers the rounding error of w exactly.
  double cos_r = w + (((1.0 - w) - hz) + (z * z) * pc);
  switch (q) {
    case 0: *s = sin_r; *c = cos_r; break;
    case 1: *s = cos_r; *c = -sin_r; break;
    case 2: *s = -sin_r; *c = -cos_r; break;
    default: *s = -cos_r; *c = sin_r; break;
  }
}

}  // namespace lime::cpu
