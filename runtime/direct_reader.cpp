// direct_reader: the I/O threads, the O_DIRECT probe and the buffered fallback, short-read detection.
#include "runtime/direct_reader.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>

namespace lime {

const char* io_mode_name(io_mode m) { return m == io_mode::direct ? "O_DIRECT" : "pread+DONTNEED"; }

status read_batch::wait() {
  std::unique_lock<std::mutex> lk(mu_);
  cv_.wait(lk, [&] { return pending_.load(std::memory_order_acquire) == 0; });
  if (has_error_) return err_;
  return {};
}

result<std::unique_ptr<direct_reader>> direct_reader::open(const std::string& path, const direct_reader_config& cfg) {
  if (cfg.align < 512 || (cfg.align & (cfg.align - 1)) != 0)
    return make_error(errc::invalid_argument, "direct_reader: align must be a power of two >= 512");
  if (cfg.chunk_bytes < cfg.align || cfg.chunk_bytes % cfg.align != 0)
    return make_error(errc::invalid_argument, "direct_reader: chunk size must be a multiple of the alignment");
  std::unique_ptr<direct_reader> r(new direct_reader());
  r->cfg_ = cfg;
  if (r->cfg_.n_threads < 1) r->cfg_.n_threads = 1;
  r->path_ = path;
  int fd = -1;
  if (cfg.try_direct) {
    fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_DIRECT);
    if (fd < 0 && errno != EINVAL)
      return make_error(errc::io_error, "direct_reader: cannot open '" + path + "': " + std::strerror(errno));
    if (fd < 0) {
      r->note_ = "the filesystem refused O_DIRECT at open";
    } else {
      // Some filesystems accept the flag at open and refuse the reads: probe one aligned block.
      void* probe = std::aligned_alloc(cfg.align, cfg.align);
      ssize_t n = probe ? ::pread(fd, probe, cfg.align, 0) : -1;
      const int e = errno;
      std::free(probe);
      if (n < 0) {
        r->note_ = std::string("an O_DIRECT read failed: ") + std::strerror(e);
        ::close(fd);
        fd = -1;
      }
    }
  } else {
    r->note_ = "O_DIRECT disabled by configuration";
  }
  if (fd < 0) {
    fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return make_error(errc::io_error, "direct_reader: cannot open '" + path + "': " + std::strerror(errno));
    r->mode_ = io_mode::buffered_dontneed;
  }
  r->fd_ = fd;
  struct stat st;
  if (::fstat(fd, &st) != 0) return make_error(errc::io_error, "direct_reader: cannot stat '" + path + "': " + std::strerror(errno));
  r->file_size_ = static_cast<uint64_t>(st.st_size);
  for (int32_t i = 0; i < r->cfg_.n_threads; ++i) r->threads_.emplace_back([p = r.get()] { p->worker(); });
  return r;
}

direct_reader::~direct_reader() {
  {
    std::lock_guard<std::mutex> lk(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  for (std::thread& t : threads_) t.join();
  // Chunks still queued belong to batches someone may wait on: complete them as skipped.
  for (chunk& c : queue_) finish(c.batch, {});
  queue_.clear();
  if (fd_ >= 0) ::close(fd_);
}

std::shared_ptr<read_batch> direct_reader::submit(const std::vector<read_request>& reqs, bool urgent,
                                                  std::function<void()> on_done) {
  auto b = std::make_shared<read_batch>();
  b->on_done_ = std::move(on_done);
  std::vector<chunk> chunks;
  for (const read_request& r : reqs) {
    for (uint64_t off = 0; off < r.len; off += cfg_.chunk_bytes) {
      chunk c;
      c.batch = b;
      c.r.file_off = r.file_off + off;
      c.r.len = std::min<uint64_t>(cfg_.chunk_bytes, r.len - off);
      c.r.need = r.need > off ? std::min<uint64_t>(c.r.len, r.need - off) : 0;
      c.r.dst = r.dst + off;
      chunks.push_back(c);
    }
  }
  if (chunks.empty()) {
    if (b->on_done_) b->on_done_();
    return b;
  }
  b->pending_.store(static_cast<int64_t>(chunks.size()), std::memory_order_release);
  {
    std::lock_guard<std::mutex> lk(mu_);
    if (urgent) queue_.insert(queue_.begin(), chunks.begin(), chunks.end());
    else queue_.insert(queue_.end(), chunks.begin(), chunks.end());
  }
  cv_.notify_all();
  return b;
}

double direct_reader::read_seconds() const { return static_cast<double>(read_ns_.load(std::memory_order_relaxed)) * 1e-9; }

void direct_reader::worker() {
  for (;;) {
    chunk c;
    {
      std::unique_lock<std::mutex> lk(mu_);
      cv_.wait(lk, [&] { return stop_ || !queue_.empty(); });
      if (stop_) return;
      c = std::move(queue_.front());
      queue_.pop_front();
    }
    status st;
    if (!c.batch->cancelled_.load(std::memory_order_acquire)) st = read_chunk(c.r);
    finish(c.batch, st);
  }
}

status direct_reader::read_chunk(const read_request& r) {
  const auto t0 = std::chrono::steady_clock::now();
  uint64_t got = 0;
  while (got < r.len) {
    const ssize_t n = ::pread(fd_, r.dst + got, static_cast<size_t>(r.len - got), static_cast<off_t>(r.file_off + got));
    if (n < 0) {
      if (errno == EINTR) continue;
      return make_error(errc::io_error, "weight read: '" + path_ + "' at offset " + std::to_string(r.file_off + got) + ": " +
                                            std::strerror(errno));
    }
    if (n == 0) break;  // end of file
    got += static_cast<uint64_t>(n);
    // A short O_DIRECT read that is not block-sized ends at the end of the file; reading on would be unaligned.
    if (mode_ == io_mode::direct && static_cast<uint64_t>(n) % cfg_.align != 0) break;
  }
  if (mode_ == io_mode::buffered_dontneed)
    (void)::posix_fadvise(fd_, static_cast<off_t>(r.file_off), static_cast<off_t>(r.len), POSIX_FADV_DONTNEED);
  const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() - t0).count();
  read_ns_.fetch_add(static_cast<uint64_t>(ns), std::memory_order_relaxed);
  bytes_read_.fetch_add(got, std::memory_order_relaxed);
  n_reads_.fetch_add(1, std::memory_order_relaxed);
  if (got < r.need)
    return make_error(errc::io_error, "weight read: '" + path_ + "' ends before offset " + std::to_string(r.file_off + r.need) +
                                          " (got " + std::to_string(got) + " of " + std::to_string(r.need) +
                                          " bytes; was the file truncated?)");
  return {};
}

void direct_reader::finish(const std::shared_ptr<read_batch>& b, const status& st) {
  bool last = false;
  {
    std::lock_guard<std::mutex> lk(b->mu_);
    if (!st.ok() && !b->has_error_) {
      b->has_error_ = true;
      b->err_ = st.err();
    }
    last = b->pending_.fetch_sub(1, std::memory_order_acq_rel) == 1;
  }
  if (last) {
    b->cv_.notify_all();
    if (b->on_done_) b->on_done_();
  }
}

}  // namespace lime
