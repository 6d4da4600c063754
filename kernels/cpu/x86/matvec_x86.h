// What the x86 matvecs share (matvec_legacy_avx2.cpp / _avx512.cpp, matvec_kquant_avx512.cpp): argument checks
// and the walk over row groups. Plain code, in an unnamed namespace: each ISA file keeps its own copy.
#pragma once
#include <cstddef>
#include <cstdint>

#include "kernels/cpu/matmul.h"
#include "kernels/status.h"
#include "kernels/tensor_type.h"

namespace lime::cpu {
namespace {

// A row kernel: rows [0, R) at w (row stride row_bytes) of a matvec over n_blocks blocks -> y[0, R).
using matvec_rows_fn = void (*)(const uint8_t* w, size_t row_bytes, const float* x, int64_t n_blocks, float* y);

// a, a matvec (one column; unsupported_type for a batch) over blocks of block_elems elements and block_bytes
// bytes: rows [row_begin, row_end) in groups of `group` rows by group_rows, the rest one at a time by one_row.
inline kstatus run_matvec(const matmul_args& a, int64_t block_elems, size_t block_bytes, int group,
                          matvec_rows_fn group_rows, matvec_rows_fn one_row) {
  if (a.n_cols != 1) return kstatus::unsupported_type;
  if (!a.w || !a.x || !a.y) return kstatus::bad_argument;
  if (a.n_rows < 0 || a.k < 0 || a.k % block_elems != 0) return kstatus::bad_shape;
  if (a.row_begin < 0 || a.row_end > a.n_rows || a.row_begin > a.row_end) return kstatus::bad_argument;
  const int64_t nb = a.k / block_elems;
  const size_t rb = static_cast<size_t>(nb) * block_bytes;
  const uint8_t* w = static_cast<const uint8_t*>(a.w);
  int64_t r = a.row_begin;
  for (; r + group <= a.row_end; r += group) group_rows(w + r * rb, rb, a.x, nb, a.y + r);
  for (; r < a.row_end; ++r) one_row(w + r * rb, rb, a.x, nb, a.y + r);
  return kstatus::ok;
}

}  // namespace
}  // namespace lime::cpu
