// The machine's measured roofline: streaming read bandwidth and fp32 FMA peak, 1 thread and all threads. The FMA
// loops use the instruction set of the kernels' chosen variant through per-function target attributes (only
// intrinsics inside, so no shared inline code is compiled with those flags).
#include <algorithm>
#include <chrono>
#include <cstring>
#include <memory>

#include "kernels/cpu/cpu_tuning.h"
#include "runtime/bench.h"

#if defined(__x86_64__)
#include <immintrin.h>
#elif defined(__aarch64__)
#include <arm_neon.h>
#endif

namespace lime {

double bench_now_s() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

namespace {

// Sum of n bytes as uint64 words with 8 independent accumulators (the compiler vectorizes it for the baseline
// ISA); n % 64 == 0.
uint64_t read_sum_generic(const uint8_t* p, uint64_t n) {
  uint64_t acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  const uint64_t words = n / 8;
  const uint64_t* w = reinterpret_cast<const uint64_t*>(p);
  for (uint64_t i = 0; i + 8 <= words; i += 8) {
    for (int j = 0; j < 8; ++j) acc[j] += w[i + static_cast<uint64_t>(j)];
  }
  uint64_t s = 0;
  for (uint64_t a : acc) s += a;
  return s;
}

#if defined(__x86_64__)
// The same sum with the kernels' widest loads, 256 bytes an iteration. On a Xeon (AVX-512, lime-bench alternated
// 3 times) the baseline loop read 11.4-12.3 GB/s on 1 thread and 21.0-22.6 on 2 where this one read 12.9-13.5 and
// 24.9-26.3: the kernels' own loads get more, so the baseline loop set the roofline too low.
__attribute__((target("avx2"))) uint64_t read_sum_avx2(const uint8_t* p, uint64_t n) {
  __m256i a0 = _mm256_setzero_si256(), a1 = _mm256_setzero_si256();
  for (uint64_t o = 0; o + 256 <= n; o += 256) {
    const __m256i* v = reinterpret_cast<const __m256i*>(p + o);
    a0 = _mm256_add_epi64(a0, _mm256_add_epi64(_mm256_loadu_si256(v), _mm256_loadu_si256(v + 1)));
    a1 = _mm256_add_epi64(a1, _mm256_add_epi64(_mm256_loadu_si256(v + 2), _mm256_loadu_si256(v + 3)));
    a0 = _mm256_add_epi64(a0, _mm256_add_epi64(_mm256_loadu_si256(v + 4), _mm256_loadu_si256(v + 5)));
    a1 = _mm256_add_epi64(a1, _mm256_add_epi64(_mm256_loadu_si256(v + 6), _mm256_loadu_si256(v + 7)));
  }
  alignas(32) uint64_t out[4];
  _mm256_store_si256(reinterpret_cast<__m256i*>(out), _mm256_add_epi64(a0, a1));
  return out[0] + out[1] + out[2] + out[3] + read_sum_generic(p + n / 256 * 256, n % 256);
}

__attribute__((target("avx512f"))) uint64_t read_sum_avx512(const uint8_t* p, uint64_t n) {
  __m512i a0 = _mm512_setzero_si512(), a1 = _mm512_setzero_si512();
  for (uint64_t o = 0; o + 256 <= n; o += 256) {
    const uint8_t* b = p + o;
    a0 = _mm512_add_epi64(a0, _mm512_add_epi64(_mm512_loadu_si512(b), _mm512_loadu_si512(b + 64)));
    a1 = _mm512_add_epi64(a1, _mm512_add_epi64(_mm512_loadu_si512(b + 128), _mm512_loadu_si512(b + 192)));
  }
  alignas(64) uint64_t out[8];
  _mm512_store_si512(out, _mm512_add_epi64(a0, a1));
  uint64_t s = 0;
  for (uint64_t v : out) s += v;
  return s + read_sum_generic(p + n / 256 * 256, n % 256);
}
#endif

volatile uint64_t g_sink_u64;
volatile float g_sink_f32;
// Loop constants read through volatiles, so the compiler cannot fold the chains (a constant start value can be
// a fixed point of acc * m + c, and a loop that provably changes nothing gets removed).
volatile float g_mul = 0.9999999f, g_add = 1e-7f, g_start = 0.5f;

// Each FMA loop runs `iters` iterations of C independent chains acc = acc * m + c of W-wide vectors and returns
// the sum of its accumulators (so the work cannot be dropped); flops = iters * C * W * 2.
float fma_loop_generic(int64_t iters, int64_t* flops) {
  // 16 chains of 4 floats, mul then add (a baseline build has no FMA instruction; -ffp-contract=off keeps them
  // separate): what the reference kernels can issue per cycle.
  typedef float v4 __attribute__((vector_size(16)));
  const float mul = g_mul, add = g_add, start = g_start;
  v4 acc[16];
  for (int j = 0; j < 16; ++j) acc[j] = v4{start, start, start, start} + 1e-3f * static_cast<float>(j);
  const v4 m = {mul, mul, mul, mul}, c = {add, add, add, add};
  for (int64_t it = 0; it < iters; ++it) {
#pragma GCC unroll 16
    for (int j = 0; j < 16; ++j) acc[j] = acc[j] * m + c;
  }
  float s = 0.f;
  for (const v4& a : acc) s += a[0] + a[1] + a[2] + a[3];
  *flops = iters * 16 * 4 * 2;
  return s;
}

#if defined(__x86_64__)
__attribute__((target("avx2,fma"))) float fma_loop_avx2(int64_t iters, int64_t* flops) {
  const float s0 = g_start;
  const __m256 m = _mm256_set1_ps(g_mul), c = _mm256_set1_ps(g_add);
  __m256 a0 = _mm256_set1_ps(s0), a1 = _mm256_set1_ps(s0 + 0.01f), a2 = _mm256_set1_ps(s0 + 0.02f);
  __m256 a3 = _mm256_set1_ps(s0 + 0.03f), a4 = _mm256_set1_ps(s0 + 0.04f), a5 = _mm256_set1_ps(s0 + 0.05f);
  __m256 a6 = _mm256_set1_ps(s0 + 0.06f), a7 = _mm256_set1_ps(s0 + 0.07f), a8 = _mm256_set1_ps(s0 + 0.08f);
  __m256 a9 = _mm256_set1_ps(s0 + 0.09f), a10 = _mm256_set1_ps(s0 + 0.10f), a11 = _mm256_set1_ps(s0 + 0.11f);
  for (int64_t it = 0; it < iters; ++it) {
    a0 = _mm256_fmadd_ps(a0, m, c); a1 = _mm256_fmadd_ps(a1, m, c); a2 = _mm256_fmadd_ps(a2, m, c);
    a3 = _mm256_fmadd_ps(a3, m, c); a4 = _mm256_fmadd_ps(a4, m, c); a5 = _mm256_fmadd_ps(a5, m, c);
    a6 = _mm256_fmadd_ps(a6, m, c); a7 = _mm256_fmadd_ps(a7, m, c); a8 = _mm256_fmadd_ps(a8, m, c);
    a9 = _mm256_fmadd_ps(a9, m, c); a10 = _mm256_fmadd_ps(a10, m, c); a11 = _mm256_fmadd_ps(a11, m, c);
  }
  __m256 s = _mm256_add_ps(_mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)),
                           _mm256_add_ps(_mm256_add_ps(a4, a5), _mm256_add_ps(a6, a7)));
  s = _mm256_add_ps(s, _mm256_add_ps(_mm256_add_ps(a8, a9), _mm256_add_ps(a10, a11)));
  alignas(32) float out[8];
  _mm256_store_ps(out, s);
  *flops = iters * 12 * 8 * 2;
  return out[0] + out[1] + out[2] + out[3] + out[4] + out[5] + out[6] + out[7];
}

