// scripts/cuda-emu only: runs a CUDA grid on the host, block after block; each thread is a ucontext fiber,
// __syncthreads and warp shuffles are cooperative barriers; a barrier that can never complete aborts (lanes of a
// warp split between a shuffle and __syncthreads). Exited threads are not waited for (real hardware may hang).
#pragma once
#include <ucontext.h>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <cmath>
#include <functional>
#include <vector>

struct dim3 {
  unsigned x = 1, y = 1, z = 1;
  dim3(unsigned x_ = 1, unsigned y_ = 1, unsigned z_ = 1) : x(x_), y(y_), z(z_) {}
};
inline dim3 threadIdx, blockIdx, blockDim, gridDim;

namespace emu {
enum state { runnable, at_block, at_warp, done };
struct fiber {
  ucontext_t ctx;
  std::vector<char> stack;
  state st = runnable;
  unsigned tid = 0;
};
struct block_sched {
  std::vector<fiber> f;
  ucontext_t main_ctx;
  int cur = -1;
  float slots[1024];
  std::function<void()> body;
  long long barriers = 0;
};
inline block_sched* S = nullptr;

inline void yield_to_main() {
  fiber& me = S->f[S->cur];
  swapcontext(&me.ctx, &S->main_ctx);
}
inline void fiber_entry() {
  S->body();
  S->f[S->cur].st = done;
  yield_to_main();
  std::abort();
}

inline void run_block(unsigned nthreads, const std::function<void()>& body) {
  static block_sched sched;
  S = &sched;
  sched.body = body;
  if (sched.f.size() < nthreads) sched.f.resize(nthreads);
  for (unsigned t = 0; t < nthreads; ++t) {
    fiber& fb = sched.f[t];
    if (fb.stack.empty()) fb.stack.resize(256 * 1024);
    getcontext(&fb.ctx);
    fb.ctx.uc_stack.ss_sp = fb.stack.data();
    fb.ctx.uc_stack.ss_size = fb.stack.size();
    fb.ctx.uc_link = nullptr;
    makecontext(&fb.ctx, fiber_entry, 0);
    fb.st = runnable;
    fb.tid = t;
  }
  unsigned alive = nthreads;
  while (alive > 0) {
    bool progress = false;
    for (unsigned t = 0; t < nthreads; ++t) {
      if (sched.f[t].st != runnable) continue;
      sched.cur = static_cast<int>(t);
      threadIdx = dim3(t);
      swapcontext(&sched.main_ctx, &sched.f[t].ctx);
      progress = true;
      if (sched.f[t].st == done) --alive;
    }
    if (alive == 0) break;
    // Block barrier: every live thread waits there.
    bool all_block = true;
    for (unsigned t = 0; t < nthreads; ++t)
      if (sched.f[t].st != done && sched.f[t].st != at_block) all_block = false;
    if (all_block) {
      for (unsigned t = 0; t < nthreads; ++t) if (sched.f[t].st == at_block) sched.f[t].st = runnable;
      ++sched.barriers;
      continue;
    }
    // Warp barriers.
    bool released = false;
    for (unsigned w0 = 0; w0 < nthreads; w0 += 32) {
      bool any = false, all = true;
      for (unsigned t = w0; t < w0 + 32 && t < nthreads; ++t) {
        if (sched.f[t].st == done) continue;
        if (sched.f[t].st == at_warp) any = true; else all = false;
      }
      if (any && all) {
        for (unsigned t = w0; t < w0 + 32 && t < nthreads; ++t) if (sched.f[t].st == at_warp) sched.f[t].st = runnable;
        released = true;
      }
    }
    if (!progress && !released) {
      std::fprintf(stderr, "EMU DEADLOCK: block (%u,%u) states:", blockIdx.x, blockIdx.y);
      for (unsigned t = 0; t < nthreads; ++t) std::fprintf(stderr, " %d", sched.f[t].st);
      std::fprintf(stderr, "\n");
      std::abort();
    }
  }
}

inline void grid_run(dim3 g, dim3 b, const std::function<void()>& body) {
  gridDim = g;
  blockDim = b;
  const unsigned n = b.x * b.y * b.z;
  for (unsigned z = 0; z < g.z; ++z)
    for (unsigned y = 0; y < g.y; ++y)
      for (unsigned x = 0; x < g.x; ++x) {
        blockIdx = dim3(x, y, z);
        run_block(n, body);
      }
}

template <class K>
struct launcher {
  K k;
  dim3 g, b;
  template <class... A>
  void operator()(A... args) { grid_run(g, b, [&] { k(args...); }); }
};
template <class K>
launcher<K> launch(K k, dim3 g, dim3 b, size_t = 0, void* = nullptr) { return launcher<K>{k, g, b}; }
template <class K, class S>
launcher<K> launch(K k, dim3 g, dim3 b, size_t, S) { return launcher<K>{k, g, b}; }

inline void sync_block() {
  S->f[S->cur].st = at_block;
  yield_to_main();
}
inline void sync_warp() {
  S->f[S->cur].st = at_warp;
  yield_to_main();
}
inline float shfl(float v, int src_of_lane) {
  const unsigned t = threadIdx.x;
  S->slots[t] = v;
  sync_warp();
  const float r = S->slots[(t / 32) * 32 + src_of_lane];
  sync_warp();
  return r;
}
}  // namespace emu

inline void __syncthreads() { emu::sync_block(); }
inline void __syncwarp(unsigned = 0xffffffffu) { emu::sync_block(); }  // kernels call it uniformly across the block
inline float __shfl_down_sync(unsigned, float v, int delta, int width = 32) {
  const int lane = threadIdx.x % 32, base = lane / width * width;
  int src = lane + delta;
  if (src >= base + width) src = lane;
  return emu::shfl(v, src);
}
inline float __shfl_xor_sync(unsigned, float v, int mask, int width = 32) {
  const int lane = threadIdx.x % 32, base = lane / width * width;
  int src = lane ^ mask;
  if (src < base || src >= base + width) src = lane;
  return emu::shfl(v, src);
}
inline float __shfl_sync(unsigned, float v, int src_lane, int width = 32) {
  const int lane = threadIdx.x % 32, base = lane / width * width;
  return emu::shfl(v, base + (src_lane % width));
}
inline float __uint_as_float(uint32_t u) { float f; std::memcpy(&f, &u, 4); return f; }
inline uint32_t __float_as_uint(float f) { uint32_t u; std::memcpy(&u, &f, 4); return u; }
inline float __int_as_float(int32_t v) { float f; std::memcpy(&f, &v, 4); return f; }
inline int __clz(int x) { return x ? __builtin_clz(static_cast<unsigned>(x)) : 32; }
inline float __fmaf_rn(float a, float b, float c) { return std::fma(a, b, c); }
template <class T>
inline T __ldg(const T* p) { return *p; }
