// What the legacy-quant matvecs of every x86 ISA share (matvec_legacy_avx2.cpp / _avx512.cpp): argument checks
// and the walk over row groups. Plain code, in an unnamed namespace: each ISA file keeps its own copy.
#pragma once
#include <cstddef>
#include <cstdint>

#include "kernels/cpu/matmul.h"
#include "kernels/status.h"
#include "kernels/tensor_type.h"

namespace lime::cpu {
namespace {

// ok when a is a matvec (one column) of 32-element blocks the kernels can run; unsupported_type for a batch.
inline kstatus check_legacy_matvec(const matmul_args& a) {
  if (a.n_cols != 1) return kstatus::unsupported_type;
  if (!a.w || !a.x || !a.y) return kstatus::bad_argument;
  if (a.n_rows < 0 || a.k < 0 || a.k % 32 != 0) return kstatus::bad_shape;
  if (a.row_begin < 0 || a.row_end > a.n_rows || a.row_begin > a.row_end) return kstatus::bad_argument;
  return kstatus::ok;
}

// Rows [row_begin, row_end) of a matvec over blocks of F::bytes: groups of R rows by rows<F, R>, the rest one at a
// time by rows<F, 1>. Rows(w, row_bytes, x, n_blocks, y) is the ISA file's row kernel.
template <class F, int R, template <class, int> class Rows>
kstatus run_row_groups(const matmul_args& a) {
  const int64_t nb = a.k / 32;
  const size_t rb = static_cast<size_t>(nb) * F::bytes;
  const uint8_t* w = static_cast<const uint8_t*>(a.w);
  int64_t r = a.row_begin;
  for (; r + R <= a.row_end; r += R) Rows<F, R>::run(w + r * rb, rb, a.x, nb, a.y + r);
  for (; r < a.row_end; ++r) Rows<F, 1>::run(w + r * rb, rb, a.x, nb, a.y + r);
  return kstatus::ok;
}

}  // namespace
}  // namespace lime::cpu
