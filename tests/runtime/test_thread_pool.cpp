// Tests for runtime/thread_pool: range splitting, dynamic chunks, coverage, the caller as thread 0, a late
// thread, repeated use, idle cost.
#include <gtest/gtest.h>
#include <time.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <mutex>
#include <thread>
#include <vector>

#include "runtime/thread_pool.h"

namespace lime {
namespace {

struct range_seen {
  int64_t begin = -1, end = -1;
  int calls = 0;
  std::thread::id tid;
};

// Runs one parallel_for over [0, n) and checks the ranges: contiguous, in thread order, sizes n/T (+1 for the
// first n%T threads), every index exactly once, empty ranges never called, thread 0 on the caller.
void check_split(thread_pool& pool, int64_t n) {
  const int T = pool.n_threads();
  std::vector<range_seen> seen(static_cast<size_t>(T));
  std::vector<std::atomic<int>> hits(static_cast<size_t>(n > 0 ? n : 1));
  for (auto& h : hits) h.store(0);
  std::atomic<int64_t> sum{0};
  pool.parallel_for(n, [&](int64_t b, int64_t e, int t) {
    ASSERT_GE(t, 0);
    ASSERT_LT(t, T);
    range_seen& r = seen[static_cast<size_t>(t)];
    r.begin = b;
    r.end = e;
    r.calls++;
    r.tid = std::this_thread::get_id();
    int64_t local = 0;
    for (int64_t i = b; i < e; ++i) {
      hits[static_cast<size_t>(i)].fetch_add(1);
      local += i;
    }
    sum.fetch_add(local);
  });
  EXPECT_EQ(sum.load(), n > 0 ? n * (n - 1) / 2 : 0) << "n=" << n << " T=" << T;
  for (int64_t i = 0; i < n; ++i) EXPECT_EQ(hits[static_cast<size_t>(i)].load(), 1) << "index " << i;
  int64_t next = 0;
  for (int t = 0; t < T; ++t) {
    const int64_t want = n > 0 ? n / T + (t < n % T ? 1 : 0) : 0;
    const range_seen& r = seen[static_cast<size_t>(t)];
    if (want == 0) {
      EXPECT_EQ(r.calls, 0) << "empty range of thread " << t << " was called";
      continue;
    }
    EXPECT_EQ(r.calls, 1);
    EXPECT_EQ(r.begin, next) << "thread " << t;
    EXPECT_EQ(r.end - r.begin, want) << "thread " << t;
    next = r.end;
  }
  EXPECT_EQ(next, n > 0 ? n : 0);
  if (n > 0) {
    EXPECT_EQ(seen[0].tid, std::this_thread::get_id()) << "the caller must run range 0";
  }
  if (T > 1 && n >= T) {
    for (int t = 1; t < T; ++t) EXPECT_NE(seen[static_cast<size_t>(t)].tid, std::this_thread::get_id());
  }
}

TEST(thread_pool, ranges_cover_every_index_once) {
  for (int T : {1, 2, 3, 4, 7}) {
    thread_pool pool(T);
    ASSERT_EQ(pool.n_threads(), T);
    for (int64_t n : {0, 1, 2, 3, 5, 6, 7, 8, 100, 1001}) check_split(pool, n);
  }
}

TEST(thread_pool, fewer_items_than_threads) {
  thread_pool pool(8);
  for (int64_t n = 1; n < 8; ++n) check_split(pool, n);
}

TEST(thread_pool, non_positive_sizes_are_clamped) {
  thread_pool pool(0);
  EXPECT_EQ(pool.n_threads(), 1);
  int calls = 0;
  pool.parallel_for(10, [&](int64_t b, int64_t e, int t) {
    EXPECT_EQ(b, 0);
    EXPECT_EQ(e, 10);
    EXPECT_EQ(t, 0);
    ++calls;
  });
  EXPECT_EQ(calls, 1);
  pool.parallel_for(-5, [&](int64_t, int64_t, int) { ++calls; });
  EXPECT_EQ(calls, 1);
}

TEST(thread_pool, many_calls_in_a_row) {
  thread_pool pool(4);
  std::vector<int64_t> partial(4, 0);
  int64_t expect = 0;
  for (int call = 0; call < 10000; ++call) {
    const int64_t n = 1 + call % 13;
    pool.parallel_for(n, [&](int64_t b, int64_t e, int t) {
      for (int64_t i = b; i < e; ++i) partial[static_cast<size_t>(t)] += i + call;  // one writer per slot
    });
    expect += n * (n - 1) / 2 + n * call;
  }
  int64_t got = 0;
  for (int64_t x : partial) got += x;
  EXPECT_EQ(got, expect);
}

TEST(thread_pool, results_are_visible_after_return) {
  thread_pool pool(3);
  std::vector<int> out(300, 0);  // plain writes from workers, read by the caller after parallel_for returns
  for (int round = 1; round <= 200; ++round) {
    pool.parallel_for(300, [&](int64_t b, int64_t e, int) {
      for (int64_t i = b; i < e; ++i) out[static_cast<size_t>(i)] = round * 1000 + static_cast<int>(i);
    });
    for (int i = 0; i < 300; ++i) ASSERT_EQ(out[static_cast<size_t>(i)], round * 1000 + i);
  }
}

// parallel_for_dynamic: every chunk exactly once, chunk-aligned and chunk-sized (the last one shorter), thread
// indices in range.
void check_chunks(thread_pool& pool, int64_t n, int64_t chunk) {
  const int64_t c = chunk < 1 ? 1 : chunk;
  const int64_t n_chunks = n > 0 ? (n + c - 1) / c : 0;
  std::vector<std::atomic<int>> hits(static_cast<size_t>(n > 0 ? n : 1));
  for (auto& h : hits) h.store(0);
  std::atomic<int64_t> calls{0};
  std::atomic<bool> bad{false};
  pool.parallel_for_dynamic(n, chunk, [&](int64_t b, int64_t e, int t) {
    if (t < 0 || t >= pool.n_threads() || b % c != 0 || e - b != std::min(c, n - b)) bad = true;
    calls.fetch_add(1);
    for (int64_t i = b; i < e; ++i) hits[static_cast<size_t>(i)].fetch_add(1);
  });
  EXPECT_FALSE(bad.load()) << "n=" << n << " chunk=" << chunk;
  EXPECT_EQ(calls.load(), n_chunks) << "n=" << n << " chunk=" << chunk;
  for (int64_t i = 0; i < n; ++i) ASSERT_EQ(hits[static_cast<size_t>(i)].load(), 1) << "index " << i;
}

TEST(thread_pool, dynamic_chunks_cover_every_index_once) {
  for (int T : {1, 2, 3, 4, 7}) {
    thread_pool pool(T);
    for (int64_t n : {0, 1, 5, 100, 1001}) {
      for (int64_t chunk : {-3, 1, 3, 64, 2000}) check_chunks(pool, n, chunk);
    }
  }
}

// A worker stuck in its first chunk (as a descheduled thread would be) does not hold the others up: the caller
// takes every other chunk, and only then is the stuck one released. With ranges fixed per thread this would wait
// forever (the test gives up after 20 s and fails).
TEST(thread_pool, a_late_thread_leaves_its_share_to_the_others) {
  thread_pool pool(2);
  const int64_t n_chunks = 64;
  std::atomic<int64_t> done_by_caller{0}, done_by_worker{0};
  std::atomic<bool> worker_held{false}, gave_up{false};
  pool.parallel_for_dynamic(n_chunks, 1, [&](int64_t, int64_t, int t) {
    if (t == 0) {
      std::this_thread::sleep_for(std::chrono::milliseconds(1));  // leaves the worker time to wake and take one
      done_by_caller.fetch_add(1);
      return;
    }
    if (!worker_held.exchange(true)) {
      const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
      while (done_by_caller.load() + done_by_worker.load() < n_chunks - 1) {
        if (std::chrono::steady_clock::now() > deadline) {
          gave_up = true;
          break;
        }
        std::this_thread::sleep_for(std::chrono::microseconds(100));
      }
    }
    done_by_worker.fetch_add(1);
  });
  EXPECT_FALSE(gave_up.load()) << "the caller did not take the stuck worker's share";
  EXPECT_EQ(done_by_caller.load() + done_by_worker.load(), n_chunks);
  ASSERT_TRUE(worker_held.load()) << "the worker never took a chunk in 64 ms";
  EXPECT_EQ(done_by_worker.load(), 1);  // it never got a second chunk
}

// Split and chunk jobs back to back, many times, tiny ones included (workers that wake up after every chunk is
// taken): each job's result is complete when it returns.
TEST(thread_pool, split_and_chunk_jobs_alternate) {
  thread_pool pool(3);
  std::vector<int> out(97, 0);
  for (int round = 1; round <= 5000; ++round) {
    const int64_t n = 1 + round % 97;
    auto fill = [&](int64_t b, int64_t e, int) {
      for (int64_t i = b; i < e; ++i) out[static_cast<size_t>(i)] = round;
    };
    if (round % 2) pool.parallel_for(n, fill);
    else pool.parallel_for_dynamic(n, 1 + round % 5, fill);
    for (int64_t i = 0; i < n; ++i) ASSERT_EQ(out[static_cast<size_t>(i)], round) << "round " << round;
  }
}

double process_cpu_seconds() {
  timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + 1e-9 * static_cast<double>(ts.tv_nsec);
}

TEST(thread_pool, idle_pool_does_not_burn_cpu) {
  thread_pool pool(4);
  std::atomic<int64_t> sink{0};
  for (int i = 0; i < 100; ++i) {
    pool.parallel_for(64, [&](int64_t b, int64_t e, int) { sink.fetch_add(e - b); });
    pool.parallel_for_dynamic(64, 4, [&](int64_t b, int64_t e, int) { sink.fetch_add(e - b); });
  }
  ASSERT_EQ(sink.load(), 12800);
  const double cpu0 = process_cpu_seconds();
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  const double idle_cpu = process_cpu_seconds() - cpu0;
  EXPECT_LT(idle_cpu, 0.050) << "an idle pool used " << idle_cpu * 1e3 << " ms of CPU in 200 ms";
  // Still works after sleeping.
  check_split(pool, 10);
}

TEST(thread_pool, default_thread_count_is_positive) {
  const int n = default_thread_count();
  EXPECT_GE(n, 1);
  EXPECT_LE(n, 4096);
}

}  // namespace
}  // namespace lime
