// thread_pool: persistent workers, a generation counter to hand out jobs, brief spinning then condition-variable
// sleeps on both sides (workers waiting for work, the caller waiting for the last worker).
#include "runtime/thread_pool.h"

#include <unistd.h>

#include <chrono>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif

namespace lime {

namespace {

// How long a waiting thread polls before it goes to sleep: briefly when the pool is idle (it may share 2 cores
// with other processes), longer inside a busy_scope, where the next loop of the same forward pass is due within
// microseconds and a sleep would cost a futex wake-up.
constexpr std::chrono::microseconds k_spin_time{8};
constexpr std::chrono::microseconds k_busy_spin_time{500};
constexpr int k_polls_per_clock_read = 32;

// ticket_'s fields (thread_pool.h): generation in bits 33-63, the chunk-job flag in bit 32, chunks left below.
constexpr uint64_t k_chunk_bit = uint64_t{1} << 32;
constexpr uint64_t k_left_mask = k_chunk_bit - 1;
inline uint64_t generation_of(uint64_t ticket) { return ticket >> 33; }

inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
  _mm_pause();
#elif defined(__aarch64__)
  asm volatile("yield" ::: "memory");
#endif
}

// Polls done() for up to k_spin_time, or k_busy_spin_time while busy() holds; true as soon as done() holds,
// false when the time ran out.
template <class F, class B>
bool spin_until(F done, B busy) {
  const auto start = std::chrono::steady_clock::now();
  for (;;) {
    for (int i = 0; i < k_polls_per_clock_read; ++i) {
      if (done()) return true;
      cpu_relax();
    }
    const auto waited = std::chrono::steady_clock::now() - start;
    if (waited >= k_busy_spin_time || (waited >= k_spin_time && !busy())) return done();
  }
}

}  // namespace

int default_thread_count() {
  long n = ::sysconf(_SC_NPROCESSORS_ONLN);
  return n >= 1 ? static_cast<int>(n) : 1;
}

thread_pool::thread_pool(int n_threads) : n_threads_(n_threads >= 1 ? n_threads : 1) {
  workers_.reserve(static_cast<size_t>(n_threads_ - 1));
  for (int t = 1; t < n_threads_; ++t) workers_.emplace_back([this, t] { worker_main(t); });
}

thread_pool::~thread_pool() {
  {
    std::lock_guard<std::mutex> lk(mu_);
    stop_ = true;
  }
  wake_cv_.notify_all();
  for (auto& w : workers_) w.join();
}

void thread_pool::run_range(int t) {
  const int64_t n = job_n_;
  const int64_t T = n_threads_;
  const int64_t base = n / T;
  const int64_t rem = n % T;
  const int64_t begin = t * base + (t < rem ? t : rem);
  const int64_t end = begin + base + (t < rem ? 1 : 0);
  if (end > begin) (*job_)(begin, end, t);
}

void thread_pool::run_chunks(uint64_t ticket, int t) {
  const uint64_t gen = generation_of(ticket);
  for (;;) {
    if (generation_of(ticket) != gen || (ticket & k_left_mask) == 0) return;
    if (!ticket_.compare_exchange_weak(ticket, ticket - 1, std::memory_order_acq_rel, std::memory_order_acquire)) {
      continue;  // ticket now holds the current value
    }
    // Chunk c is ours: the job cannot end (nor its fields change) before we mark it done.
    const int64_t c = static_cast<int64_t>(ticket & k_left_mask) - 1;
    const int64_t begin = c * chunk_;
    const int64_t end = begin + chunk_ < job_n_ ? begin + chunk_ : job_n_;
    const int64_t n_chunks = n_chunks_;
    (*job_)(begin, end, t);
    // Nothing of the job may be touched after this increment: the caller may return and destroy it.
    if (chunks_done_.fetch_add(1, std::memory_order_acq_rel) + 1 == n_chunks) {
      std::lock_guard<std::mutex> lk(mu_);
      done_cv_.notify_one();
    }
    ticket = ticket_.load(std::memory_order_acquire);
  }
}

void thread_pool::worker_main(int t) {
  uint64_t seen = 0;  // generation of the last job this worker looked at
  auto is_busy = [this] { return busy(); };
  auto fresh = [&] { return generation_of(ticket_.load(std::memory_order_acquire)) != seen; };
  for (;;) {
    if (!spin_until(fresh, is_busy)) {
      std::unique_lock<std::mutex> lk(mu_);
      wake_cv_.wait(lk, [&] { return stop_ || fresh(); });
      if (stop_) return;
    }
    const uint64_t ticket = ticket_.load(std::memory_order_acquire);
    seen = generation_of(ticket);
    if (ticket & k_chunk_bit) {
      run_chunks(ticket, t);
      continue;
    }
    // A split job waits for every worker, so it is still current and its fields are stable here.
    run_range(t);
    // Nothing of the job may be touched after this decrement: the caller may return and destroy it.
    if (remaining_.fetch_sub(1, std::memory_order_acq_rel) == 1) {
      // Taking the lock orders this notify after a caller's predicate check, so the wake-up cannot be lost.
      std::lock_guard<std::mutex> lk(mu_);
      done_cv_.notify_one();
    }
  }
}

uint64_t thread_pool::publish(bool chunks, uint64_t left) {
  const uint64_t gen = generation_of(ticket_.load(std::memory_order_relaxed)) + 1;
  const uint64_t ticket = (gen << 33) | (chunks ? k_chunk_bit : 0) | left;
  {
    // Stored under the lock so a worker between its predicate check and its sleep cannot miss it.
    std::lock_guard<std::mutex> lk(mu_);
    ticket_.store(ticket, std::memory_order_release);
  }
  wake_cv_.notify_all();
  return ticket;
}

template <class F>
void thread_pool::wait_for_job(F done) {
  if (!spin_until(done, [this] { return busy(); })) {
    std::unique_lock<std::mutex> lk(mu_);
    done_cv_.wait(lk, done);
  }
  job_ = nullptr;
}

void thread_pool::parallel_for(int64_t n, const std::function<void(int64_t, int64_t, int)>& fn) {
  if (n <= 0) return;
  if (n_threads_ == 1) {
    fn(0, n, 0);
    return;
  }
  job_ = &fn;
  job_n_ = n;
  remaining_.store(n_threads_ - 1, std::memory_order_relaxed);
  publish(false, 0);

  run_range(0);

  wait_for_job([&] { return remaining_.load(std::memory_order_acquire) == 0; });
}

void thread_pool::parallel_for_dynamic(int64_t n, int64_t chunk,
                                       const std::function<void(int64_t, int64_t, int)>& fn) {
  if (n <= 0) return;
  if (chunk < 1) chunk = 1;
  const int64_t n_chunks = (n + chunk - 1) / chunk;
  if (n_threads_ == 1 || n_chunks == 1 || n_chunks > static_cast<int64_t>(k_left_mask)) {
    for (int64_t b = 0; b < n; b += chunk) fn(b, b + chunk < n ? b + chunk : n, 0);
    return;
  }
  job_ = &fn;
  job_n_ = n;
  chunk_ = chunk;
  n_chunks_ = n_chunks;
  chunks_done_.store(0, std::memory_order_relaxed);
  run_chunks(publish(true, static_cast<uint64_t>(n_chunks)), 0);

  wait_for_job([&] { return chunks_done_.load(std::memory_order_acquire) == n_chunks; });
}

}  // namespace lime
