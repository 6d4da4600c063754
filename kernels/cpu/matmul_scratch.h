// Per-thread working memory of the batched SIMD matmuls (packed activation and weight panels): one buffer per
// thread, grown on demand and kept, so a matmul allocates only the first time a thread needs more than before.
#pragma once
#include <cstddef>

namespace lime::cpu {

// At least `floats` floats, 64-byte aligned, owned by the calling thread; null if the allocation failed. The
// contents are undefined, and a later call on the same thread may move the buffer.
float* matmul_thread_scratch(size_t floats);

}  // namespace lime::cpu
