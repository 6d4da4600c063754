// fp16 (IEEE binary16) and bf16 <-> fp32 conversions in portable integer code (no F16C, no _Float16), so
// every host rounds the same way. Owns only the four scalar conversions declared in quants.h.
#include <cstdint>
#include <cstring>

#include "kernels/cpu/quants.h"

namespace lime::cpu {
namespace {

uint32_t float_bits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, sizeof u);
  return u;
}

float bits_float(uint32_t u) {
  float f;
  std::memcpy(&f, &u, sizeof f);
  return f;
}

// Drops the low `shift` bits of `v` (1 <= shift <= 31), rounding to nearest, ties to even.
uint32_t shift_round_even(uint32_t v, int shift) {
  const uint32_t q = v >> shift;
  const uint32_t rem = v & ((1u << shift) - 1u);
  const uint32_t half = 1u << (shift - 1);
  return (rem > half || (rem == half && (q & 1u))) ? q + 1u : q;
}

}  // namespace

float fp16_to_fp32(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  const uint32_t exp = (h >> 10) & 0x1fu;
  uint32_t man = h & 0x3ffu;
  if (exp == 0x1f) return bits_float(sign | 0x7f800000u | (man << 13));  // inf, or NaN with its payload
  if (exp == 0) {
    if (man == 0) return bits_float(sign);  // signed zero
    // Subnormal man * 2^-24: shift the leading one up to bit 10 and lower the exponent to match.
    int e = -14;
    while ((man & 0x400u) == 0) {
      man <<= 1;
      --e;
    }
    man &= 0x3ffu;
    return bits_float(sign | (static_cast<uint32_t>(e + 127) << 23) | (man << 13));
  }
  return bits_float(sign | ((exp - 15u + 127u) << 23) | (man << 13));
}

uint16_t fp32_to_fp16(float f) {
  const uint32_t u = float_bits(f);
  const uint32_t sign = (u >> 16) & 0x8000u;
  const uint32_t mag = u & 0x7fffffffu;
  if (mag > 0x7f800000u) {
    // NaN: keep the top 10 payload bits and force the quiet bit (so the result is never inf).
    return static_cast<uint16_t>(sign | 0x7e00u | ((mag & 0x7fffffu) >> 13));
  }
  // 65520 = halfway between 65504 (largest half) and 2^16; ties go to even, i.e. up to inf.
  if (mag >= 0x477ff000u) return static_cast<uint16_t>(sign | 0x7c00u);
  const uint32_t e = mag >> 23;  // biased fp32 exponent
  if (e < 113) {
    // Below 2^-14: a half subnormal, in units of 2^-24. The value is m * 2^(e-150) = m * 2^-24 * 2^-(126-e).
    const int shift = 126 - static_cast<int>(e);
    if (shift > 24) return static_cast<uint16_t>(sign);  // < 2^-25: rounds to zero
    const uint32_t m = (mag & 0x7fffffu) | 0x800000u;
    // A carry to 0x400 becomes the smallest normal, which is the right encoding.
    return static_cast<uint16_t>(sign | shift_round_even(m, shift));
  }
  // Normal: rebias the exponent, round the 23-bit mantissa to 10; a carry moves into the exponent.
  const uint32_t v = ((e - 112u) << 23) | (mag & 0x7fffffu);
  return static_cast<uint16_t>(sign | shift_round_even(v, 13));
}

float bf16_to_fp32(uint16_t h) { return bits_float(static_cast<uint32_t>(h) << 16); }

uint16_t fp32_to_bf16(float f) {
  const uint32_t u = float_bits(f);
  if ((u & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((u >> 16) | 0x40u);  // quiet NaN
  // Adding 0x7fff plus the lowest kept bit rounds to nearest even; overflow carries into inf correctly.
  return static_cast<uint16_t>((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
}

}  // namespace lime::cpu
