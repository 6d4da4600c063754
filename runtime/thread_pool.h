// A persistent pool of worker threads for data-parallel loops (parallel_for). Threads are created once; idle
// workers spin for a few microseconds and then sleep, so a pool that has nothing to do costs no CPU.
// It never decides what a range computes: callers split work so results do not depend on the thread count.
#pragma once
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace lime {

// Number of online CPUs (sysconf(_SC_NPROCESSORS_ONLN)), at least 1.
int default_thread_count();

class thread_pool {
 public:
  // n_threads >= 1 (smaller values are taken as 1). 1 runs every loop inline on the caller, with no threads.
  explicit thread_pool(int n_threads);
  ~thread_pool();
  thread_pool(const thread_pool&) = delete;
  thread_pool& operator=(const thread_pool&) = delete;

  // Splits [0, n) into n_threads() contiguous ranges, in order: range t has n / T elements plus one more when
  // t < n % T (T = n_threads()), and calls fn(begin, end, t) for each non-empty range, range t on thread t
  // (the calling thread is thread 0). Blocks until every range is done. n <= 0 does nothing.
  // One caller at a time (the pool's owner thread); fn must not throw and must not call parallel_for itself.
  void parallel_for(int64_t n, const std::function<void(int64_t begin, int64_t end, int thread_index)>& fn);

  int n_threads() const { return n_threads_; }

  // While a pool is marked busy (a forward pass runs a burst of loops with short serial gaps between them), idle
  // workers and the waiting caller poll for up to k_busy_spin before they sleep instead of a few microseconds: a
  // futex wake-up costs tens of microseconds on a VM, more than most gaps. Leaving busy drops back at once.
  class busy_scope {
   public:
    explicit busy_scope(thread_pool& p) : p_(&p) { p_->busy_.fetch_add(1, std::memory_order_relaxed); }
    ~busy_scope() { p_->busy_.fetch_sub(1, std::memory_order_relaxed); }
    busy_scope(const busy_scope&) = delete;
    busy_scope& operator=(const busy_scope&) = delete;

   private:
    thread_pool* p_;
  };

 private:
  void worker_main(int thread_index);
  void run_range(int thread_index);  // runs this thread's range of the current job

  int n_threads_ = 1;
  std::vector<std::thread> workers_;  // [n_threads - 1]; worker i is thread index i + 1

  // The current job, written by the caller before it bumps generation_ (release), read by workers after they
  // see the new generation (acquire).
  const std::function<void(int64_t, int64_t, int)>* job_ = nullptr;
  int64_t job_n_ = 0;

  std::atomic<uint64_t> generation_{0};  // bumped once per parallel_for; workers wait for it to change
  std::atomic<int> remaining_{0};        // workers that have not finished the current job
  std::atomic<int> busy_{0};             // open busy_scopes
  bool stop_ = false;                    // guarded by mu_

  std::mutex mu_;                   // guards stop_ and the sleeps below
  std::condition_variable wake_cv_;  // workers sleep here waiting for a new generation
  std::condition_variable done_cv_;  // the caller sleeps here waiting for remaining_ == 0
};

}  // namespace lime
