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

  // Hands [0, n) out in chunks of `chunk` indices (the last one shorter), first come first served: fn(begin, end,
  // t) runs once per chunk on whichever thread t takes it, the caller (thread 0) included. A thread that is late
  // (descheduled: a busy or shared machine) simply takes fewer chunks, so nobody waits for it; what a chunk
  // computes must therefore not depend on t beyond per-thread scratch. Blocks until every chunk is done.
  // chunk < 1 is taken as 1. Same caller rules as parallel_for.
  void parallel_for_dynamic(int64_t n, int64_t chunk,
                            const std::function<void(int64_t begin, int64_t end, int thread_index)>& fn);

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
  using job_fn = std::function<void(int64_t, int64_t, int)>;
  void worker_main(int thread_index);
  void run_range(int thread_index);                  // runs this thread's range of the current split job
  void run_chunks(uint64_t ticket, int thread_index);  // takes chunks of the job `ticket` names while any are left
  uint64_t publish(bool chunks, uint64_t left);      // starts a job: next generation, returns its ticket
  template <class F>
  void wait_for_job(F done);  // the caller: polls, then sleeps, until done(); then forgets the job
  bool busy() const { return busy_.load(std::memory_order_relaxed) > 0; }

  int n_threads_ = 1;
  std::vector<std::thread> workers_;  // [n_threads - 1]; worker i is thread index i + 1

  // The current job, written by the caller before it publishes the ticket (release), read by workers after they
  // acquire it: for a chunk job only after taking a chunk (the job stays alive until every chunk is done).
  const job_fn* job_ = nullptr;
  int64_t job_n_ = 0;
  int64_t chunk_ = 1;     // chunk jobs: indices per chunk
  int64_t n_chunks_ = 0;  // chunk jobs: chunks in all

  // generation (bits 33-63) | chunk job (bit 32) | chunks not yet taken (bits 0-31). A new generation per job;
  // workers wait for it to change; chunks are taken by decrementing the low bits (chunk c = the count before - 1).
  std::atomic<uint64_t> ticket_{0};
  std::atomic<int> remaining_{0};         // split jobs: workers that have not finished their range
  std::atomic<int64_t> chunks_done_{0};   // chunk jobs: chunks finished
  std::atomic<int> busy_{0};              // open busy_scopes
  bool stop_ = false;                     // guarded by mu_

  std::mutex mu_;                   // guards stop_ and the sleeps below
  std::condition_variable wake_cv_;  // workers sleep here waiting for a new generation
  std::condition_variable done_cv_;  // the caller sleeps here waiting for its job to finish
};

}  // namespace lime
