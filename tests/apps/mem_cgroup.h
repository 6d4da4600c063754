// A memory cgroup for tests (v1: /sys/fs/cgroup/memory/NAME, v2: /sys/fs/cgroup/NAME): a hard cap, the measured
// peak and pressure counters, and a program run inside it (fork, join the cgroup, exec) with its rusage. The cgroup
// is removed when the object goes away, always (its processes have been waited for by then).
#pragma once
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "tests/apps/process.h"

namespace lime::test {

inline bool cg_exists(const std::string& p) {
  struct stat st;
  return ::stat(p.c_str(), &st) == 0;
}

inline bool cg_write(const std::string& path, const std::string& text) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0) return false;
  const bool ok = ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size());
  ::close(fd);
  return ok;
}

inline std::string cg_read(const std::string& path) {
  std::ifstream f(path);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

// "key value" lines (memory.events, memory.oom_control, memory.stat): the value of key, or 0.
inline uint64_t cg_key(const std::string& text, const std::string& key) {
  std::istringstream is(text);
  std::string k;
  uint64_t v = 0;
  while (is >> k >> v)
    if (k == key) return v;
  return 0;
}

// How a program ended inside the cgroup.
struct cg_run {
  run_result r;            // exit code (128 + signal when killed), stdout, stderr
  uint64_t max_rss = 0;    // bytes: the child's peak resident set (rusage ru_maxrss)
  uint64_t read_bytes = 0; // bytes the child had to fetch from storage (ru_inblock x 512: page cache misses + O_DIRECT)
  uint64_t major_faults = 0;
  double seconds = 0;
};

class mem_cgroup {
 public:
  // A fresh cgroup capped at limit bytes, or nullptr with *why set (not root, no memory controller, not writable).
  static std::unique_ptr<mem_cgroup> create(uint64_t limit, std::string* why) {
    if (::geteuid() != 0) {
      *why = "needs root to create a memory cgroup";
      return nullptr;
    }
    static std::atomic<int> counter{0};
    const std::string name = "lime_test_mb_" + std::to_string(::getpid()) + "_" + std::to_string(counter++);
    std::unique_ptr<mem_cgroup> g(new mem_cgroup());
    if (cg_exists("/sys/fs/cgroup/cgroup.controllers")) {
      g->v2_ = true;
      if (cg_read("/sys/fs/cgroup/cgroup.subtree_control").find("memory") == std::string::npos) {
        *why = "cgroup v2 without the memory controller enabled at the root (cgroup.subtree_control)";
        return nullptr;
      }
      g->dir_ = "/sys/fs/cgroup/" + name;
    } else if (cg_exists("/sys/fs/cgroup/memory/memory.limit_in_bytes")) {
      g->dir_ = "/sys/fs/cgroup/memory/" + name;
    } else {
      *why = "no memory cgroup (neither /sys/fs/cgroup/cgroup.controllers nor /sys/fs/cgroup/memory)";
      return nullptr;
    }
    if (::mkdir(g->dir_.c_str(), 0755) != 0) {
      *why = "cannot create " + g->dir_ + ": " + std::strerror(errno);
      g->dir_.clear();
      return nullptr;
    }
    g->limit_ = limit;
    const std::string lim = std::to_string(limit);
    bool ok = g->v2_ ? cg_write(g->dir_ + "/memory.max", lim) : cg_write(g->dir_ + "/memory.limit_in_bytes", lim);
    if (g->v2_ && cg_exists(g->dir_ + "/memory.swap.max")) ok = ok && cg_write(g->dir_ + "/memory.swap.max", "0");
    if (!ok) {
      *why = "cannot set the memory limit in " + g->dir_;
      return nullptr;  // the destructor removes the folder
    }
    return g;
  }

  ~mem_cgroup() {
    if (dir_.empty()) return;
    // A cgroup whose last process just exited may report busy for a moment.
    for (int i = 0; i < 50 && ::rmdir(dir_.c_str()) != 0 && errno == EBUSY; ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  mem_cgroup(const mem_cgroup&) = delete;
  mem_cgroup& operator=(const mem_cgroup&) = delete;

  bool v2() const { return v2_; }
  uint64_t limit() const { return limit_; }
  const std::string& dir() const { return dir_; }
  // Highest charge seen (v1 memory.max_usage_in_bytes, v2 memory.peak; 0 where the kernel has neither).
  uint64_t peak() const {
    std::string s = cg_read(dir_ + (v2_ ? "/memory.peak" : "/memory.max_usage_in_bytes"));
    return s.empty() ? 0 : std::stoull(s);
  }
  // Times the charge hit the cap (v1 memory.failcnt, v2 memory.events "max").
  uint64_t hit_cap() const {
    if (v2_) return cg_key(cg_read(dir_ + "/memory.events"), "max");
    std::string s = cg_read(dir_ + "/memory.failcnt");
    return s.empty() ? 0 : std::stoull(s);
  }
  // Processes the OOM killer killed here (v1 memory.oom_control "oom_kill", v2 memory.events "oom_kill").
  uint64_t oom_kills() const {
    return cg_key(cg_read(dir_ + (v2_ ? "/memory.events" : "/memory.oom_control")), "oom_kill");
  }

  // Runs argv inside this cgroup (the child joins it before exec) and waits; killed after timeout_s.
  cg_run run(const std::vector<std::string>& argv, int timeout_s = 300) const {
    cg_run out;
    const std::string procs = dir_ + "/cgroup.procs";
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    int out_p[2], err_p[2];
    if (::pipe(out_p) || ::pipe(err_p)) return out;
    const auto t0 = std::chrono::steady_clock::now();
    pid_t pid = ::fork();
    if (pid == 0) {
      // Only async-signal-safe calls between fork and exec: "0" names the writing process.
      int fd = ::open(procs.c_str(), O_WRONLY);
      if (fd < 0 || ::write(fd, "0", 1) != 1) _exit(126);
      ::close(fd);
      ::dup2(out_p[1], 1);
      ::dup2(err_p[1], 2);
      ::close(out_p[0]);
      ::close(err_p[0]);
      int devnull = ::open("/dev/null", O_RDONLY);
      if (devnull >= 0) ::dup2(devnull, 0);
      ::execv(args[0], args.data());
      _exit(127);
    }
    ::close(out_p[1]);
    ::close(err_p[1]);
    bool out_open = true, err_open = true;
    const auto deadline = t0 + std::chrono::seconds(timeout_s);
    while (out_open || err_open) {
      pollfd fds[2] = {{out_p[0], POLLIN, 0}, {err_p[0], POLLIN, 0}};
      if (::poll(fds, 2, 200) > 0) {
        if (out_open && (fds[0].revents & (POLLIN | POLLHUP))) drain(out_p[0], &out.r.out, &out_open);
        if (err_open && (fds[1].revents & (POLLIN | POLLHUP))) drain(err_p[0], &out.r.err, &err_open);
      }
      if (std::chrono::steady_clock::now() > deadline) {
        ::kill(pid, SIGKILL);
        break;
      }
    }
    ::close(out_p[0]);
    ::close(err_p[0]);
    int st = 0;
    rusage ru{};
    ::wait4(pid, &st, 0, &ru);
    out.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    out.r.exit_code = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    out.max_rss = static_cast<uint64_t>(ru.ru_maxrss) * 1024;
    out.read_bytes = static_cast<uint64_t>(ru.ru_inblock) * 512;
    out.major_faults = static_cast<uint64_t>(ru.ru_majflt);
    return out;
  }

 private:
  mem_cgroup() = default;
  std::string dir_;
  bool v2_ = false;
  uint64_t limit_ = 0;
};

}  // namespace lime::test
