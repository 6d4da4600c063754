// Device probes: FMA rate through the roofline benchmark's loop, storage read rate with aligned O_DIRECT reads.
#include "runtime/device_profile.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>

#include "kernels/cpu/isa.h"
#include "runtime/bench.h"
#include "runtime/thread_pool.h"

namespace lime {
namespace {

double read_rate(const std::string& path, uint64_t probe_bytes, bool* direct) {
  struct stat sb {};
  if (stat(path.c_str(), &sb) != 0 || sb.st_size <= 0) return 0;
  constexpr uint64_t align = 4096, chunk = 4ull << 20;
  const uint64_t size = static_cast<uint64_t>(sb.st_size);
  uint64_t n = std::min<uint64_t>(probe_bytes, size) / align * align;
  if (n == 0) return 0;
  const uint64_t start = (size - n) / 2 / align * align;
  int fd = open(path.c_str(), O_RDONLY | O_DIRECT);
  *direct = fd >= 0;
  if (fd < 0) fd = open(path.c_str(), O_RDONLY);
  if (fd < 0) return 0;
  (void)posix_fadvise(fd, static_cast<off_t>(start), static_cast<off_t>(n), POSIX_FADV_DONTNEED);
  void* buf = nullptr;
  if (posix_memalign(&buf, align, chunk) != 0) {
    close(fd);
    return 0;
  }
  const auto t0 = std::chrono::steady_clock::now();
  uint64_t done = 0;
  while (done < n) {
    const uint64_t want = std::min<uint64_t>(chunk, n - done);
    const ssize_t r = pread(fd, buf, want, static_cast<off_t>(start + done));
    if (r <= 0) break;
    done += static_cast<uint64_t>(r);
  }
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::free(buf);
  close(fd);
  return done > 0 && s > 0 ? static_cast<double>(done) / s : 0;
}

}  // namespace

device_profile measure_device_profile(const std::string& path, int n_threads, uint64_t probe_bytes) {
  device_profile p;
  thread_pool pool(n_threads > 0 ? n_threads : default_thread_count());
  p.compute_flops = bench_fma_peak(pool, cpu::isa_best(), 1) * 1e9;
  p.storage_bytes_s = read_rate(path, probe_bytes, &p.direct_io);
  return p;
}

}  // namespace lime
