// The CPU backend: "device" memory is aligned host memory under the budget, copies are memcpy, streams and events
// are tokens (work runs when it is queued), and the forward engine is forward_pass (the reference).
#include <cstdlib>
#include <cstring>
#include <string>

#include "runtime/backend.h"

namespace lime {
namespace {

constexpr uint64_t k_align = 64;  // bytes: a cache line, enough for every kernel's vector loads

uint64_t aligned_size(uint64_t bytes) { return ((bytes == 0 ? 1 : bytes) + k_align - 1) / k_align * k_align; }

class cpu_backend final : public backend {
 public:
  explicit cpu_backend(uint64_t budget) : backend(budget) {}
  ~cpu_backend() override {
    for (auto& [p, n] : sizes_) std::free(p);  // blocks the owner forgot (never in correct use)
  }
  backend_kind kind() const override { return backend_kind::cpu; }
  std::string describe() const override {
    return budget_ == 0 ? std::string("cpu") : "cpu, budget " + std::to_string(budget_ >> 20) + " MiB";
  }

  result<void*> alloc(uint64_t bytes) override {
    const uint64_t n = aligned_size(bytes);
    if (!take(n))
      return make_error(errc::out_of_memory, "cpu backend: " + std::to_string(bytes) + " bytes exceed the budget (" +
                                                 std::to_string(allocated()) + " of " + std::to_string(budget_) + " in use)");
    void* p = std::aligned_alloc(k_align, static_cast<size_t>(n));
    if (!p) {
      give(n);
      return make_error(errc::out_of_memory, "cpu backend: cannot allocate " + std::to_string(bytes) + " bytes");
    }
    remember(p, n);
    return p;
  }
  void free(void* p) override {
    if (!p) return;
    give(forget(p));
    std::free(p);
  }
  result<void*> alloc_host(uint64_t bytes) override {
    void* p = std::aligned_alloc(k_align, static_cast<size_t>(aligned_size(bytes)));
    if (!p) return make_error(errc::out_of_memory, "cpu backend: cannot allocate " + std::to_string(bytes) + " host bytes");
    return p;
  }
  void free_host(void* p) override { std::free(p); }
  status host_register(void*, uint64_t) override { return {}; }
  void host_unregister(void*) override {}
  result<const void*> device_address(const void* p) const override { return p; }

  result<stream_handle> stream_create() override { return static_cast<stream_handle>(new char); }
  void stream_destroy(stream_handle s) override { delete static_cast<char*>(s); }
  result<event_handle> event_create() override { return static_cast<event_handle>(new char); }
  void event_destroy(event_handle e) override { delete static_cast<char*>(e); }
  status copy_async(void* dst, const void* src, uint64_t bytes, copy_kind, stream_handle) override {
    if (bytes > 0 && (!dst || !src)) return make_error(errc::invalid_argument, "cpu backend: copy with a null pointer");
    if (bytes > 0) std::memmove(dst, src, static_cast<size_t>(bytes));
    return {};
  }
  status event_record(event_handle, stream_handle) override { return {}; }
  status event_wait(stream_handle, event_handle) override { return {}; }
  status event_synchronize(event_handle) override { return {}; }
  status synchronize(stream_handle) override { return {}; }

  result<std::unique_ptr<forward_engine>> make_forward(const forward_engine_args& a) override {
    if (!a.m || !a.kv || !a.pool) return make_error(errc::invalid_argument, "cpu backend: forward needs a model, a KV cache and a pool");
    return std::unique_ptr<forward_engine>(std::make_unique<forward_pass>(*a.m, a.range, *a.kv, *a.pool, a.weights));
  }
  std::shared_ptr<kv_block_allocator> kv_allocator() override { return nullptr; }
};

}  // namespace

result<std::shared_ptr<backend>> make_backend_cpu(const backend_options& o) {
  return std::shared_ptr<backend>(std::make_shared<cpu_backend>(o.device_budget));
}

}  // namespace lime
