// The CPU-model speed choices of cpu_tuning.h: the vendor check, the LIME_STAGED_ROWS override, the setting.
#include "kernels/cpu/cpu_tuning.h"

#include <atomic>
#include <cstdlib>
#include <cstring>

#if LIME_ARCH_X86
#include <cpuid.h>
#endif

namespace lime::cpu {
namespace {

// cpuid leaf 0's vendor string: AMD's own, or Hygon's (Zen cores).
bool cpu_is_amd() {
#if LIME_ARCH_X86
  unsigned a = 0, b = 0, c = 0, d = 0;
  if (!__get_cpuid(0, &a, &b, &c, &d)) return false;
  char vendor[13];
  std::memcpy(vendor, &b, 4);
  std::memcpy(vendor + 4, &d, 4);
  std::memcpy(vendor + 8, &c, 4);
  vendor[12] = '\0';
  return std::strcmp(vendor, "AuthenticAMD") == 0 || std::strcmp(vendor, "HygonGenuine") == 0;
#else
  return false;
#endif
}

row_order default_row_order() {
  if (const char* env = std::getenv("LIME_STAGED_ROWS")) {
    if (std::strcmp(env, "streams") == 0) return row_order::streams;
    if (std::strcmp(env, "adjacent") == 0) return row_order::adjacent;
  }
  return cpu_is_amd() ? row_order::adjacent : row_order::streams;
}

constexpr int k_unset = -1;
std::atomic<int> g_staged_order{k_unset};  // a row_order, or k_unset before the first use

}  // namespace

const char* row_order_name(row_order o) { return o == row_order::adjacent ? "adjacent" : "streams"; }

row_order staged_row_order() {
  int o = g_staged_order.load(std::memory_order_relaxed);
  if (o == k_unset) {
    int expected = k_unset;
    g_staged_order.compare_exchange_strong(expected, static_cast<int>(default_row_order()), std::memory_order_relaxed);
    o = g_staged_order.load(std::memory_order_relaxed);
  }
  return static_cast<row_order>(o);
}

void set_staged_row_order(row_order o) { g_staged_order.store(static_cast<int>(o), std::memory_order_relaxed); }

}  // namespace lime::cpu
