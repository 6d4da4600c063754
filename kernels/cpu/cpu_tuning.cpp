// The CPU-model speed choices of cpu_tuning.h: the vendor and family check, the LIME_STAGED_ROWS override, the setting.
#include "kernels/cpu/cpu_tuning.h"

#include <atomic>
#include <cstdlib>
#include <cstring>

#if LIME_ARCH_X86
#include <cpuid.h>
#endif

namespace lime::cpu {
namespace {

// The CPU family (cpuid leaf 1: base family, plus the extended family when the base is 15) when cpuid leaf 0's
// vendor string is AMD's own; 0 on any other CPU. Zen 5 is family 26 (0x1A), Zen 3 and Zen 4 are 25 (0x19).
int amd_family() {
#if LIME_ARCH_X86
  unsigned a = 0, b = 0, c = 0, d = 0;
  if (!__get_cpuid(0, &a, &b, &c, &d)) return 0;
  char vendor[13];
  std::memcpy(vendor, &b, 4);
  std::memcpy(vendor + 4, &d, 4);
  std::memcpy(vendor + 8, &c, 4);
  vendor[12] = '\0';
  if (std::strcmp(vendor, "AuthenticAMD") != 0 || !__get_cpuid(1, &a, &b, &c, &d)) return 0;
  const int base = static_cast<int>((a >> 8) & 0xf);
  return base == 0xf ? base + static_cast<int>((a >> 20) & 0xff) : base;
#else
  return 0;
#endif
}

row_order default_row_order() {
  if (const char* env = std::getenv("LIME_STAGED_ROWS")) {
    if (std::strcmp(env, "streams") == 0) return row_order::streams;
    if (std::strcmp(env, "adjacent") == 0) return row_order::adjacent;
  }
  constexpr int k_zen5_family = 0x1a;
  return amd_family() >= k_zen5_family ? row_order::adjacent : row_order::streams;
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
