// lime-bench offload's baseline: the model run through its plain mapped file (what llama.cpp does with mmap) in a
// child process confined to a fresh memory cgroup (v1 or v2) capped at its own footprint plus the budget, so the
// page cache that holds the weights can keep only `budget` bytes of them. Skipped with a note where no memory
// cgroup can be created (not root, no controller).
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <functional>
#include <sstream>
#include <string>
#include <thread>

#include "runtime/bench_offload.h"
#include "runtime/model.h"

namespace lime {

namespace {

constexpr unsigned k_child_seconds = 600;  // a thrashing baseline is stopped (SIGALRM) after this long

struct cgroup {
  std::string dir, limit_file, usage_file;
};

bool write_text(const std::string& path, const std::string& text) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0) return false;
  const bool ok = ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size());
  ::close(fd);
  return ok;
}

uint64_t read_u64(const std::string& path) {
  std::ifstream f(path);
  uint64_t v = 0;
  f >> v;
  return v;
}

bool file_has_word(const std::string& path, const std::string& word) {
  std::ifstream f(path);
  std::string w;
  while (f >> w)
    if (w == word) return true;
  return false;
}

// A fresh memory cgroup (v1 memory controller, else v2 with the memory controller), or an empty dir and a reason.
cgroup cgroup_make(const std::string& name, std::string* why) {
  cgroup c;
  const std::string v1 = "/sys/fs/cgroup/memory";
  struct stat st;
  if (::stat((v1 + "/memory.limit_in_bytes").c_str(), &st) == 0) {
    c.dir = v1 + "/" + name;
    c.limit_file = c.dir + "/memory.limit_in_bytes";
    c.usage_file = c.dir + "/memory.usage_in_bytes";
  } else if (file_has_word("/sys/fs/cgroup/cgroup.controllers", "memory")) {
    if (!file_has_word("/sys/fs/cgroup/cgroup.subtree_control", "memory")) (void)write_text("/sys/fs/cgroup/cgroup.subtree_control", "+memory");
    c.dir = "/sys/fs/cgroup/" + name;
    c.limit_file = c.dir + "/memory.max";
    c.usage_file = c.dir + "/memory.current";
  } else {
    *why = "no memory cgroup controller";
    return {};
  }
  if (::mkdir(c.dir.c_str(), 0755) != 0 && errno != EEXIST) {
    *why = "cannot create a memory cgroup (" + std::string(std::strerror(errno)) + "; needs root)";
    return {};
  }
  if (::stat(c.limit_file.c_str(), &st) != 0) {
    ::rmdir(c.dir.c_str());
    *why = "the new cgroup has no memory limit file";
    return {};
  }
  return c;
}

void cgroup_remove(const cgroup& c) {
  for (int i = 0; i < 100 && ::rmdir(c.dir.c_str()) != 0 && errno == EBUSY; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
}

uint64_t proc_read_bytes() {
  std::ifstream f("/proc/self/io");
  std::string line;
  while (std::getline(f, line))
    if (line.rfind("read_bytes:", 0) == 0) return std::stoull(line.substr(11));
  return 0;
}

void drop_file_cache(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return;
  (void)::posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
  ::close(fd);
}

// The child: joins the cgroup, loads the model (mapped, untouched), sets the cap, drops the cache, runs.
[[noreturn]] void child_main(const cgroup& c, int wfd, const std::string& path, uint64_t budget, int n_threads, int32_t n_gen) {
  ::alarm(k_child_seconds);
  auto reply = [&](const std::string& s) {
    (void)::write(wfd, s.data(), s.size());
    ::_exit(0);
  };
  if (!write_text(c.dir + "/cgroup.procs", std::to_string(::getpid()))) reply("err cannot join the cgroup\n");
  auto m = model::load(path);
  if (!m) reply("err " + m.err().message + "\n");
  uint64_t read0 = 0;
  std::string fail;
  decode_hooks hooks;
  hooks.before_warmup = [&] {
    const uint64_t usage = read_u64(c.usage_file);
    if (!write_text(c.limit_file, std::to_string(usage + budget))) fail = "cannot set the cgroup limit";
    drop_file_cache(path);
  };
  hooks.after_warmup = [&] { read0 = proc_read_bytes(); };
  auto secs = bench_offload_decode(m.value(), nullptr, n_threads, n_gen, nullptr, &hooks);
  if (!fail.empty()) reply("err " + fail + "\n");
  if (!secs) reply("err " + secs.err().message + "\n");
  const double per_token = static_cast<double>(proc_read_bytes() - read0) / n_gen;
  char buf[96];
  std::snprintf(buf, sizeof(buf), "ok %.6f %.1f\n", static_cast<double>(n_gen) / secs.value(), per_token);
  reply(buf);
  ::_exit(0);  // not reached: reply exits
}

}  // namespace

mmap_run bench_offload_mmap(const std::string& path, uint64_t budget, int n_threads, int32_t n_gen) {
  mmap_run r;
  std::string why;
  const cgroup c = cgroup_make("lime-bench-" + std::to_string(::getpid()), &why);
  if (c.dir.empty()) {
    r.note = why;
    return r;
  }
  int fds[2];
  if (::pipe(fds) != 0) {
    cgroup_remove(c);
    r.note = "pipe failed";
    return r;
  }
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::close(fds[0]);
    child_main(c, fds[1], path, budget, n_threads, n_gen);
  }
  ::close(fds[1]);
  std::string text;
  char buf[256];
  for (ssize_t n; pid > 0 && (n = ::read(fds[0], buf, sizeof(buf))) != 0;) {
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) break;
    text.append(buf, static_cast<size_t>(n));
  }
  ::close(fds[0]);
  int wst = 0;
  if (pid > 0) (void)::waitpid(pid, &wst, 0);
  cgroup_remove(c);
  if (pid < 0) {
    r.note = "fork failed";
  } else if (WIFSIGNALED(wst)) {
    r.note = WTERMSIG(wst) == SIGKILL ? "OOM-killed under the cap" : WTERMSIG(wst) == SIGALRM ? "stopped after " + std::to_string(k_child_seconds) + " s"
                                                                                              : "killed by signal " + std::to_string(WTERMSIG(wst));
  } else if (text.rfind("ok ", 0) == 0) {
    std::istringstream is(text.substr(3));
    is >> r.tokens_per_s >> r.read_bytes_per_token;
    r.ran = true;
  } else {
    r.note = text.empty() ? "no result" : text.substr(text.rfind("err ", 0) == 0 ? 4 : 0);
    while (!r.note.empty() && r.note.back() == '\n') r.note.pop_back();
  }
  return r;
}

}  // namespace lime
