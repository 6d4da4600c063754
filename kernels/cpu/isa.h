// Instruction-set variants of the CPU kernels and the run-time choice between them. Every variant reproduces
// the reference's canonical order bit for bit (kernels/cpu/canonical.h), so the choice never changes results.
#pragma once

#include "kernels/cpu/matmul.h"
#include "kernels/status.h"

namespace lime::cpu {

enum class isa { ref = 0, avx2 = 1, avx512 = 2, neon = 3 };
const char* isa_name(isa i);

// True when this build has the variant and this CPU can run it (cpuid on x86; NEON is baseline on aarch64).
bool isa_available(isa i);
// True when variant i reproduces the reference bit for bit on fixed small inputs (every type, K tails, several
// columns, and the attention/swiglu/rmsnorm variants). isa_best() never picks a variant that fails it, so a
// variant that was never run on real hardware cannot silently change results (kernels/cpu/isa_selfcheck.cpp).
bool isa_selfcheck(isa i);

// The best available variant that passes isa_selfcheck, chosen once. The environment variable LIME_ISA (ref, avx2, avx512, neon) lowers it
// (a variant that is not available is ignored), so tests and benchmarks can compare.
isa isa_best();

// Per-ISA matmul entry points (defined in kernels/cpu/x86/*.cpp and kernels/cpu/arm/*.cpp). They return
// unsupported_type for a type they have no kernel for (the dispatcher then uses the reference).
kstatus matmul_avx2(const matmul_args& a);
kstatus matmul_avx512(const matmul_args& a);
kstatus matmul_neon(const matmul_args& a);
// The lane path's packed activations (matmul_lanes_floats / matmul_pack_lanes in kernels/cpu/matmul.h;
// arguments checked there), the same layout on AVX2 and AVX-512. 0 / nothing on builds without x86.
int64_t matmul_lanes_floats_avx2(int64_t k, int64_t n_cols);
void matmul_pack_lanes_avx2(const float* x, int64_t k, int64_t n_cols, int64_t p0, int64_t p1, float* x_lanes);
uint64_t matmul_thread_buffer_bytes_avx2(int64_t k, int64_t n_cols);
int64_t matmul_lanes_floats_avx512(int64_t k, int64_t n_cols);
void matmul_pack_lanes_avx512(const float* x, int64_t k, int64_t n_cols, int64_t p0, int64_t p1, float* x_lanes);
uint64_t matmul_thread_buffer_bytes_avx512(int64_t k, int64_t n_cols);
// A given variant (falls back to matmul_ref for types it lacks); bad_argument when the variant is unavailable.
kstatus matmul_with(isa i, const matmul_args& a);

}  // namespace lime::cpu
