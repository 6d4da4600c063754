// The CUDA backend: device memory (cudaMalloc) under a device budget, page-locked host memory, host registration for
// the unified path, non-blocking streams, timing-free events, and cuda_forward as its engine. Every CUDA error becomes
// a status carrying cudaGetErrorString. Without LIME_HAVE_CUDA only the "not built" answers remain.
#include <string>

#include "runtime/backend.h"

#if LIME_HAVE_CUDA
#include <cuda_runtime_api.h>

#include <iterator>
#include <map>

#include "runtime/cuda_forward.h"
#endif

namespace lime {

#if !LIME_HAVE_CUDA

bool backend_cuda_built() { return false; }
int backend_cuda_devices() { return 0; }
result<std::shared_ptr<backend>> make_backend_cuda(const backend_options&) {
  return make_error(errc::unsupported, "cuda backend: this binary was built without CUDA (configure with -DLIME_CUDA=ON)");
}

#else

namespace {

constexpr uint64_t k_dev_align = 256;  // cudaMalloc's alignment; the budget counts allocations rounded to it

error cuda_fail(cudaError_t e, const std::string& what) {
  return make_error(e == cudaErrorMemoryAllocation ? errc::out_of_memory : errc::io_error,
                    "cuda: " + what + ": " + cudaGetErrorString(e));
}

status cuda_ok(cudaError_t e, const char* what) {
  if (e == cudaSuccess) return {};
  return cuda_fail(e, what);
}

cudaMemcpyKind memcpy_kind(copy_kind k) {
  switch (k) {
    case copy_kind::host_to_device: return cudaMemcpyHostToDevice;
    case copy_kind::device_to_host: return cudaMemcpyDeviceToHost;
    case copy_kind::device_to_device: return cudaMemcpyDeviceToDevice;
    case copy_kind::host_to_host: return cudaMemcpyHostToHost;
  }
  return cudaMemcpyDefault;
}

class cuda_backend;

// KV blocks in device memory, under the backend's budget.
class cuda_kv_allocator final : public kv_block_allocator {
 public:
  explicit cuda_kv_allocator(std::shared_ptr<backend> be) : be_(std::move(be)) {}
  void* alloc(uint64_t bytes) override {
    auto p = be_->alloc(bytes);
    return p.ok() ? p.value() : nullptr;
  }
  void free(void* p) override { be_->free(p); }

 private:
  std::shared_ptr<backend> be_;
};

class cuda_backend final : public backend {
 public:
  cuda_backend(int dev, uint64_t budget, bool unified, bool fast_prefill, bool host_ptr_ok, std::string desc)
      : backend(budget), dev_(dev), unified_(unified), fast_prefill_(fast_prefill), host_ptr_ok_(host_ptr_ok),
        desc_(std::move(desc)) {}
  ~cuda_backend() override {
    cudaSetDevice(dev_);
    for (auto& [p, n] : sizes_) cudaFree(p);  // only what an owner forgot to free
    for (auto& [p, n] : registered_) cudaHostUnregister(reinterpret_cast<void*>(p));
  }
  backend_kind kind() const override { return backend_kind::cuda; }
  std::string describe() const override {
    return desc_ + ", budget " + std::to_string(budget_ >> 20) + " MiB" + (unified_ ? ", unified" : "") +
           (fast_prefill_ ? ", fast prefill (cuBLAS fp16: prompt logits NOT bitwise, NOT batch-invariant)" : "");
  }
  bool unified() const override { return unified_; }
  bool fast_prefill() const override { return fast_prefill_; }
  status activate() override { return cuda_ok(cudaSetDevice(dev_), "cudaSetDevice"); }

