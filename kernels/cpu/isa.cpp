// Run-time choice of the CPU kernel variant: cpuid/xgetbv feature checks, the LIME_ISA override, and the
// matmul dispatch (variant first, matmul_ref for the types a variant lacks). Stubs keep other arches linking.
#include "kernels/cpu/isa.h"

#include <cstdlib>
#include <cstring>
#include <initializer_list>

#if LIME_ARCH_X86
#include <cpuid.h>
#endif

namespace lime::cpu {
namespace {

#if LIME_ARCH_X86
// XCR0: which register states the OS saves on context switch (bit 1 SSE, 2 AVX, 5-7 opmask/ZMM).
uint64_t read_xcr0() {
  uint32_t lo = 0, hi = 0;
  __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
  return (static_cast<uint64_t>(hi) << 32) | lo;
}

struct x86_features {
  bool avx2 = false;    // AVX2 + FMA + F16C, with YMM state enabled by the OS
  bool avx512 = false;  // the above + AVX-512 F/BW/VL/DQ, with opmask and ZMM state enabled by the OS
};

x86_features detect_x86() {
  x86_features f;
  unsigned a = 0, b = 0, c = 0, d = 0;
  if (!__get_cpuid(1, &a, &b, &c, &d)) return f;
  const bool fma = (c >> 12) & 1, osxsave = (c >> 27) & 1, avx = (c >> 28) & 1, f16c = (c >> 29) & 1;
  if (!osxsave || !avx) return f;
  const uint64_t xcr0 = read_xcr0();
  if ((xcr0 & 0x6) != 0x6) return f;  // SSE + AVX state
  if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return f;
  const bool avx2 = (b >> 5) & 1;
  const bool avx512f = (b >> 16) & 1, avx512dq = (b >> 17) & 1, avx512bw = (b >> 30) & 1, avx512vl = (b >> 31) & 1;
  f.avx2 = avx2 && fma && f16c;
  f.avx512 = f.avx2 && avx512f && avx512dq && avx512bw && avx512vl && (xcr0 & 0xe6) == 0xe6;
  return f;
}

const x86_features& features() {
  static const x86_features f = detect_x86();
  return f;
}
#endif

// Ranking of the variants on this architecture (only one SIMD family is ever available).
int rank(isa i) { return i == isa::ref ? 0 : i == isa::avx2 ? 1 : 2; }

isa choose_best() {
  isa best = isa::ref;
  for (isa i : {isa::avx2, isa::avx512, isa::neon}) {
    if (isa_available(i) && rank(i) > rank(best) && isa_selfcheck(i)) best = i;
  }
  const char* env = std::getenv("LIME_ISA");
  if (!env) return best;
  for (isa i : {isa::ref, isa::avx2, isa::avx512, isa::neon}) {
    if (std::strcmp(env, isa_name(i)) == 0 && isa_available(i) && rank(i) <= rank(best)) return i;
  }
  return best;  // unknown or unavailable names are ignored
}

}  // namespace

const char* isa_name(isa i) {
  switch (i) {
    case isa::ref: return "ref";
    case isa::avx2: return "avx2";
    case isa::avx512: return "avx512";
    case isa::neon: return "neon";
  }
  return "unknown";
}

bool isa_available(isa i) {
  switch (i) {
    case isa::ref: return true;
#if LIME_ARCH_X86
    case isa::avx2: return features().avx2;
    case isa::avx512: return features().avx512;
#endif
#if LIME_ARCH_ARM64
    case isa::neon: return true;
#endif
    default: return false;
  }
}

isa isa_best() {
  static const isa best = choose_best();
  return best;
}

kstatus matmul_with(isa i, const matmul_args& a) {
  if (!isa_available(i)) return kstatus::bad_argument;
  kstatus st = kstatus::unsupported_type;
  switch (i) {
    case isa::ref: return matmul_ref(a);
    case isa::avx2: st = matmul_avx2(a); break;
    case isa::avx512: st = matmul_avx512(a); break;
    case isa::neon: st = matmul_neon(a); break;
  }
  return st == kstatus::unsupported_type ? matmul_ref(a) : st;
}

kstatus matmul(const matmul_args& a) { return matmul_with(isa_best(), a); }

int64_t matmul_lanes_floats(int64_t k, int64_t n_cols) {
  switch (isa_best()) {
    case isa::avx2: return matmul_lanes_floats_avx2(k, n_cols);
    case isa::avx512: return matmul_lanes_floats_avx512(k, n_cols);
    default: return 0;
  }
}

kstatus matmul_pack_lanes(const float* x, int64_t k, int64_t n_cols, int64_t p0, int64_t p1, float* x_lanes) {
  if (!x || !x_lanes || matmul_lanes_floats(k, n_cols) == 0) return kstatus::bad_argument;
  if (p0 < 0 || p1 < p0 || p1 > (n_cols + 15) / 16) return kstatus::bad_argument;
  if (isa_best() == isa::avx512) matmul_pack_lanes_avx512(x, k, n_cols, p0, p1, x_lanes);
  else matmul_pack_lanes_avx2(x, k, n_cols, p0, p1, x_lanes);
  return kstatus::ok;
}

uint64_t matmul_thread_buffer_bytes(int64_t k, int64_t n_cols) {
  switch (isa_best()) {
    case isa::avx2: return matmul_thread_buffer_bytes_avx2(k, n_cols);
    case isa::avx512: return matmul_thread_buffer_bytes_avx512(k, n_cols);
    default: return 0;
  }
}

#if !LIME_ARCH_X86
kstatus matmul_avx2(const matmul_args&) { return kstatus::unsupported_type; }
kstatus matmul_avx512(const matmul_args&) { return kstatus::unsupported_type; }
int64_t matmul_lanes_floats_avx2(int64_t, int64_t) { return 0; }
void matmul_pack_lanes_avx2(const float*, int64_t, int64_t, int64_t, int64_t, float*) {}
uint64_t matmul_thread_buffer_bytes_avx2(int64_t, int64_t) { return 0; }
int64_t matmul_lanes_floats_avx512(int64_t, int64_t) { return 0; }
void matmul_pack_lanes_avx512(const float*, int64_t, int64_t, int64_t, int64_t, float*) {}
uint64_t matmul_thread_buffer_bytes_avx512(int64_t, int64_t) { return 0; }
#endif
#if !LIME_ARCH_ARM64
kstatus matmul_neon(const matmul_args&) { return kstatus::unsupported_type; }
#endif

}  // namespace lime::cpu
