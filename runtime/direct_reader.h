// Aligned reads of one file on a small pool of I/O threads, with O_DIRECT so the page cache never holds the bytes
// (falls back to pread + posix_fadvise(DONTNEED) where O_DIRECT is refused). Never decides what to read or where
// it goes: callers hand it aligned requests into their own aligned buffers and wait on the batch.
#pragma once
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "runtime/result.h"

namespace lime {

enum class io_mode : uint8_t {
  direct,            // O_DIRECT: bytes go from the device to the caller's buffer, the page cache is bypassed
  buffered_dontneed  // pread through the page cache, each range dropped from it (POSIX_FADV_DONTNEED) after reading
};
const char* io_mode_name(io_mode m);  // "O_DIRECT", "pread+DONTNEED"

struct direct_reader_config {
  int32_t n_threads = 2;             // I/O threads (2 keeps two requests in flight: enough for one NVMe queue here)
  uint64_t chunk_bytes = 2ull << 20; // requests are split into reads of at most this many bytes (a multiple of align)
  uint32_t align = 4096;             // offsets, lengths and buffer addresses of every read (>= the device's 512)
  bool try_direct = true;            // false: use the buffered fallback from the start (tests, odd filesystems)
};

// One read of [file_off, file_off + len) into dst. file_off, len and dst are multiples of align. `need` bytes
// (<= len) must arrive; fewer (the file ends earlier) is an io_error. Bytes past the end of the file are left as is.
struct read_request {
  uint64_t file_off = 0;
  uint64_t len = 0;
  uint64_t need = 0;
  uint8_t* dst = nullptr;
};

// Completion of a submitted group of requests. Shared by the submitter and the I/O threads.
class read_batch {
 public:
  bool done() const { return pending_.load(std::memory_order_acquire) == 0; }
  // Blocks until every read finished (or was skipped after cancel); returns the first error.
  status wait();

 private:
  friend class direct_reader;
  std::atomic<int64_t> pending_{0};
  std::atomic<bool> cancelled_{false};
  std::mutex mu_;
  std::condition_variable cv_;
  bool has_error_ = false;  // guarded by mu_
  error err_;               // guarded by mu_
  std::function<void()> on_done_;  // runs on the I/O thread that finishes the batch (after done() turns true)
};

class direct_reader {
 public:
  // Opens `path` for reading and starts the I/O threads. A probe read decides the mode: O_DIRECT when the open and
  // an aligned read succeed, else the buffered fallback (mode_note() says why). Errors: io_error (cannot open),
  // invalid_argument (align not a power of two >= 512, chunk not a multiple of align).
  static result<std::unique_ptr<direct_reader>> open(const std::string& path, const direct_reader_config& cfg);
  ~direct_reader();  // skips queued reads, joins the threads
  direct_reader(const direct_reader&) = delete;
  direct_reader& operator=(const direct_reader&) = delete;

  // Queues the requests (split into chunks, in order; `urgent` puts them ahead of everything queued) and returns
  // the batch to wait on. on_done runs on an I/O thread once the batch completes. Any thread.
  std::shared_ptr<read_batch> submit(const std::vector<read_request>& reqs, bool urgent = false,
                                     std::function<void()> on_done = {});
  // Chunks of the batch not started yet are skipped (the batch still completes, without error). Any thread.
  static void cancel(read_batch& b) { b.cancelled_.store(true, std::memory_order_release); }

  io_mode mode() const { return mode_; }
  const std::string& mode_note() const { return note_; }  // why the fallback is used; empty for O_DIRECT
  const std::string& path() const { return path_; }
  uint64_t file_size() const { return file_size_; }
  uint32_t align() const { return cfg_.align; }

  // Totals since open (any thread).
  uint64_t bytes_read() const { return bytes_read_.load(std::memory_order_relaxed); }
  uint64_t n_reads() const { return n_reads_.load(std::memory_order_relaxed); }
  double read_seconds() const;  // summed over I/O threads (two busy threads count twice)

 private:
  direct_reader() = default;
  struct chunk {
    std::shared_ptr<read_batch> batch;
    read_request r;
  };
  void worker();
  status read_chunk(const read_request& r);
  void finish(const std::shared_ptr<read_batch>& b, const status& st);

  direct_reader_config cfg_;
  std::string path_;
  std::string note_;
  io_mode mode_ = io_mode::direct;
  int fd_ = -1;
  uint64_t file_size_ = 0;
  std::mutex mu_;  // guards queue_ and stop_
  std::condition_variable cv_;
  std::deque<chunk> queue_;
  bool stop_ = false;
  std::vector<std::thread> threads_;
  std::atomic<uint64_t> bytes_read_{0}, n_reads_{0}, read_ns_{0};
};

}  // namespace lime
