// The CPU-model speed choices of cpu_tuning.h (the vendor and family check, the LIME_STAGED_ROWS override, the
// setting) and the CPU description benchmarks print.
#include "kernels/cpu/cpu_tuning.h"

#include <atomic>
#include <cstdlib>
#include <cstring>

#if LIME_ARCH_X86
#include <cpuid.h>
#endif

namespace lime::cpu {
namespace {

#if LIME_ARCH_X86
// cpuid leaf 0's vendor string and leaf 1's displayed family and model (extended fields added as the SDMs say).
struct cpu_id {
  char vendor[13] = {};
  int family = 0;
  int model = 0;
  bool amd() const { return std::strcmp(vendor, "AuthenticAMD") == 0; }
};

cpu_id read_cpu_id() {
  cpu_id id;
  unsigned a = 0, b = 0, c = 0, d = 0;
  if (!__get_cpuid(0, &a, &b, &c, &d)) return id;
  std::memcpy(id.vendor, &b, 4);
  std::memcpy(id.vendor + 4, &d, 4);
  std::memcpy(id.vendor + 8, &c, 4);
  if (!__get_cpuid(1, &a, &b, &c, &d)) return id;
  const int base_family = static_cast<int>((a >> 8) & 0xf);
  const int base_model = static_cast<int>((a >> 4) & 0xf);
  id.family = base_family == 0xf ? base_family + static_cast<int>((a >> 20) & 0xff) : base_family;
  const bool extended_model = base_family == 0xf || base_family == 0x6;
  id.model = extended_model ? base_model | static_cast<int>(((a >> 16) & 0xf) << 4) : base_model;
  return id;
}

// cpuid leaves 0x80000002-4: the brand string, spaces trimmed; empty when the CPU has none.
std::string read_brand() {
  unsigned top = 0, b = 0, c = 0, d = 0;
  if (!__get_cpuid(0x80000000u, &top, &b, &c, &d) || top < 0x80000004u) return {};
  char text[49] = {};
  for (unsigned leaf = 0; leaf < 3; ++leaf) {
    unsigned r[4] = {};
    __get_cpuid(0x80000002u + leaf, &r[0], &r[1], &r[2], &r[3]);
    std::memcpy(text + 16 * leaf, r, sizeof r);
  }
  std::string s(text);
  const size_t first = s.find_first_not_of(' ');
  if (first == std::string::npos) return {};
  return s.substr(first, s.find_last_not_of(' ') - first + 1);
}
#endif

// The CPU family when the vendor is AMD; 0 on any other CPU. Zen 5 is family 26 (0x1A), Zen 3 and Zen 4 are 25 (0x19).
int amd_family() {
#if LIME_ARCH_X86
  const cpu_id id = read_cpu_id();
  return id.amd() ? id.family : 0;
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

const char* amd_core_name(int family, int model) {
  switch (family) {
    case 0x17: return "Zen / Zen 2";
    case 0x19: {
      const bool zen4 = (model >= 0x10 && model <= 0x1f) || (model >= 0x60 && model <= 0x7f) ||
                        (model >= 0xa0 && model <= 0xaf);
      return zen4 ? "Zen 4" : "Zen 3";
    }
    case 0x1a: return "Zen 5";
    default: return nullptr;
  }
}

std::string cpu_description() {
#if LIME_ARCH_X86
  const cpu_id id = read_cpu_id();
  std::string s = std::string(id.vendor[0] ? id.vendor : "unknown vendor") + " family " + std::to_string(id.family) +
                  " model " + std::to_string(id.model);
  const char* core = id.amd() ? amd_core_name(id.family, id.model) : nullptr;
  if (core) s += std::string(" (") + core + ")";
  const std::string brand = read_brand();
  if (!brand.empty()) s += ": " + brand;
  return s;
#else
  return "no cpuid (not x86)";
#endif
}

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
