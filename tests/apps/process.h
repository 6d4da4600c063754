// Runs a program for tests: captured stdout/stderr and exit code, or an interactive session on a pty.
#pragma once
#include <fcntl.h>
#include <poll.h>
#include <pty.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <string>
#include <vector>

namespace lime::test {

struct run_result {
  int exit_code = -1;  // 128 + signal when killed
  std::string out, err;
};

inline void drain(int fd, std::string* into, bool* open) {
  char buf[4096];
  ssize_t n = ::read(fd, buf, sizeof(buf));
  if (n > 0) into->append(buf, static_cast<size_t>(n));
  else if (n == 0 || (n < 0 && errno != EINTR && errno != EAGAIN)) *open = false;
}

// Runs argv with `input` on stdin; kills it after timeout_s.
inline run_result run_program(const std::vector<std::string>& argv, const std::string& input = "", int timeout_s = 120) {
  int in_p[2], out_p[2], err_p[2];
  if (pipe(in_p) || pipe(out_p) || pipe(err_p)) return {};
  pid_t pid = fork();
  if (pid == 0) {
    dup2(in_p[0], 0); dup2(out_p[1], 1); dup2(err_p[1], 2);
    close(in_p[1]); close(out_p[0]); close(err_p[0]);
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    execv(args[0], args.data());
    _exit(127);
  }
  close(in_p[0]); close(out_p[1]); close(err_p[1]);
  signal(SIGPIPE, SIG_IGN);
  if (!input.empty()) (void)!write(in_p[1], input.data(), input.size());
  close(in_p[1]);
  run_result r;
  bool out_open = true, err_open = true;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(timeout_s);
  while (out_open || err_open) {
    pollfd fds[2] = {{out_p[0], POLLIN, 0}, {err_p[0], POLLIN, 0}};
    if (poll(fds, 2, 200) > 0) {
      if (out_open && (fds[0].revents & (POLLIN | POLLHUP))) drain(out_p[0], &r.out, &out_open);
      if (err_open && (fds[1].revents & (POLLIN | POLLHUP))) drain(err_p[0], &r.err, &err_open);
    }
    if (std::chrono::steady_clock::now() > deadline) { kill(pid, SIGKILL); break; }
  }
  close(out_p[0]); close(err_p[0]);
  int st = 0;
  waitpid(pid, &st, 0);
  r.exit_code = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
  return r;
}

// An interactive program on a pseudo-terminal.
class pty_session {
 public:
  explicit pty_session(const std::vector<std::string>& argv) {
    pid_ = forkpty(&fd_, nullptr, nullptr, nullptr);
    if (pid_ == 0) {
      std::vector<char*> args;
      for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
      args.push_back(nullptr);
      execv(args[0], args.data());
      _exit(127);
    }
  }
  ~pty_session() {
    if (pid_ > 0 && !exited_) { kill(pid_, SIGKILL); waitpid(pid_, nullptr, 0); }
    if (fd_ >= 0) close(fd_);
  }
  bool started() const { return pid_ > 0 && fd_ >= 0; }
  void send(const std::string& s) { (void)!write(fd_, s.data(), s.size()); }
  // Reads until `needle` appears in the output after position `from` (returns its end, or npos on timeout).
  size_t wait_for(const std::string& needle, size_t from, int timeout_s = 60) {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(timeout_s);
    for (;;) {
      size_t at = seen_.find(needle, from);
      if (at != std::string::npos) return at + needle.size();
      if (std::chrono::steady_clock::now() > deadline) return std::string::npos;
      pollfd p = {fd_, POLLIN, 0};
      if (poll(&p, 1, 100) > 0) {
        char buf[4096];
        ssize_t n = ::read(fd_, buf, sizeof(buf));
        if (n <= 0) return std::string::npos;
        seen_.append(buf, static_cast<size_t>(n));
      }
    }
  }
  // Waits for exit; returns the exit code (128 + signal), -1 on timeout.
  int wait_exit(int timeout_s = 30) {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(timeout_s);
    while (std::chrono::steady_clock::now() < deadline) {
      char buf[4096];
      pollfd p = {fd_, POLLIN, 0};
      if (poll(&p, 1, 50) > 0) {
        ssize_t n = ::read(fd_, buf, sizeof(buf));
        if (n > 0) seen_.append(buf, static_cast<size_t>(n));
      }
      int st = 0;
      if (waitpid(pid_, &st, WNOHANG) == pid_) {
        exited_ = true;
        return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
      }
    }
    return -1;
  }
  const std::string& output() const { return seen_; }

 private:
  pid_t pid_ = -1;
  int fd_ = -1;
  bool exited_ = false;
  std::string seen_;
};

}  // namespace lime::test
