// Matmul benchmark (not a test): weight GB/s of matvec (decode) against a streaming read of the same memory,
// and GFLOP/s of matmul (prefill) against a measured fp32 FMA peak, per type and ISA variant, one thread.
// Usage: bench_matmul [quick]. Prints `op | type | isa | shape | ms | GB/s or GFLOP/s | % of roofline`.
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "kernels/cpu/isa.h"
#include "kernels/cpu/matmul.h"
#include "kernels/cpu/quants.h"

using namespace lime;
using namespace lime::cpu;

namespace {

// Wall time; every figure is the minimum over many short runs (a few ms), so a shared machine's preemptions
// drop out, and each kernel figure is taken interleaved with its roofline measured the same way.
double now() { return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count(); }

// Streaming read of n floats (the roofline for matvec).
#if defined(__x86_64__)
__attribute__((target("avx2"))) float read_pass(const float* p, size_t n) {
  typedef float v8 __attribute__((vector_size(32)));
  v8 a = {}, b = {}, c = {}, d = {};
  for (size_t i = 0; i + 32 <= n; i += 32) {
    v8 x0, x1, x2, x3;
    std::memcpy(&x0, p + i, 32);
    std::memcpy(&x1, p + i + 8, 32);
    std::memcpy(&x2, p + i + 16, 32);
    std::memcpy(&x3, p + i + 24, 32);
    a += x0; b += x1; c += x2; d += x3;
  }
  v8 s = a + b + c + d;
  return s[0];
}

// fp32 FMA peak of one core: 12 independent 8-wide chains for `iters` steps; returns seconds.
__attribute__((target("avx2,fma"))) double fma_burst(long iters) {
  typedef float v8 __attribute__((vector_size(32)));
  v8 acc[12];
  for (int i = 0; i < 12; ++i) acc[i] = v8{} + static_cast<float>(i);
  const v8 m = v8{} + 0.999999f, a = v8{} + 1e-7f;
  const double t0 = now();
  for (long it = 0; it < iters; ++it) {
#pragma GCC unroll 12
    for (int i = 0; i < 12; ++i) acc[i] = __builtin_ia32_vfmaddps256(acc[i], m, a);
  }
  const double t = now() - t0;
  float sum = 0;
  for (int i = 0; i < 12; ++i) sum += acc[i][0] + acc[i][7];  // every chain live (no dead-code shortcut)
  volatile float sink = sum;
  (void)sink;
  return t;
}
constexpr double k_fma_lanes = 8;  // 8-wide ymm fma (the peak of this CPU class without AVX-512)
#else
float read_pass(const float* p, size_t n) {
  float s = 0;
  for (size_t i = 0; i < n; ++i) s += p[i];
  return s;
}
double fma_burst(long) { return 1; }
constexpr double k_fma_lanes = 4;
#endif

struct shape {
  const char* model;
  int64_t k, n;
};

}  // namespace

