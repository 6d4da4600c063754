// AVX2+FMA+F16C matmul for the 32-element legacy quants (q8_0, q4_0, q4_1, q5_0, q5_1), dequantized in
// registers with the reference's operations. Bitwise equal to matmul_ref.
#include "kernels/cpu/x86/matmul_tile.h"
#include "kernels/cpu/x86/matmul_x86.h"
#include "kernels/cpu/x86/vec16_avx2.h"

namespace lime::cpu {

kstatus matmul_legacy_avx2(const matmul_args& a) {
  if (a.n_cols == 1 && (a.w_type == tensor_type::q4_0 || a.w_type == tensor_type::q8_0)) return matvec_legacy_avx2(a);
  return tile::run_legacy<vec16_avx2>(a);
}

}  // namespace lime::cpu
