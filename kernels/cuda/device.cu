// Device discovery for the CUDA backend: how many devices this process sees, never failing.
#include "kernels/cuda/common.cuh"

namespace lime::cuda {

int device_count() {
  int n = 0;
  const cudaError_t e = cudaGetDeviceCount(&n);
  if (e != cudaSuccess) {
    (void)cudaGetLastError();  // no driver / no device: clear the error so later calls do not report it
    return 0;
  }
  return n;
}

}  // namespace lime::cuda