int main(int argc, char** argv) {
  const bool quick = argc > 1 && std::strcmp(argv[1], "quick") == 0;
  const int reps = quick ? 8 : 20;
  const size_t pool_bytes = size_t{512} << 20;  // >> L3: decode reads DRAM
  std::vector<uint8_t> pool(pool_bytes);
  std::mt19937 rng(1);
  {
    std::vector<float> src(1 << 16);
    std::uniform_real_distribution<float> dist(-1.f, 1.f);
    for (float& f : src) f = dist(rng);
    std::vector<uint8_t> blk(tensor_row_bytes(tensor_type::q8_0, 1 << 16));
    quantize_row(tensor_type::q8_0, src.data(), blk.data(), 1 << 16);
    for (size_t i = 0; i < pool_bytes; i += blk.size()) {
      std::memcpy(&pool[i], blk.data(), std::min(blk.size(), pool_bytes - i));
    }
  }
  double peak_t = 1e9;
  const long burst = 200000;
  for (int r = 0; r < 50; ++r) peak_t = std::min(peak_t, fma_burst(burst));
  const double peak = burst * 12.0 * k_fma_lanes * 2 / peak_t / 1e9;
  std::printf("fp32 FMA peak (1 core): %.1f GFLOP/s; isa_best=%s\n", peak, isa_name(isa_best()));

  const tensor_type types[] = {tensor_type::f32,  tensor_type::f16,  tensor_type::bf16, tensor_type::q8_0,
                               tensor_type::q4_0, tensor_type::q4_1, tensor_type::q5_0, tensor_type::q5_1,
                               tensor_type::q4_k, tensor_type::q5_k, tensor_type::q6_k};
  const shape shapes[] = {{"stories110M", 768, 2048}, {"stories110M", 768, 768}, {"stories110M", 768, 32000},
                          {"llama-3.2-1B", 2048, 8192}, {"llama-3.2-1B", 2048, 2048},
                          {"llama-3.2-1B", 2048, 128256}};
  std::vector<isa> isas;
  for (isa i : {isa::avx2, isa::avx512, isa::neon}) {
    if (isa_available(i)) isas.push_back(i);
  }
  const char* only = std::getenv("BENCH_TYPE");
  std::vector<float> x(static_cast<size_t>(512) * 2048);
  for (float& f : x) f = std::uniform_real_distribution<float>(-1.f, 1.f)(rng);
  std::vector<float> y(static_cast<size_t>(512) * 128256);
  const size_t chunk_bytes = size_t{6} << 20;  // one timed call reads about this much (whole rows)

  std::printf("op | type | isa | shape (K x N) | ms per 6 MB | GB/s | read GB/s | %% of read\n");
  for (tensor_type t : types) {
    if (only && std::strcmp(only, tensor_type_name(t)) != 0) continue;
    for (const shape& s : shapes) {
      const size_t rb = tensor_row_bytes(t, s.k);
      int64_t rows = static_cast<int64_t>(chunk_bytes / rb);
      if (rows > s.n) rows = s.n;
      const size_t bytes = rb * static_cast<size_t>(rows);
      const size_t slots = pool_bytes / bytes;
      for (isa i : isas) {
        double best = 1e9, best_read = 1e9;
        for (int rep = 0; rep < reps; ++rep) {
          const uint8_t* wk = pool.data() + (2 * rep % slots) * bytes;
          const uint8_t* wr = pool.data() + ((2 * rep + 1) % slots) * bytes;
          double t0 = now();
          const float sink = read_pass(reinterpret_cast<const float*>(wr), bytes / 4);
          best_read = std::min(best_read, now() - t0);
          matmul_args a{t, wk, rows, s.k, x.data(), 1, y.data(), 0, rows};
          t0 = now();
          if (matmul_with(i, a) != kstatus::ok) return 1;
          best = std::min(best, now() - t0);
          if (sink == 1234.5f) std::printf(" ");
        }
        const double gbs = bytes / best / 1e9, rbs = bytes / best_read / 1e9;
        std::printf("matvec | %s | %s | %s %lld x %lld | %.3f | %.1f | %.1f | %.0f%%\n", tensor_type_name(t),
                    isa_name(i), s.model, static_cast<long long>(s.k), static_cast<long long>(s.n),
                    best * 1e3 * 6.0 * (1 << 20) / bytes, gbs, rbs, 100 * gbs / rbs);
      }
    }
  }
  std::printf("op | type | isa | shape (K x rows x batch) | ms | GFLOP/s | %% of FMA peak\n");
  for (tensor_type t : types) {
    if (only && std::strcmp(only, tensor_type_name(t)) != 0) continue;
    for (int64_t batch : {16, 64, 512}) {
      for (const shape& s : {shape{"stories110M", 768, 2048}, shape{"llama-3.2-1B", 2048, 2048}}) {
        // About 0.1 GFLOP per timed call: a slice of rows, whole 24-row strips.
        int64_t rows = static_cast<int64_t>(1e8 / (2.0 * s.k * batch)) / 24 * 24;
        rows = std::max<int64_t>(24, std::min(rows, s.n));
        for (isa i : isas) {
          double best = 1e9;
          for (int rep = 0; rep < reps; ++rep) {
            matmul_args a{t, pool.data(), s.n, s.k, x.data(), batch, y.data(), 0, rows};
            const double t0 = now();
            if (matmul_with(i, a) != kstatus::ok) return 1;
            best = std::min(best, now() - t0);
          }
          const double gf = 2.0 * s.k * rows * batch / best / 1e9;
          std::printf("matmul | %s | %s | %s %lld x %lld x %lld | %.2f | %.1f | %.0f%%\n", tensor_type_name(t),
                      isa_name(i), s.model, static_cast<long long>(s.k), static_cast<long long>(rows),
                      static_cast<long long>(batch), best * 1e3, gf, 100 * gf / peak);
        }
      }
    }
  }
  return 0;
}
