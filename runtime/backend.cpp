// Backend names, the factory, and the device-budget bookkeeping every backend shares.
#include "runtime/backend.h"

#include <limits>

namespace lime {

const char* backend_kind_name(backend_kind k) { return k == backend_kind::cuda ? "cuda" : "cpu"; }

result<backend_kind> backend_kind_from_name(const std::string& s) {
  if (s == "cpu") return backend_kind::cpu;
  if (s == "cuda") return backend_kind::cuda;
  if (s == "auto") return backend_default();
  return make_error(errc::invalid_argument, "unknown backend '" + s + "' (cpu, cuda or auto)");
}

backend_kind backend_default() { return backend_cuda_devices() > 0 ? backend_kind::cuda : backend_kind::cpu; }

uint64_t backend::available() const {
  if (budget_ == 0) return std::numeric_limits<uint64_t>::max();
  const uint64_t a = allocated();
  return a >= budget_ ? 0 : budget_ - a;
}

bool backend::take(uint64_t n) {
  uint64_t cur = allocated_.load(std::memory_order_relaxed);
  for (;;) {
    if (budget_ != 0 && (n > budget_ || cur > budget_ - n)) return false;
    if (allocated_.compare_exchange_weak(cur, cur + n, std::memory_order_relaxed)) break;
  }
  uint64_t peak = peak_.load(std::memory_order_relaxed);
  while (cur + n > peak && !peak_.compare_exchange_weak(peak, cur + n, std::memory_order_relaxed)) {}
  return true;
}

void backend::give(uint64_t n) { allocated_.fetch_sub(n, std::memory_order_relaxed); }

void backend::remember(void* p, uint64_t n) {
  std::lock_guard<std::mutex> lk(sizes_mu_);
  sizes_[p] = n;
}

uint64_t backend::forget(void* p) {
  std::lock_guard<std::mutex> lk(sizes_mu_);
  auto it = sizes_.find(p);
  if (it == sizes_.end()) return 0;
  const uint64_t n = it->second;
  sizes_.erase(it);
  return n;
}

result<std::shared_ptr<backend>> make_backend(const backend_options& o) {
  return o.kind == backend_kind::cuda ? make_backend_cuda(o) : make_backend_cpu(o);
}

}  // namespace lime