__attribute__((target("avx512f"))) float fma_loop_avx512(int64_t iters, int64_t* flops) {
  const float s0 = g_start;
  const __m512 m = _mm512_set1_ps(g_mul), c = _mm512_set1_ps(g_add);
  __m512 a[16];
  for (int j = 0; j < 16; ++j) a[j] = _mm512_set1_ps(s0 + 0.01f * static_cast<float>(j));
  for (int64_t it = 0; it < iters; ++it) {
#pragma GCC unroll 16
    for (int j = 0; j < 16; ++j) a[j] = _mm512_fmadd_ps(a[j], m, c);  // unrolled: 16 chains in registers
  }
  __m512 s = a[0];
  for (int j = 1; j < 16; ++j) s = _mm512_add_ps(s, a[j]);
  alignas(64) float out[16];
  _mm512_store_ps(out, s);
  float t = 0.f;
  for (float v : out) t += v;
  *flops = iters * 16 * 16 * 2;
  return t;
}
#endif

#if defined(__aarch64__)
float fma_loop_neon(int64_t iters, int64_t* flops) {
  const float s0 = g_start;
  const float32x4_t m = vdupq_n_f32(g_mul), c = vdupq_n_f32(g_add);
  float32x4_t a[16];
  for (int j = 0; j < 16; ++j) a[j] = vdupq_n_f32(s0 + 0.01f * static_cast<float>(j));
  for (int64_t it = 0; it < iters; ++it) {
#pragma GCC unroll 16
    for (int j = 0; j < 16; ++j) a[j] = vfmaq_f32(c, a[j], m);
  }
  float32x4_t s = a[0];
  for (int j = 1; j < 16; ++j) s = vaddq_f32(s, a[j]);
  *flops = iters * 16 * 4 * 2;
  return vaddvq_f32(s);
}
#endif

