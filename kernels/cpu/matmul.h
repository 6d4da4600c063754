// Reference matmul/matvec over every computable weight type: y = x * W^T with fp32 activations and
// fp32 accumulation in the canonical reduction order (kernels/cpu/canonical.h). Batch- and thread-invariant:
// y[c, r] depends only on row r of W and row c of x.
#pragma once
#include <cstdint>

#include "kernels/status.h"
#include "kernels/tensor_type.h"

namespace lime::cpu {

struct matmul_args {
  tensor_type w_type;
  const void* w;      // [n_rows, k] in w_type; row r starts at w + r * tensor_row_bytes(w_type, k)
  int64_t n_rows;     // output features
  int64_t k;          // input features (a multiple of the type's block_elems)
  const float* x;     // [n_cols, k] fp32, row stride k
  int64_t n_cols;     // tokens in the batch (1 = matvec)
  float* y;           // [n_cols, n_rows] fp32, row stride n_rows
  int64_t row_begin;  // compute only output rows [row_begin, row_end) (threads split here)
  int64_t row_end;
};

// Plain loops: for each weight row, dequantize it block by block (kernels/cpu/quants.h) and feed the
// canonical lanes. Never materializes more than one block of fp32 weights.
kstatus matmul_ref(const matmul_args& a);

// The fastest variant this CPU runs (kernels/cpu/isa.h); bitwise equal to matmul_ref.
kstatus matmul(const matmul_args& a);

}  // namespace lime::cpu
