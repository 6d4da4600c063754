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
  // Optional: x already packed lane-major by matmul_pack_lanes (all (n_cols + 15) / 16 panels), which the batched
  // kernels that pack x read instead of packing their own copy. x must be given all the same (kernels that do
  // not pack read it); the bits of y never depend on whether x_lanes is given.
  const float* x_lanes = nullptr;  // [(n_cols + 15) / 16 panels][16 lanes][k / 16][16 columns]
};

// Plain loops: for each weight row, dequantize it block by block (kernels/cpu/quants.h) and feed the
// canonical lanes. Never materializes more than one block of fp32 weights.
kstatus matmul_ref(const matmul_args& a);

// The fastest variant this CPU runs (kernels/cpu/isa.h); bitwise equal to matmul_ref.
kstatus matmul(const matmul_args& a);

// Shared packing of a batch's activations, a speed choice only. The AVX2 and AVX-512 batched matmuls transpose x lane by lane
// before its register tiles; a caller running several matmuls over one x (q/k/v), or one matmul split over
// threads, can pack x once and pass it as matmul_args::x_lanes. matmul_lanes_floats: floats the packed x
// [n_cols, k] takes, or 0 when the variant matmul() runs would not read it at this shape (then do not pack).
int64_t matmul_lanes_floats(int64_t k, int64_t n_cols);
// Packs the 16-column panels [p0, p1) of x [n_cols, k] into x_lanes (matmul_lanes_floats(k, n_cols) floats):
// disjoint panel ranges may be packed by different threads. bad_argument when matmul_lanes_floats is 0 or the
// range is outside [0, (n_cols + 15) / 16].
kstatus matmul_pack_lanes(const float* x, int64_t k, int64_t n_cols, int64_t p0, int64_t p1, float* x_lanes);
// Bytes of the buffer each thread running matmul() keeps (kernels/cpu/matmul_scratch.h) for rows of up to k
// elements and batches of up to n_cols columns, when every batch that would pack its activations is given x_lanes
// (packed weights, the tiles' lanes and one tile of dequantized rows; ~2 MiB more per thread otherwise). 0 when
// the variant in use keeps none.
uint64_t matmul_thread_buffer_bytes(int64_t k, int64_t n_cols);

}  // namespace lime::cpu