float fma_loop(cpu::isa i, int64_t iters, int64_t* flops) {
#if defined(__x86_64__)
  if (i == cpu::isa::avx512) return fma_loop_avx512(iters, flops);
  if (i == cpu::isa::avx2) return fma_loop_avx2(iters, flops);
#elif defined(__aarch64__)
  if (i == cpu::isa::neon) return fma_loop_neon(iters, flops);
#endif
  return fma_loop_generic(iters, flops);
}

}  // namespace

uint64_t bench_read_sum(cpu::isa i, const uint8_t* p, uint64_t n) {
#if defined(__x86_64__)
  if (i == cpu::isa::avx512) return read_sum_avx512(p, n);
  if (i == cpu::isa::avx2) return read_sum_avx2(p, n);
#endif
  (void)i;
  return read_sum_generic(p, n);
}

double bench_read_bandwidth(thread_pool& pool, cpu::isa i, const uint8_t* buf, uint64_t n, int reps) {
  const int nt = pool.n_threads();
  const uint64_t part = n / static_cast<uint64_t>(nt) / 64 * 64;
  double best = 0.0;
  for (int r = 0; r < reps; ++r) {
    std::vector<uint64_t> sums(static_cast<size_t>(nt), 0);
    const double t0 = bench_now_s();
    pool.parallel_for(nt, [&](int64_t b, int64_t, int) {
      sums[static_cast<size_t>(b)] = bench_read_sum(i, buf + static_cast<uint64_t>(b) * part, part);
    });
    const double dt = bench_now_s() - t0;
    uint64_t s = 0;
    for (uint64_t v : sums) s += v;
    g_sink_u64 = s;
    best = std::max(best, static_cast<double>(part) * nt / dt * 1e-9);
  }
  return best;
}

int64_t bench_fma_iters(cpu::isa i, double seconds) {
  int64_t iters = 1 << 16, flops = 0;
  for (;;) {
    const double t0 = bench_now_s();
    g_sink_f32 = fma_loop(i, iters, &flops);
    if (bench_now_s() - t0 > seconds || iters > (int64_t{1} << 34)) break;
    iters *= 2;
  }
  return iters;
}

double bench_fma_probe(thread_pool& pool, cpu::isa i, int64_t iters) {
  const int nt = pool.n_threads();
  std::vector<float> sink(static_cast<size_t>(nt));
  std::vector<int64_t> fl(static_cast<size_t>(nt));
  const double t0 = bench_now_s();
  pool.parallel_for(nt, [&](int64_t b, int64_t, int) {
    sink[static_cast<size_t>(b)] = fma_loop(i, iters, &fl[static_cast<size_t>(b)]);
  });
  const double dt = bench_now_s() - t0;
  double total = 0;
  for (int t = 0; t < nt; ++t) {
    total += static_cast<double>(fl[static_cast<size_t>(t)]);
    g_sink_f32 = sink[static_cast<size_t>(t)];
  }
  return total / dt * 1e-9;
}

