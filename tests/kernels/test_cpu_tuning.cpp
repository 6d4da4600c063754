// The CPU description benchmarks print (kernels/cpu/cpu_tuning.h): AMD core generations by family and model, and
// the description's shape on this machine.
#include <gtest/gtest.h>

#include <string>

#include "kernels/cpu/cpu_tuning.h"

namespace lime::cpu {
namespace {

std::string core(int family, int model) {
  const char* name = amd_core_name(family, model);
  return name ? name : "(unknown)";
}

// Family / model pairs of released parts (AMD's revision guides): Zen 2 Rome 23/49, Zen 3 Milan 25/1 and Vermeer
// 25/33, Zen 4 Genoa 25/17, Raphael 25/97, Phoenix 25/116 and Bergamo 25/160, Zen 5 Turin 26/2 and Granite Ridge 26/68.
TEST(cpu_tuning, amd_core_names_follow_family_and_model) {
  EXPECT_EQ(core(23, 49), "Zen / Zen 2");
  EXPECT_EQ(core(25, 1), "Zen 3");
  EXPECT_EQ(core(25, 33), "Zen 3");
  EXPECT_EQ(core(25, 17), "Zen 4");
  EXPECT_EQ(core(25, 97), "Zen 4");
  EXPECT_EQ(core(25, 116), "Zen 4");
  EXPECT_EQ(core(25, 160), "Zen 4");
  EXPECT_EQ(core(26, 2), "Zen 5");
  EXPECT_EQ(core(26, 68), "Zen 5");
  EXPECT_EQ(core(21, 2), "(unknown)");  // Bulldozer-era family 21
  EXPECT_EQ(core(6, 85), "(unknown)");  // an Intel family / model
}

TEST(cpu_tuning, description_names_the_cpu) {
  const std::string d = cpu_description();
#if LIME_ARCH_X86
  EXPECT_NE(d.find(" family "), std::string::npos) << d;
  EXPECT_NE(d.find(" model "), std::string::npos) << d;
  EXPECT_EQ(d.rfind("unknown vendor", 0), std::string::npos) << d;  // cpuid leaf 0 answers on every x86-64 CPU
#else
  EXPECT_EQ(d, "no cpuid (not x86)");
#endif
}

}  // namespace
}  // namespace lime::cpu
