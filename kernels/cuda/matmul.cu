// matmul y = x * W^T on the GPU in the canonical order, bitwise cpu::matmul_ref: a half-warp owns one weight row;
// lane l runs the sequential fma chain over k = l, l + 16, ... for each of NC columns, with the weights decoded in
// registers (kernels/cuda/dequant.cuh), then the 16 lanes fold. Decode (up to 4 columns) streams the weight rows
// through shared memory (kernels/cuda/matvec_staged.cuh); wider batches stage x per 256-element chunk in shared
// memory, and each half-warp reuses every staged x value for 4 rows and each decoded weight for up to 16 columns.
#include "kernels/cuda/common.cuh"
#include "kernels/cuda/dequant.cuh"
#include "kernels/cuda/matvec_staged.cuh"

namespace lime::cuda {
namespace {

constexpr int k_rows_per_block = 8;  // half-warps per block: one weight row each
constexpr int k_threads = 16 * k_rows_per_block;
constexpr int k_chunk = 256;  // x elements per column staged in shared memory (a whole unit of every decoder)

// Grid: x over groups of k_rows_per_block * R rows (a half-warp owns R consecutive rows), y (strided) over groups of
// NC columns. Each (row, column, lane) chain has its own accumulator fed in K order, so R, NC, the grid and the batch
// size never change a bit of y; R > 1 reuses each staged x value for R rows (fewer shared-memory loads per fma).
template <class Q, int NC, int R>
__global__ void __launch_bounds__(k_threads) matmul_kernel(const uint8_t* __restrict__ w, int64_t row_bytes,
                                                           int64_t n_rows, int64_t k, const float* __restrict__ x,
                                                           int64_t n_cols, float* __restrict__ y, int64_t y_stride) {
  __shared__ float xs[NC][k_chunk];
  const int lane = threadIdx.x & 15;
  const int64_t row0 = (static_cast<int64_t>(blockIdx.x) * k_rows_per_block + (threadIdx.x >> 4)) * R;
  const uint8_t* w_row[R];
#pragma unroll
  for (int r = 0; r < R; ++r) w_row[r] = w + (row0 + r < n_rows ? row0 + r : 0) * row_bytes;

  for (int64_t c0 = static_cast<int64_t>(blockIdx.y) * NC; c0 < n_cols; c0 += static_cast<int64_t>(gridDim.y) * NC) {
    float acc[R][NC];
#pragma unroll
    for (int r = 0; r < R; ++r)
#pragma unroll
      for (int c = 0; c < NC; ++c) acc[r][c] = 0.f;

    for (int64_t k0 = 0; k0 < k; k0 += k_chunk) {
      const int n = static_cast<int>(k - k0 < k_chunk ? k - k0 : k_chunk);
      __syncthreads();  // the previous chunk's readers are done
      for (int i = threadIdx.x; i < NC * k_chunk; i += k_threads) {
        const int c = i / k_chunk, j = i % k_chunk;
        xs[c][j] = (c0 + c < n_cols && j < n) ? x[(c0 + c) * k + k0 + j] : 0.f;
      }
      __syncthreads();
      if (row0 < n_rows) {
        const int64_t u0 = k0 / Q::unit;
        const int n_units = (n + Q::unit - 1) / Q::unit;
        for (int u = 0; u < n_units; ++u) {
          float wv[R][Q::per_lane];
#pragma unroll
          for (int r = 0; r < R; ++r) Q::load(w_row[r], u0 + u, lane, k, wv[r]);
#pragma unroll
          for (int i = 0; i < Q::per_lane; ++i) {
            const int j = u * Q::unit + 16 * i + lane;
            if (j < n) {  // the tail of the plain types: lanes past k are masked, not fed zeros
#pragma unroll
              for (int c = 0; c < NC; ++c) {
                const float xv = xs[c][j];
#pragma unroll
                for (int r = 0; r < R; ++r) acc[r][c] = __fmaf_rn(wv[r][i], xv, acc[r][c]);
              }
            }
          }
        }
      }
    }
#pragma unroll
    for (int r = 0; r < R; ++r) {
#pragma unroll
      for (int c = 0; c < NC; ++c) acc[r][c] = fold16(acc[r][c]);
      if (row0 + r < n_rows && lane == 0) {
#pragma unroll
        for (int c = 0; c < NC; ++c) {
          if (c0 + c < n_cols) y[(c0 + c) * y_stride + row0 + r] = acc[r][c];
        }
      }
    }
  }
}

template <class Q, int NC, int R>
void launch(const matmul_args& a, cudaStream_t s) {
  const int64_t row_blocks = (a.n_rows + k_rows_per_block * R - 1) / (k_rows_per_block * R);
  const int64_t col_groups = (a.n_cols + NC - 1) / NC;
  const dim3 grid(static_cast<unsigned>(row_blocks), static_cast<unsigned>(col_groups < 65535 ? col_groups : 65535));
  matmul_kernel<Q, NC, R><<<grid, k_threads, 0, s>>>(static_cast<const uint8_t*>(a.w),
                                                  static_cast<int64_t>(tensor_row_bytes(a.w_type, a.k)), a.n_rows, a.k,
                                                  a.x, a.n_cols, a.y, a.y_stride > 0 ? a.y_stride : a.n_rows);
}

}  // namespace

cuda_status matmul(const matmul_args& a, stream_t stream) {
  const kstatus st = check_weights(a.w_type, a.w, a.k);
  if (st != kstatus::ok) return status_of(st);
  if (a.n_rows < 0 || a.n_cols < 0 || (a.y_stride != 0 && a.y_stride < a.n_rows)) return status_of(kstatus::bad_shape);
  if (a.n_rows == 0 || a.n_cols == 0) return {};
  if (!a.w || !a.x || !a.y) return status_of(kstatus::bad_argument);
  if ((a.n_rows + k_rows_per_block - 1) / k_rows_per_block > 0x7fffffff) return status_of(kstatus::bad_shape);
  const cudaStream_t s = as_stream(stream);
  visit_decoder(a.w_type, [&](auto q) {
    using Q = decltype(q);
    // Columns per pass: enough to reuse each decoded weight, few enough that small batches waste no lanes.
    if (a.n_cols == 1) staged::launch_matvec<Q, 1>(a, s);
    else if (a.n_cols == 2) staged::launch_matvec<Q, 2>(a, s);
    else if (a.n_cols <= 4) staged::launch_matvec<Q, 4>(a, s);
    else if (a.n_cols <= 8) launch<Q, 8, 4>(a, s);
    else launch<Q, 16, 4>(a, s);
  });
  return launch_status();
}

}  // namespace lime::cuda