  result<void*> alloc(uint64_t bytes) override {
    const uint64_t n = ((bytes == 0 ? 1 : bytes) + k_dev_align - 1) / k_dev_align * k_dev_align;
    if (!take(n))
      return make_error(errc::out_of_memory, "cuda: " + std::to_string(bytes) + " bytes exceed the device budget (" +
                                                 std::to_string(allocated() >> 20) + " of " + std::to_string(budget_ >> 20) +
                                                 " MiB in use)");
    cudaSetDevice(dev_);
    void* p = nullptr;
    const cudaError_t e = cudaMalloc(&p, static_cast<size_t>(n));
    if (e != cudaSuccess) {
      give(n);
      return cuda_fail(e, "cudaMalloc of " + std::to_string(bytes) + " bytes");
    }
    remember(p, n);
    return p;
  }
  void free(void* p) override {
    if (!p) return;
    cudaSetDevice(dev_);
    cudaFree(p);  // synchronizes with the device: nothing queued still reads p
    give(forget(p));
  }
  result<void*> alloc_host(uint64_t bytes) override {
    void* p = nullptr;
    const cudaError_t e = cudaHostAlloc(&p, static_cast<size_t>(bytes == 0 ? 1 : bytes), cudaHostAllocPortable);
    if (e != cudaSuccess) return cuda_fail(e, "cudaHostAlloc of " + std::to_string(bytes) + " bytes");
    return p;
  }
  void free_host(void* p) override {
    if (p) cudaFreeHost(p);
  }
  status host_register(void* p, uint64_t bytes) override {
    cudaSetDevice(dev_);
    LIME_TRY_VOID(cuda_ok(cudaHostRegister(p, static_cast<size_t>(bytes), cudaHostRegisterPortable | cudaHostRegisterMapped),
                          "cudaHostRegister"));
    std::lock_guard<std::mutex> lk(reg_mu_);
    registered_[reinterpret_cast<uintptr_t>(p)] = bytes;
    return {};
  }
  void host_unregister(void* p) override {
    {
      std::lock_guard<std::mutex> lk(reg_mu_);
      if (registered_.erase(reinterpret_cast<uintptr_t>(p)) == 0) return;
    }
    cudaHostUnregister(p);
  }
  result<const void*> device_address(const void* p) const override {
    const auto a = reinterpret_cast<uintptr_t>(p);
    {
      std::lock_guard<std::mutex> lk(reg_mu_);
      auto it = registered_.upper_bound(a);
      if (it == registered_.begin() || a >= std::prev(it)->first + std::prev(it)->second)
        return make_error(errc::invalid_argument, "cuda: host address is not registered with the device");
    }
    if (host_ptr_ok_) return p;  // the device reads registered memory at its host address
    void* d = nullptr;
    LIME_TRY_VOID(cuda_ok(cudaHostGetDevicePointer(&d, const_cast<void*>(p), 0), "cudaHostGetDevicePointer"));
    return static_cast<const void*>(d);
  }

  result<stream_handle> stream_create() override {
    cudaSetDevice(dev_);
    cudaStream_t s = nullptr;
    LIME_TRY_VOID(cuda_ok(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking), "cudaStreamCreate"));
    return static_cast<stream_handle>(s);
  }
  void stream_destroy(stream_handle s) override {
    if (s) cudaStreamDestroy(static_cast<cudaStream_t>(s));
  }
  result<event_handle> event_create() override {
    cudaSetDevice(dev_);
    cudaEvent_t e = nullptr;
    LIME_TRY_VOID(cuda_ok(cudaEventCreateWithFlags(&e, cudaEventDisableTiming), "cudaEventCreate"));
    return static_cast<event_handle>(e);
  }
  void event_destroy(event_handle e) override {
    if (e) cudaEventDestroy(static_cast<cudaEvent_t>(e));
  }
  status copy_async(void* dst, const void* src, uint64_t bytes, copy_kind kind, stream_handle s) override {
    if (bytes == 0) return {};
    return cuda_ok(cudaMemcpyAsync(dst, src, static_cast<size_t>(bytes), memcpy_kind(kind), static_cast<cudaStream_t>(s)),
                   "cudaMemcpyAsync");
  }
  status event_record(event_handle e, stream_handle s) override {
    return cuda_ok(cudaEventRecord(static_cast<cudaEvent_t>(e), static_cast<cudaStream_t>(s)), "cudaEventRecord");
  }
  status event_wait(stream_handle s, event_handle e) override {
    return cuda_ok(cudaStreamWaitEvent(static_cast<cudaStream_t>(s), static_cast<cudaEvent_t>(e), 0), "cudaStreamWaitEvent");
  }
  status event_synchronize(event_handle e) override {
    return cuda_ok(cudaEventSynchronize(static_cast<cudaEvent_t>(e)), "cudaEventSynchronize");
  }
  status synchronize(stream_handle s) override {
    if (s) return cuda_ok(cudaStreamSynchronize(static_cast<cudaStream_t>(s)), "cudaStreamSynchronize");
    cudaSetDevice(dev_);
    return cuda_ok(cudaDeviceSynchronize(), "cudaDeviceSynchronize");
  }

