// scripts/cuda-emu only: cublasGemmEx as a plain column-major GEMM (fp16 A/B, fp32 C, double sums) with the
// documented op/lda/ldc semantics, and the handle calls matmul_fast makes.
#pragma once
#include "cuda_runtime.h"
#include "cuda_fp16.h"
typedef struct cublas_ctx* cublasHandle_t;
typedef enum { CUBLAS_STATUS_SUCCESS = 0, CUBLAS_STATUS_INVALID_VALUE = 7 } cublasStatus_t;
typedef enum { CUBLAS_OP_N, CUBLAS_OP_T } cublasOperation_t;
typedef enum { CUBLAS_POINTER_MODE_HOST } cublasPointerMode_t;
typedef enum { CUDA_R_16F, CUDA_R_32F } cudaDataType;
typedef enum { CUBLAS_COMPUTE_32F } cublasComputeType_t;
typedef enum { CUBLAS_GEMM_DEFAULT } cublasGemmAlgo_t;
inline cublasStatus_t cublasCreate(cublasHandle_t* h) { *h = reinterpret_cast<cublasHandle_t>(1); return CUBLAS_STATUS_SUCCESS; }
inline cublasStatus_t cublasDestroy(cublasHandle_t) { return CUBLAS_STATUS_SUCCESS; }
inline cublasStatus_t cublasSetStream(cublasHandle_t, cudaStream_t) { return CUBLAS_STATUS_SUCCESS; }
inline cublasStatus_t cublasSetPointerMode(cublasHandle_t, cublasPointerMode_t) { return CUBLAS_STATUS_SUCCESS; }
inline const char* cublasGetStatusString(cublasStatus_t) { return "emu cublas"; }
// Column-major C (m x n) = alpha op(A) op(B) + beta C, fp16 A/B, fp32 C (cuBLAS semantics as documented).
inline cublasStatus_t cublasGemmEx(cublasHandle_t, cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k,
                                   const void* alpha, const void* A, cudaDataType at, int lda, const void* B,
                                   cudaDataType bt, int ldb, const void* beta, void* C, cudaDataType ct, int ldc,
                                   cublasComputeType_t, cublasGemmAlgo_t) {
  if (at != CUDA_R_16F || bt != CUDA_R_16F || ct != CUDA_R_32F) return CUBLAS_STATUS_INVALID_VALUE;
  if (lda < (ta == CUBLAS_OP_N ? m : k) || ldb < (tb == CUBLAS_OP_N ? k : n) || ldc < m) return CUBLAS_STATUS_INVALID_VALUE;
  const __half* a = static_cast<const __half*>(A);
  const __half* b = static_cast<const __half*>(B);
  float* c = static_cast<float*>(C);
  const float al = *static_cast<const float*>(alpha), be = *static_cast<const float*>(beta);
  for (int j = 0; j < n; ++j)
    for (int i = 0; i < m; ++i) {
      double s = 0;
      for (int p = 0; p < k; ++p) {
        const __half ai = ta == CUBLAS_OP_N ? a[i + static_cast<long>(p) * lda] : a[p + static_cast<long>(i) * lda];
        const __half bj = tb == CUBLAS_OP_N ? b[p + static_cast<long>(j) * ldb] : b[j + static_cast<long>(p) * ldb];
        s += static_cast<double>(lime::cpu::fp16_to_fp32(ai.x)) * lime::cpu::fp16_to_fp32(bj.x);
      }
      float& out = c[i + static_cast<long>(j) * ldc];
      out = static_cast<float>(al * s) + (be != 0 ? be * out : 0.f);
    }
  return CUBLAS_STATUS_SUCCESS;
}
