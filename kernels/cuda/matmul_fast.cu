// matmul_fast: the opt-in fast prefill. x and tiles of W are rounded to fp16 into caller scratch and multiplied by
// cublasGemmEx with fp32 accumulation. Gives up bitwise equality and batch invariance (cuBLAS picks the order).
// cuBLAS is opened on first use (dlopen), never linked: see blas().
#include <cublas_v2.h>
#include <cuda_fp16.h>

#include <string>
#include <type_traits>
#ifdef CUBLAS_VER_MAJOR  // the real cuBLAS header (scripts/cuda-emu's stand-in defines the functions inline)
#include <dlfcn.h>
#endif

#include "kernels/cuda/common.cuh"
#include "kernels/cuda/dequant.cuh"

namespace lime::cuda {
namespace {

constexpr int k_rows_per_block = 8;  // dequantize: one half-warp per weight row
constexpr size_t k_align = 256;

size_t align_up(size_t n) { return (n + k_align - 1) / k_align * k_align; }

// dst[r, e] = fp16(W[row0 + r, e]) for r < n_rows: the matmul decoders, then one rounding to fp16.
template <class Q>
__global__ void __launch_bounds__(16 * k_rows_per_block) dequant_f16_kernel(const uint8_t* w, int64_t row_bytes,
                                                                             int64_t row0, int64_t n_rows, int64_t k,
                                                                             __half* dst) {
  const int lane = threadIdx.x & 15;
  const int64_t r = static_cast<int64_t>(blockIdx.x) * k_rows_per_block + (threadIdx.x >> 4);
  if (r >= n_rows) return;  // no shuffles here
  const uint8_t* row = w + (row0 + r) * row_bytes;
  const int64_t n_units = (k + Q::unit - 1) / Q::unit;
  for (int64_t u = 0; u < n_units; ++u) {
    float v[Q::per_lane];
    Q::load(row, u, lane, k, v);
#pragma unroll
    for (int i = 0; i < Q::per_lane; ++i) {
      const int64_t e = u * Q::unit + 16 * i + lane;
      if (e < k) dst[r * k + e] = __float2half_rn(v[i]);
    }
  }
}

__global__ void to_f16_kernel(const float* x, __half* y, int64_t n) {
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    y[i] = __float2half_rn(x[i]);
  }
}

// The cuBLAS calls matmul_fast makes, resolved at first use. Linking libcublas (and the libcublasLt it needs) costs
// every process about 210 MiB of resident memory at start, before any call (measured: an empty program linked with
// both starts at 213 MiB RSS, 1 MiB without): a memory-budgeted node cannot afford that, and only --fast-prefill
// needs cuBLAS. The library stays loaded for the process's life.
using gemm_ex_fn = cublasStatus_t (*)(cublasHandle_t, cublasOperation_t, cublasOperation_t, int, int, int, const void*,
                                      const void*, cudaDataType, int, const void*, cudaDataType, int, const void*, void*,
                                      cudaDataType, int, cublasComputeType_t, cublasGemmAlgo_t);  // (the header overloads it)

struct blas_api {
  decltype(&cublasCreate) create = nullptr;
  decltype(&cublasDestroy) destroy = nullptr;
  decltype(&cublasSetStream) set_stream = nullptr;
  decltype(&cublasSetPointerMode) set_pointer_mode = nullptr;
  gemm_ex_fn gemm_ex = nullptr;
  decltype(&cublasGetStatusString) status_string = nullptr;
  std::string error;  // why it could not be loaded ("" when loaded)
};

const blas_api& blas() {
  static const blas_api api = [] {
    blas_api a;
#ifdef CUBLAS_VER_MAJOR
    const std::string name = "libcublas.so." + std::to_string(CUBLAS_VER_MAJOR);
    void* lib = dlopen(name.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (!lib) {
      const char* why = dlerror();
      a.error = "cuBLAS (" + name + ") could not be loaded: " + (why ? why : "unknown error");
      return a;
    }
    auto sym = [&](auto& fn, const char* s) {
      fn = reinterpret_cast<std::remove_reference_t<decltype(fn)>>(dlsym(lib, s));
      if (!fn && a.error.empty()) a.error = std::string("cuBLAS (") + name + ") has no " + s;
    };
    sym(a.create, "cublasCreate_v2");
    sym(a.destroy, "cublasDestroy_v2");
    sym(a.set_stream, "cublasSetStream_v2");
    sym(a.set_pointer_mode, "cublasSetPointerMode_v2");
    sym(a.gemm_ex, "cublasGemmEx");
    sym(a.status_string, "cublasGetStatusString");
#else
    a.create = &cublasCreate;
    a.destroy = &cublasDestroy;
    a.set_stream = &cublasSetStream;
    a.set_pointer_mode = &cublasSetPointerMode;
    a.gemm_ex = &cublasGemmEx;
    a.status_string = &cublasGetStatusString;
#endif
    return a;
  }();
  return api;
}

// Not loadable: the status carries why (CUBLAS_STATUS_NOT_INITIALIZED, the loader's message).
cuda_status blas_missing() {
  cuda_status st;
  st.cublas_error = 1;  // CUBLAS_STATUS_NOT_INITIALIZED
  st.message = blas().error.c_str();
  return st;
}

cuda_status cublas_status(cublasStatus_t s) {
  cuda_status st;
  if (s != CUBLAS_STATUS_SUCCESS) {
    st.cublas_error = static_cast<int>(s);
    st.message = blas().status_string ? blas().status_string(s) : "cuBLAS error";
  }
  return st;
}

}  // namespace

size_t matmul_fast_scratch_bytes(int64_t k, int64_t n_cols, int64_t tile_rows) {
  if (k < 0 || n_cols < 0 || tile_rows < 0) return 0;
  return align_up(static_cast<size_t>(n_cols) * static_cast<size_t>(k) * sizeof(__half)) +
         static_cast<size_t>(tile_rows) * static_cast<size_t>(k) * sizeof(__half);
}

cuda_status matmul_fast(const matmul_args& a, void* cublas_handle, void* scratch, size_t scratch_bytes,
                        stream_t stream) {
  const kstatus st = check_weights(a.w_type, a.w, a.k);
  if (st != kstatus::ok) return status_of(st);
  if (a.n_rows < 0 || a.n_cols < 0 || (a.y_stride != 0 && a.y_stride < a.n_rows)) return status_of(kstatus::bad_shape);
  if (a.n_rows == 0 || a.n_cols == 0) return {};
  if (!a.w || !a.x || !a.y || !cublas_handle || !scratch) return status_of(kstatus::bad_argument);
  const int64_t ldy = a.y_stride > 0 ? a.y_stride : a.n_rows;
  if (a.k > 0x7fffffff || a.n_cols > 0x7fffffff || ldy > 0x7fffffff) return status_of(kstatus::bad_shape);
  if (a.k == 0)
    return status_of(cudaMemset2DAsync(a.y, static_cast<size_t>(ldy) * sizeof(float), 0,
                                       static_cast<size_t>(a.n_rows) * sizeof(float), static_cast<size_t>(a.n_cols),
                                       as_stream(stream)));
  if (reinterpret_cast<uintptr_t>(scratch) % k_align != 0) return status_of(kstatus::bad_argument);
  const size_t x_bytes = matmul_fast_scratch_bytes(a.k, a.n_cols, 0);
  const size_t row_bytes16 = static_cast<size_t>(a.k) * sizeof(__half);
  if (scratch_bytes < x_bytes + row_bytes16) return status_of(kstatus::bad_argument);
  int64_t tile = static_cast<int64_t>((scratch_bytes - x_bytes) / row_bytes16);
  if (tile > a.n_rows) tile = a.n_rows;
  if (tile >= 16) tile = tile / 16 * 16;  // keeps tiles' starts and GEMM shapes friendly to tensor cores

  const cudaStream_t s = as_stream(stream);
  auto* x16 = static_cast<__half*>(scratch);
  auto* w16 = reinterpret_cast<__half*>(static_cast<uint8_t*>(scratch) + x_bytes);
  const int64_t nx = a.n_cols * a.k;
  to_f16_kernel<<<grid_for(nx, 256), 256, 0, s>>>(a.x, x16, nx);
  cuda_status ls = launch_status();
  if (!ls.ok()) return ls;

  const blas_api& api = blas();
  if (!api.error.empty()) return blas_missing();
  auto handle = static_cast<cublasHandle_t>(cublas_handle);
  cuda_status cs = cublas_status(api.set_stream(handle, s));
  if (cs.ok()) cs = cublas_status(api.set_pointer_mode(handle, CUBLAS_POINTER_MODE_HOST));  // alpha, beta below
  if (!cs.ok()) return cs;
  const int64_t w_row_bytes = static_cast<int64_t>(tensor_row_bytes(a.w_type, a.k));
  const float alpha = 1.0f, beta = 0.0f;
  for (int64_t r0 = 0; r0 < a.n_rows; r0 += tile) {
    const int64_t m = a.n_rows - r0 < tile ? a.n_rows - r0 : tile;
    const unsigned blocks = static_cast<unsigned>((m + k_rows_per_block - 1) / k_rows_per_block);
    visit_decoder(a.w_type, [&](auto q) {
      using Q = decltype(q);
      dequant_f16_kernel<Q><<<blocks, 16 * k_rows_per_block, 0, s>>>(static_cast<const uint8_t*>(a.w), w_row_bytes,
                                                                      r0, m, a.k, w16);
    });
    ls = launch_status();
    if (!ls.ok()) return ls;
    // Column-major view: W tile = A (k x m, lda k), x = B (k x n_cols, ldb k), y = C (n_rows x n_cols, ldc
    // y_stride) from row r0: C = A^T B, i.e. y[c, r0 + i] = sum_e W[r0 + i, e] x[c, e].
    cs = cublas_status(api.gemm_ex(handle, CUBLAS_OP_T, CUBLAS_OP_N, static_cast<int>(m), static_cast<int>(a.n_cols),
                                   static_cast<int>(a.k), &alpha, w16, CUDA_R_16F, static_cast<int>(a.k), x16, CUDA_R_16F,
                                   static_cast<int>(a.k), &beta, a.y + r0, CUDA_R_32F, static_cast<int>(ldy),
                                   CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
    if (!cs.ok()) return cs;
  }
  return {};
}

cuda_status blas_create(void** handle) {
  *handle = nullptr;
  if (!blas().error.empty()) return blas_missing();
  cublasHandle_t h = nullptr;
  const cuda_status st = cublas_status(blas().create(&h));
  if (st.ok()) *handle = h;
  return st;
}

void blas_destroy(void* handle) {
  if (handle && blas().destroy) blas().destroy(static_cast<cublasHandle_t>(handle));
}

}  // namespace lime::cuda