  result<std::unique_ptr<forward_engine>> make_forward(const forward_engine_args& a) override {
    return make_cuda_forward(shared_from_this(), a);
  }
  std::shared_ptr<kv_block_allocator> kv_allocator() override {
    return std::make_shared<cuda_kv_allocator>(shared_from_this());
  }

 private:
  int dev_ = 0;
  bool unified_ = false;
  bool fast_prefill_ = false;
  bool host_ptr_ok_ = false;  // cudaDevAttrCanUseHostPointerForRegisteredMem
  std::string desc_;
  mutable std::mutex reg_mu_;
  std::map<uintptr_t, uint64_t> registered_;  // host base -> bytes; guarded by reg_mu_
};

}  // namespace

bool backend_cuda_built() { return true; }

int backend_cuda_devices() {
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess) {
    cudaGetLastError();  // clear the sticky "no driver" / "no device" error
    return 0;
  }
  return n;
}

result<std::shared_ptr<backend>> make_backend_cuda(const backend_options& o) {
  const int n = backend_cuda_devices();
  if (n == 0) return make_error(errc::unavailable, "cuda backend: no CUDA device (or no driver) is present");
  if (o.device < 0 || o.device >= n)
    return make_error(errc::invalid_argument, "cuda backend: device " + std::to_string(o.device) + " does not exist (" +
                                                  std::to_string(n) + " present)");
  LIME_TRY_VOID(cuda_ok(cudaSetDevice(o.device), "cudaSetDevice"));
  size_t free_b = 0, total_b = 0;
  LIME_TRY_VOID(cuda_ok(cudaMemGetInfo(&free_b, &total_b), "cudaMemGetInfo"));
  cudaDeviceProp prop{};
  LIME_TRY_VOID(cuda_ok(cudaGetDeviceProperties(&prop, o.device), "cudaGetDeviceProperties"));
  int integrated = 0, host_ptr = 0;
  cudaDeviceGetAttribute(&integrated, cudaDevAttrIntegrated, o.device);
  cudaDeviceGetAttribute(&host_ptr, cudaDevAttrCanUseHostPointerForRegisteredMem, o.device);
  uint64_t budget = o.device_budget;
  if (budget == 0) budget = free_b > 2 * k_device_margin ? free_b - k_device_margin : free_b / 2;
  // On an integrated GPU device memory is host memory: the budget is checked by the allocations themselves.
  if (!integrated && budget > free_b)
    return make_error(errc::out_of_memory, "cuda backend: a device budget of " + std::to_string(budget >> 20) +
                                               " MiB exceeds the " + std::to_string(free_b >> 20) + " MiB free on " + prop.name);
  const std::string desc = std::string("cuda: ") + prop.name + " (sm_" + std::to_string(prop.major) +
                           std::to_string(prop.minor) + ", " + std::to_string(total_b >> 20) + " MiB" +
                           (integrated ? ", integrated" : "") + ")";
  return std::shared_ptr<backend>(
      std::make_shared<cuda_backend>(o.device, budget, o.unified || integrated != 0, o.fast_prefill, host_ptr != 0, desc));
}

#endif

}  // namespace lime
