// Child processes for the multi-process tests: stdout/stderr to files, exit codes, signals, timeouts; a scratch
// folder; lime-chat runs in the background with their checksum line. Children die with the test process
// (PR_SET_PDEATHSIG), even when it is killed.
#pragma once
#include <dirent.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <iterator>
#include <string>
#include <thread>
#include <vector>

namespace lime::test {

using clock_type = std::chrono::steady_clock;

inline std::string read_file_text(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
}

inline void write_file_text(const std::string& path, const std::string& text) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f << text;
}

inline std::string tail_lines(const std::string& s, int n) {
  size_t at = s.size();
  for (int i = 0; i <= n && at > 0; ++i) {
    at = s.rfind('\n', at - 1);
    if (at == std::string::npos) return s;
  }
  return s.substr(at + 1);
}

inline void sleep_ms(int ms) { std::this_thread::sleep_for(std::chrono::milliseconds(ms)); }

inline double seconds_since(clock_type::time_point t) {
  return std::chrono::duration<double>(clock_type::now() - t).count();
}

// A folder under the test temp dir; removed with its (flat) contents by the destructor.
class scratch_dir {
 public:
  scratch_dir() {
    std::string t = ::testing::TempDir() + "lime_cluster_XXXXXX";
    std::vector<char> buf(t.begin(), t.end());
    buf.push_back('\0');
    if (mkdtemp(buf.data())) path_ = buf.data();
  }
  ~scratch_dir() {
    if (path_.empty()) return;
    if (DIR* d = opendir(path_.c_str())) {
      while (dirent* e = readdir(d)) {
        const std::string n = e->d_name;
        if (n != "." && n != "..") ::unlink((path_ + "/" + n).c_str());
      }
      closedir(d);
    }
    ::rmdir(path_.c_str());
  }
  scratch_dir(const scratch_dir&) = delete;
  scratch_dir& operator=(const scratch_dir&) = delete;
  const std::string& path() const { return path_; }
  std::string file(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

// One child process, stdin from /dev/null, stdout and stderr to files. Killed (SIGKILL) and reaped by the
// destructor when still running.
class child_process {
 public:
  child_process() = default;
  child_process(const child_process&) = delete;
  child_process& operator=(const child_process&) = delete;
  ~child_process() { kill_now(); }

  bool spawn(const std::vector<std::string>& argv, const std::string& out_path, const std::string& err_path) {
    out_path_ = out_path;
    err_path_ = err_path;
    const pid_t parent = getpid();
    pid_ = fork();
    if (pid_ < 0) return false;
    if (pid_ == 0) {
      prctl(PR_SET_PDEATHSIG, SIGKILL);  // never outlive the test
      if (getppid() != parent) _exit(126);
      int in = ::open("/dev/null", O_RDONLY);
      int out = ::open(out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      int err = ::open(err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      if (in < 0 || out < 0 || err < 0) _exit(125);
      dup2(in, 0);
      dup2(out, 1);
      dup2(err, 2);
      std::vector<char*> args;
      for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
      args.push_back(nullptr);
      execvp(args[0], args.data());
      _exit(127);
    }
    started_ = clock_type::now();
    return true;
  }

  pid_t pid() const { return pid_; }
  bool running() {
    poll_exit();
    return pid_ > 0 && !reaped_;
  }
  // Exit code (128 + signal when killed); -1 while running or never started.
  int exit_code() {
    poll_exit();
    return reaped_ ? exit_code_ : -1;
  }
  void send_signal(int sig) {
    if (running()) ::kill(pid_, sig);
  }
  // Waits for the exit; returns its code, or -1 on timeout (the process keeps running).
  int wait_exit(int timeout_ms) {
    const auto deadline = clock_type::now() + std::chrono::milliseconds(timeout_ms);
    for (;;) {
      poll_exit();
      if (reaped_ || pid_ <= 0) return reaped_ ? exit_code_ : -1;
      if (clock_type::now() > deadline) return -1;
      sleep_ms(2);
    }
  }
  // Kills (if running) and forgets the process, so spawn() can run the next one.
  void reset() {
    kill_now();
    pid_ = -1;
    reaped_ = false;
    exit_code_ = -1;
  }
  void kill_now() {
    if (pid_ > 0 && !reaped_) {
      ::kill(pid_, SIGKILL);
      int st = 0;
      if (waitpid(pid_, &st, 0) == pid_) set_status(st);
      reaped_ = true;
    }
  }
  std::string out() const { return read_file_text(out_path_); }
  std::string err() const { return read_file_text(err_path_); }
  const std::string& out_path() const { return out_path_; }
  const std::string& err_path() const { return err_path_; }
  clock_type::time_point started() const { return started_; }

 private:
  void poll_exit() {
    if (pid_ <= 0 || reaped_) return;
    int st = 0;
    if (waitpid(pid_, &st, WNOHANG) == pid_) {
      set_status(st);
      reaped_ = true;
    }
  }
  void set_status(int st) { exit_code_ = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st); }

  pid_t pid_ = -1;
  bool reaped_ = false;
  int exit_code_ = -1;
  std::string out_path_, err_path_;
  clock_type::time_point started_{};
};

// What a lime-chat run gave.
struct chat_result {
  int exit_code = -1;  // -1: timed out (it was killed)
  std::string out, err;
  std::string checksum;  // the "checksum: <hex>" line's hex, "" when absent
  double seconds = 0;
};

inline std::string checksum_of(const std::string& err) {
  const std::string key = "checksum: ";
  const size_t at = err.rfind(key);
  if (at == std::string::npos) return "";
  const size_t end = err.find('\n', at);
  return err.substr(at + key.size(), end == std::string::npos ? std::string::npos : end - at - key.size());
}

// A lime-chat process running in the background (stdout read while it streams).
class chat_client {
 public:
  bool start(const std::vector<std::string>& argv, const std::string& out_path, const std::string& err_path) {
    return proc_.spawn(argv, out_path, err_path);
  }
  child_process& proc() { return proc_; }
  // Bytes on stdout so far.
  size_t out_bytes() const {
    struct stat st;
    return ::stat(proc_.out_path().c_str(), &st) == 0 ? static_cast<size_t>(st.st_size) : 0;
  }
  // Waits until stdout holds more than `bytes` bytes; false on timeout or when the client exited first.
  bool wait_out_beyond(size_t bytes, int timeout_ms) {
    const auto deadline = clock_type::now() + std::chrono::milliseconds(timeout_ms);
    while (clock_type::now() < deadline) {
      if (out_bytes() > bytes) return true;
      if (!proc_.running()) return out_bytes() > bytes;
      std::this_thread::sleep_for(std::chrono::microseconds(500));
    }
    return false;
  }
  // Waits for the exit (SIGKILL after the timeout: exit_code -1).
  chat_result finish(int timeout_ms) {
    chat_result r;
    r.exit_code = proc_.wait_exit(timeout_ms);
    if (r.exit_code < 0) proc_.kill_now();
    r.seconds = seconds_since(proc_.started());
    r.out = proc_.out();
    r.err = proc_.err();
    r.checksum = checksum_of(r.err);
    return r;
  }

 private:
  child_process proc_;
};

}  // namespace lime::test
