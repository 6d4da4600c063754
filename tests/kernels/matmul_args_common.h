// The matmul_args the kernel tests build (test_matmul*.cpp and matmul_simd_common.h): one helper instead of a copy
// in each test file.
#pragma once
#include <cstdint>

#include "kernels/cpu/matmul.h"
#include "kernels/tensor_type.h"

namespace lime::cpu::test {

// w [n_rows, k] in t times x [n_cols, k] -> y [n_cols, n_rows], output rows [r0, r1) (all of them by default).
inline matmul_args make_args(tensor_type t, const void* w, int64_t n_rows, int64_t k, const float* x, int64_t n_cols,
                             float* y, int64_t r0 = 0, int64_t r1 = -1) {
  matmul_args a;
  a.w_type = t;
  a.w = w;
  a.n_rows = n_rows;
  a.k = k;
  a.x = x;
  a.n_cols = n_cols;
  a.y = y;
  a.row_begin = r0;
  a.row_end = r1 < 0 ? n_rows : r1;
  return a;
}

}  // namespace lime::cpu::test
