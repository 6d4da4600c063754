// The roofline benchmark's read loops: each ISA's loop must read every byte it is timed on (a loop that skipped
// some would report a bandwidth the machine does not have), so each gives the plain sum of the words.
#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <random>
#include <vector>

#include "kernels/cpu/isa.h"
#include "runtime/bench.h"

namespace lime {
namespace {

uint64_t plain_sum(const uint8_t* p, uint64_t n) {
  uint64_t s = 0;
  for (uint64_t o = 0; o + 8 <= n; o += 8) {
    uint64_t w;
    std::memcpy(&w, p + o, sizeof w);
    s += w;
  }
  return s;
}

TEST(bench_roofline, every_read_loop_sums_every_word) {
  std::mt19937_64 rng(7);
  // Sizes around the wide loops' 256-byte step: whole steps, a step and a tail, tails only.
  for (uint64_t n : {uint64_t{64}, uint64_t{192}, uint64_t{256}, uint64_t{320}, uint64_t{64 * 37}, uint64_t{1 << 16}}) {
    std::vector<uint64_t> words(n / 8);
    for (uint64_t& w : words) w = rng();
    const uint8_t* p = reinterpret_cast<const uint8_t*>(words.data());
    const uint64_t want = plain_sum(p, n);
    int tried = 0;
    for (cpu::isa i : {cpu::isa::ref, cpu::isa::avx2, cpu::isa::avx512, cpu::isa::neon}) {
      if (!cpu::isa_available(i)) continue;
      EXPECT_EQ(bench_read_sum(i, p, n), want) << cpu::isa_name(i) << ", " << n << " bytes";
      ++tried;
    }
    EXPECT_GE(tried, 1);
  }
}

}  // namespace
}  // namespace lime
