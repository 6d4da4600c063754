// Internal entry points of the x86 matmul variants (kernels/cpu/x86/*.cpp), one per type group and ISA.
// Each returns unsupported_type for a type it has no kernel for; matmul_avx2/matmul_avx512 (kernels/cpu/isa.h)
// route by type to these. All are bitwise equal to matmul_ref (canonical order, kernels/cpu/canonical.h).
#pragma once

#include "kernels/cpu/matmul.h"
#include "kernels/status.h"

namespace lime::cpu {

// K-quants: q4_k, q5_k, q6_k (kernels/cpu/x86/matmul_kquants_avx2.cpp / _avx512.cpp).
kstatus matmul_kquant_avx2(const matmul_args& a);
kstatus matmul_kquant_avx512(const matmul_args& a);
// q4_k batches up to this many columns (decode of a few sequences) take matvec_kquant_avx512 (measured 1.0-1.7x
// over the tiles at 2-11 columns; from 12 the small-batch path is as fast).
constexpr int64_t k_kquant_few_cols = 11;
// One column (decode) of q4_k, or 2 to k_kquant_few_cols columns with each weight dequantized once for all of them
// (kernels/cpu/x86/matvec_kquant_avx512.cpp); unsupported_type otherwise.
kstatus matvec_kquant_avx512(const matmul_args& a);
// One column (decode) of q5_k or q6_k, unpacking each super-block while the previous one is fed
// (kernels/cpu/x86/matvec_kpipe_avx512.cpp); unsupported_type otherwise.
kstatus matvec_kpipe_avx512(const matmul_args& a);

// Float weights: f32, f16, bf16 (defined in kernels/cpu/x86/matmul_avx2.cpp / matmul_avx512.cpp; one column takes
// the row-stream matvec of kernels/cpu/x86/matvec_float.h).
kstatus matmul_float_avx2(const matmul_args& a);
kstatus matmul_float_avx512(const matmul_args& a);

// Legacy 32-element block quants: q8_0, q4_0, q4_1, q5_0, q5_1
// (kernels/cpu/x86/matmul_legacy_avx2.cpp / _avx512.cpp).
kstatus matmul_legacy_avx2(const matmul_args& a);
// One column (decode) of q4_0 / q8_0 (kernels/cpu/x86/matvec_legacy_avx2.cpp); unsupported_type otherwise.
kstatus matvec_legacy_avx2(const matmul_args& a);
kstatus matmul_legacy_avx512(const matmul_args& a);
// q4_0 batches up to this many columns (decode of a few sequences) take matvec_legacy_avx512 (measured 1.04-1.62x
// over the tiles and the small-batch path at 2-16 columns; beyond, the lane path takes over from 32).
constexpr int64_t k_legacy_few_cols = 16;
// One column (decode) of q4_0 / q4_1 / q8_0, or 2 to k_legacy_few_cols columns of q4_0 with each weight
// dequantized once for all of them (kernels/cpu/x86/matvec_legacy_avx512.cpp); unsupported_type otherwise.
kstatus matvec_legacy_avx512(const matmul_args& a);

}  // namespace lime::cpu
