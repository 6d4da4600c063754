// The dispatcher only trusts SIMD variants that reproduce the reference bits on this machine.
#include <gtest/gtest.h>

#include "kernels/cpu/isa.h"

namespace lime::cpu {
namespace {

TEST(isa_selfcheck, every_available_variant_passes_and_the_best_is_one_of_them) {
  EXPECT_TRUE(isa_selfcheck(isa::ref));
  for (isa i : {isa::avx2, isa::avx512, isa::neon}) {
    if (!isa_available(i)) {
      EXPECT_FALSE(isa_selfcheck(i)) << isa_name(i) << " is unavailable and must not pass";
      continue;
    }
    EXPECT_TRUE(isa_selfcheck(i)) << isa_name(i) << " differs from the reference on this CPU";
  }
  EXPECT_TRUE(isa_available(isa_best()));
  EXPECT_TRUE(isa_selfcheck(isa_best()));
}

}  // namespace
}  // namespace lime::cpu
