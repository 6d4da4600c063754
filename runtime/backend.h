// The one dispatch point between runtime and a compute device: memory (device memory counted against a budget,
// page-locked host memory), streams, events, asynchronous copies, and the forward engine that computes on it.
// A CPU implementation (backend_cpu.cpp) and a CUDA one (backend_cuda.cpp, only when built with LIME_HAVE_CUDA).
#pragma once
#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>

#include "runtime/forward.h"
#include "runtime/kv_cache.h"
#include "runtime/result.h"

namespace lime {

enum class backend_kind : uint8_t { cpu, cuda };
const char* backend_kind_name(backend_kind k);  // "cpu", "cuda"
// "cpu", "cuda", or "auto" (backend_default()). Errors: invalid_argument.
result<backend_kind> backend_kind_from_name(const std::string& s);
bool backend_cuda_built();     // this binary was built with the CUDA backend
int backend_cuda_devices();    // CUDA devices visible (0 without a driver, a device, or the CUDA build)
backend_kind backend_default();  // cuda when built with CUDA and a device is present, else cpu

struct backend_options {
  backend_kind kind = backend_kind::cpu;
  uint64_t device_budget = 0;  // bytes of device memory everything allocated through the backend may hold; 0: cpu
                               // no limit, cuda the device's free memory at creation minus k_device_margin
  bool unified = false;        // cuda: kernels read weights in place from host memory registered with the device
                               // (no device copy). Always on for integrated GPUs (Jetson); forced here for testing
  int32_t device = 0;          // cuda device ordinal
  bool fast_prefill = false;   // cuda (--fast-prefill): batches of k_fast_prefill_rows tokens or more multiply
                               // through cuBLAS in fp16 (cuda::matmul_fast): faster prefill, but the logits are
                               // NOT bitwise those of the CPU path and NOT batch-invariant; decode stays canonical
};
constexpr int32_t k_fast_prefill_rows = 16;  // batch rows from which --fast-prefill takes the cuBLAS path
constexpr uint64_t k_device_margin = 256ull << 20;  // bytes left free for the CUDA context, cuBLAS-free kernels' stacks

enum class copy_kind : uint8_t { host_to_device, device_to_host, device_to_device, host_to_host };

using stream_handle = void*;  // cuda: a cudaStream_t; cpu: an opaque token (work runs at once)
using event_handle = void*;   // cuda: a cudaEvent_t

// What a forward engine runs over: the same inputs as forward_pass, plus sizes to reserve device scratch for.
struct forward_engine_args {
  const model* m = nullptr;
  layer_range range;
  kv_cache* kv = nullptr;         // created with this backend's kv_allocator(); must outlive the engine
  thread_pool* pool = nullptr;    // host work (embedding rows, tables)
  weight_source* weights = nullptr;  // nullptr: the model's mapped views; else covers exactly `range`
  bool weights_registered = false;   // the source's buffers are registered with the backend (host_register): a
                                     // unified engine reads them in place; otherwise they are copied
  int32_t max_batch = 512;        // rows per run to reserve activations for (a larger batch grows them)
  int32_t max_logit_rows = 512;   // rows wanting logits per run to reserve for
};

class backend : public std::enable_shared_from_this<backend> {
 public:
  virtual ~backend() = default;
  virtual backend_kind kind() const = 0;
  const char* name() const { return backend_kind_name(kind()); }
  virtual std::string describe() const = 0;  // one line: device, memory, budget, mode
  virtual bool unified() const { return false; }
  virtual bool fast_prefill() const { return false; }  // see backend_options::fast_prefill
  // Makes the device current for the calling thread (CUDA's current device is per thread); cpu: nothing.
  virtual status activate() { return {}; }

  // --- memory. alloc: device memory (cpu: aligned host memory), counted against the budget; out_of_memory past it
  // or when the device refuses (the message carries the CUDA error string). free(nullptr) is a no-op.
  virtual result<void*> alloc(uint64_t bytes) = 0;
  virtual void free(void* p) = 0;
  // Page-locked host memory for asynchronous copies; not counted in the device budget.
  virtual result<void*> alloc_host(uint64_t bytes) = 0;
  virtual void free_host(void* p) = 0;
  // Registers [p, p + bytes) of host memory so kernels can read it in place (unified path); cpu: nothing to do.
  virtual status host_register(void* p, uint64_t bytes) = 0;
  virtual void host_unregister(void* p) = 0;
  // The address kernels use for a registered host address (cpu: p). Errors: invalid_argument (not registered).
  virtual result<const void*> device_address(const void* p) const = 0;

  uint64_t budget() const { return budget_; }      // 0: no limit
  uint64_t allocated() const { return allocated_.load(std::memory_order_relaxed); }
  uint64_t peak() const { return peak_.load(std::memory_order_relaxed); }
  uint64_t available() const;                     // budget - allocated (UINT64_MAX without a limit)

  // --- streams and events: work queued on one stream runs in order; an event marks a point in a stream.
  virtual result<stream_handle> stream_create() = 0;
  virtual void stream_destroy(stream_handle s) = 0;
  virtual result<event_handle> event_create() = 0;
  virtual void event_destroy(event_handle e) = 0;
  virtual status copy_async(void* dst, const void* src, uint64_t bytes, copy_kind kind, stream_handle s) = 0;
  virtual status event_record(event_handle e, stream_handle s) = 0;
  virtual status event_wait(stream_handle s, event_handle e) = 0;  // work queued on s from now on waits for e
  virtual status event_synchronize(event_handle e) = 0;           // the calling thread waits for e
  virtual status synchronize(stream_handle s) = 0;                 // waits for s (nullptr: all work of the device)

  // --- compute: the forward pass over a layer range on this backend. cpu: forward_pass (bitwise the reference);
  // cuda: cuda_forward (bitwise equal to it). Errors: those of the engine's setup (device budget, invalid range).
  virtual result<std::unique_ptr<forward_engine>> make_forward(const forward_engine_args& a) = 0;
  // Where kv_cache blocks live for an engine of this backend (nullptr: host memory, kv_cache's default).
  virtual std::shared_ptr<kv_block_allocator> kv_allocator() = 0;

 protected:
  explicit backend(uint64_t budget) : budget_(budget) {}
  // Budget bookkeeping for alloc/free: take() fails (false, nothing counted) when n more bytes exceed the budget.
  bool take(uint64_t n);
  void give(uint64_t n);
  void remember(void* p, uint64_t n);  // p's size, for free()
  uint64_t forget(void* p);            // its size (0: unknown pointer)

  uint64_t budget_ = 0;
  std::atomic<uint64_t> allocated_{0}, peak_{0};
  std::mutex sizes_mu_;
  std::unordered_map<void*, uint64_t> sizes_;  // guarded by sizes_mu_
};

// The backend for o. Errors: unsupported ("built without CUDA"), unavailable ("no CUDA device"), invalid_argument
// (device ordinal), out_of_memory (a budget larger than the device's free memory), and CUDA errors as io_error.
result<std::shared_ptr<backend>> make_backend(const backend_options& o);
result<std::shared_ptr<backend>> make_backend_cpu(const backend_options& o);
result<std::shared_ptr<backend>> make_backend_cuda(const backend_options& o);

}  // namespace lime
