// AVX-512 (F/BW/VL/DQ) matmul for the 32-element legacy quants (q8_0, q4_0, q4_1, q5_0, q5_1), dequantized in
// registers with the reference's operations. Bitwise equal to matmul_ref.
#include "kernels/cpu/x86/vec16_avx512.h"  // first: its warning pragmas must precede <immintrin.h>
#include "kernels/cpu/x86/matmul_tile.h"
#include "kernels/cpu/x86/matmul_x86.h"

namespace lime::cpu {

kstatus matmul_legacy_avx512(const matmul_args& a) {
  const tensor_type t = a.w_type;
  if (a.n_cols == 1 && (t == tensor_type::q4_0 || t == tensor_type::q4_1 || t == tensor_type::q8_0)) {
    return matvec_legacy_avx512(a);
  }
  if (a.w_type == tensor_type::q4_0 && a.n_cols >= 2 && a.n_cols <= k_legacy_few_cols) return matvec_legacy_avx512(a);
  return tile::run_legacy<vec16_avx512>(a);
}

}  // namespace lime::cpu
