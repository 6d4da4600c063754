// Model identity: XXH64 of the GGUF header bytes + file size (content id), and XXH64 of every byte (full hash),
// read with pread in 8 MiB chunks so the file need not fit in memory.
#include "runtime/model_id.h"

#include <fcntl.h>
#include <unistd.h>
#include <xxhash.h>

#include <cerrno>
#include <cstring>
#include <memory>
#include <vector>

namespace lime {
namespace {

constexpr size_t k_chunk = 8u << 20;  // bytes per pread

struct xxh_state_deleter {
  void operator()(XXH64_state_t* s) const { XXH64_freeState(s); }
};
using xxh_state = std::unique_ptr<XXH64_state_t, xxh_state_deleter>;

struct fd_closer {
  int fd;
  ~fd_closer() { if (fd >= 0) ::close(fd); }
};

}  // namespace

uint64_t model_content_id(const gguf_file& f) {
  xxh_state st(XXH64_createState());
  XXH64_reset(st.get(), 0);
  const uint64_t size = f.file_size();
  const uint64_t header = f.data_offset() < size ? f.data_offset() : size;
  if (header > 0) XXH64_update(st.get(), f.file_data(), static_cast<size_t>(header));
  uint8_t le[8];
  for (int i = 0; i < 8; ++i) le[i] = static_cast<uint8_t>(size >> (8 * i));
  XXH64_update(st.get(), le, sizeof(le));
  const uint64_t h = XXH64_digest(st.get());
  return h == 0 ? 1 : h;  // 0 is kept for "no id"
}

result<uint64_t> model_full_hash(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return make_error(errc::io_error, "model hash: cannot open '" + path + "': " + std::strerror(errno));
  fd_closer closer{fd};
#ifdef POSIX_FADV_SEQUENTIAL
  (void)::posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
#endif
  xxh_state st(XXH64_createState());
  XXH64_reset(st.get(), 0);
  std::vector<uint8_t> buf(k_chunk);
  off_t off = 0;
  for (;;) {
    const ssize_t got = ::pread(fd, buf.data(), buf.size(), off);
    if (got < 0) {
      if (errno == EINTR) continue;
      return make_error(errc::io_error, "model hash: read of '" + path + "' failed at byte " + std::to_string(off) + ": " +
                                            std::strerror(errno));
    }
    if (got == 0) break;
    XXH64_update(st.get(), buf.data(), static_cast<size_t>(got));
    off += got;
  }
  return static_cast<uint64_t>(XXH64_digest(st.get()));
}

}  // namespace lime