double bench_median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n == 0 ? 0.0 : n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

double bench_paired_runs(const std::function<void()>& fn, const std::function<double()>& probe, double work,
                         double budget_s, double* paired) {
  double best = 1e30, spent = 0;
  std::vector<double> ratio;
  for (int rep = 0; rep < 5 && (rep < 2 || spent < budget_s); ++rep) {
    const double before = probe ? probe() : 0.0;
    const double t0 = bench_now_s();
    fn();
    const double dt = bench_now_s() - t0;
    const double after = probe ? probe() : 0.0;
    spent += dt;
    best = std::min(best, dt);
    if (probe && before + after > 0 && dt > 0) ratio.push_back(work / dt / (0.5 * (before + after)));
  }
  if (paired) *paired = ratio.empty() ? -1.0 : bench_median(ratio);
  return best;
}

double bench_fma_peak(thread_pool& pool, cpu::isa i, int reps) {
  const int64_t iters = bench_fma_iters(i, 0.05);  // ~0.1 s a run on one thread
  double best = 0.0;
  for (int r = 0; r < reps; ++r) best = std::max(best, bench_fma_probe(pool, i, iters));
  return best;
}

// Page-aligned, as the weights are: a large new[] returns a page plus 16 bytes, so every 64-byte load of the read
// loops straddled two lines, which read 40.5 against 43.1-43.7 GB/s aligned on one Zen 5 core (78-80 against
// 83-85 on two): the roofline came out below what the matvecs read.
bench_buffer::bench_buffer(uint64_t bytes) : n_(bytes / 4096 * 4096) {
  p_.reset(new uint8_t[n_ + 4096]);
  const uintptr_t at = reinterpret_cast<uintptr_t>(p_.get());
  data_ = p_.get() + (4096 - at % 4096) % 4096;
  std::memset(data_, 1, n_);  // fault every page in before timing
}

machine_roofline bench_measure_roofline(int n_threads, const bench_buffer& buf) {
  machine_roofline r;
  r.n_threads = n_threads > 0 ? n_threads : default_thread_count();
  r.isa = cpu::isa_best();
  r.buffer_bytes = buf.size();
  thread_pool one(1), all(r.n_threads);
  r.bw_1t = bench_read_bandwidth(one, r.isa, buf.data(), buf.size(), 5);
  r.bw_all = bench_read_bandwidth(all, r.isa, buf.data(), buf.size(), 5);
  r.fma_1t = bench_fma_peak(one, r.isa, 3);
  r.fma_all = bench_fma_peak(all, r.isa, 3);
  return r;
}

machine_roofline bench_measure_roofline(int n_threads, uint64_t buffer_bytes) {
  const bench_buffer buf(buffer_bytes);
  return bench_measure_roofline(n_threads, buf);
}

void bench_print_roofline(const machine_roofline& r, FILE* out) {
  std::string avail;
  for (cpu::isa i : {cpu::isa::ref, cpu::isa::avx2, cpu::isa::avx512, cpu::isa::neon}) {
    if (cpu::isa_available(i)) avail += std::string(avail.empty() ? "" : ",") + cpu::isa_name(i);
  }
  std::fprintf(out, "cpu: %s\n", cpu::cpu_description().c_str());
  std::fprintf(out, "kernel isa: %s (available: %s); staged matvec rows: %s\n", cpu::isa_name(r.isa), avail.c_str(),
               cpu::row_order_name(cpu::staged_row_order()));
  std::fprintf(out, "read bandwidth (%.0f MiB buffer, best of 5): 1 thread %.1f GB/s, %d threads %.1f GB/s\n",
               static_cast<double>(r.buffer_bytes) / (1024.0 * 1024.0), r.bw_1t, r.n_threads, r.bw_all);
  std::fprintf(out, "fp32 FMA peak (%s): 1 thread %.1f GFLOP/s, %d threads %.1f GFLOP/s\n", cpu::isa_name(r.isa),
               r.fma_1t, r.n_threads, r.fma_all);
}

}  // namespace lime
