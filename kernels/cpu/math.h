// lime's own elementary functions: exp, log, sin/cos, silu. Built from IEEE +, *, fma, sqrt and bit
// manipulation only, so x86-64 and aarch64 (and CUDA) give identical bits; libm is never used for model math.
#pragma once
#include <cstdint>

namespace lime::cpu {

// e^x in fp32, within 1 ulp of the true value; exp(-inf) = 0, exp(+inf) = +inf, NaN propagates,
// underflow goes to 0 (or subnormals), overflow to +inf.
float exp_f32(float x);
// x / (1 + e^-x) with exp_f32.
float silu_f32(float x);

// Double-precision helpers for setting up tables (rope frequencies): within 1 ulp, deterministic.
double exp_f64(double x);
double log_f64(double x);  // x > 0
double pow_f64(double base, double e);  // base > 0: exp(e * log(base))
// sin and cos of x (radians) in double with Cody-Waite range reduction; accurate for |x| < 2^30.
void sincos_f64(double x, double* s, double* c);

}  // namespace lime::cpu
