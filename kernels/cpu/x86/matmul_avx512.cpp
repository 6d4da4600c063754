// AVX-512 (F/BW/VL/DQ) matmul: routes each weight type to its kernel group (float types here, legacy quants in
// matmul_legacy_avx512.cpp, K-quants in matmul_kquants_avx512.cpp). Bitwise equal to matmul_ref.
#include "kernels/cpu/x86/vec16_avx512.h"  // first: its warning pragmas must precede <immintrin.h>
#include "kernels/cpu/isa.h"
#include "kernels/cpu/x86/matmul_tile.h"
#include "kernels/cpu/x86/matmul_x86.h"
#include "kernels/cpu/x86/matvec_float.h"

namespace lime::cpu {

kstatus matmul_float_avx512(const matmul_args& a) {
  if (a.n_cols == 1) return float_matvec::matvec<vec16_avx512>(a);  // decode: row streams (matvec_float.h)
  return tile::run_float<vec16_avx512>(a);
}

int64_t matmul_lanes_floats_avx512(int64_t k, int64_t n_cols) { return lanes::packed_floats(k, n_cols); }

uint64_t matmul_thread_buffer_bytes_avx512(int64_t k, int64_t n_cols) {
  return lanes::thread_buffer_bytes<vec16_avx512>(k, n_cols);
}

void matmul_pack_lanes_avx512(const float* x, int64_t k, int64_t n_cols, int64_t p0, int64_t p1, float* x_lanes) {
  lanes::pack_panels<vec16_avx512>(x, k, n_cols, p0, p1, x_lanes);
}

kstatus matmul_avx512(const matmul_args& a) {
  switch (a.w_type) {
    case tensor_type::f32:
    case tensor_type::f16:
    case tensor_type::bf16: return matmul_float_avx512(a);
    case tensor_type::q8_0:
    case tensor_type::q4_0:
    case tensor_type::q4_1:
    case tensor_type::q5_0:
    case tensor_type::q5_1: return matmul_legacy_avx512(a);
    case tensor_type::q4_k:
    case tensor_type::q5_k:
    case tensor_type::q6_k: return matmul_kquant_avx512(a);
    default: return kstatus::unsupported_type;
  }
}

}  // namespace lime::cpu
