// scripts/cuda-emu only: the slice of the CUDA runtime API that kernels/cuda and tests/cuda use, on host memory
// (cudaMalloc = 256-aligned malloc filled with 0xcd), plus the CUDA keywords as host C++ (__shared__ = static).
#pragma once
#define __global__
#define __device__
#define __host__
#define __launch_bounds__(...)
#define __shared__ static
#include "emu_core.h"
typedef int cudaError_t;
enum : int { cudaSuccess = 0 };
typedef struct CUstream_st* cudaStream_t;
enum cudaMemcpyKind { cudaMemcpyHostToHost, cudaMemcpyHostToDevice, cudaMemcpyDeviceToHost, cudaMemcpyDeviceToDevice };
inline const char* cudaGetErrorString(cudaError_t e) { return e ? "emu error" : "no error"; }
inline cudaError_t cudaGetLastError() { return 0; }
inline cudaError_t cudaGetDeviceCount(int* n) { *n = 1; return 0; }
inline cudaError_t cudaMalloc(void** p, size_t n) { *p = std::aligned_alloc(256, (n + 255) / 256 * 256 + 256); std::memset(*p, 0xcd, n); return 0; }
inline cudaError_t cudaFree(void* p) { std::free(p); return 0; }
inline cudaError_t cudaMemcpy(void* d, const void* s, size_t n, cudaMemcpyKind) { std::memcpy(d, s, n); return 0; }
inline cudaError_t cudaMemset(void* d, int v, size_t n) { std::memset(d, v, n); return 0; }
inline cudaError_t cudaMemsetAsync(void* d, int v, size_t n, cudaStream_t = nullptr) { std::memset(d, v, n); return 0; }
inline cudaError_t cudaMemset2DAsync(void* d, size_t pitch, int v, size_t w, size_t h, cudaStream_t = nullptr) {
  for (size_t r = 0; r < h; ++r) std::memset(static_cast<char*>(d) + r * pitch, v, w);
  return 0;
}
inline cudaError_t cudaDeviceSynchronize() { return 0; }
