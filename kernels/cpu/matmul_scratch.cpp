// The per-thread buffer of the batched SIMD matmuls (kernels/cpu/matmul_scratch.h).
#include "kernels/cpu/matmul_scratch.h"

#include <cstdlib>

namespace lime::cpu {
namespace {

struct thread_buffer {
  float* data = nullptr;
  size_t floats = 0;
  ~thread_buffer() { std::free(data); }
};

thread_local thread_buffer t_buffer;

}  // namespace

float* matmul_thread_scratch(size_t floats) {
  thread_buffer& b = t_buffer;
  if (floats <= b.floats) return b.data;
  const size_t bytes = (floats * sizeof(float) + 63) / 64 * 64;
  void* p = std::aligned_alloc(64, bytes);
  if (!p) return nullptr;
  std::free(b.data);
  b.data = static_cast<float*>(p);
  b.floats = bytes / sizeof(float);
  return b.data;
}

}  // namespace lime::cpu
