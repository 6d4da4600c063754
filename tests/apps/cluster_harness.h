// Multi-process test harness: lime-node processes (start, wait for "listening:", signals, logs in a temp folder)
// and lime-chat clients (single-process reference or --connect), all stopped and removed when the harness goes.
// Every wait has a timeout; children die with the test process (PR_SET_PDEATHSIG), even when it is killed.
#pragma once
#include <gtest/gtest.h>
#include <signal.h>

#include <functional>
#include <iostream>
#include <map>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "tests/apps/child_process.h"

namespace lime::test {

inline const std::string& node_binary() {
  static const std::string p = std::string(LIME_BINARY_DIR) + "/apps/lime-node";
  return p;
}
inline const std::string& chat_binary() {
  static const std::string p = std::string(LIME_BINARY_DIR) + "/apps/lime-chat";
  return p;
}
inline const std::string& mkmodel_binary() {
  static const std::string p = std::string(LIME_BINARY_DIR) + "/apps/lime-mkmodel";
  return p;
}

// Short heartbeats (a stopped node is lost within ~0.5 s) and one compute thread (2-core machines).
inline std::vector<std::string> fast_node_flags() {
  return {"--heartbeat-ms", "50", "--heartbeat-timeout-ms", "400", "-t", "1"};
}

// A lime-node process of a cluster.
struct node_process {
  std::string name;
  std::vector<std::string> argv;
  std::string address;  // "HOST:PORT" from its "listening:" line
  child_process proc;

  uint16_t port() const {
    const size_t colon = address.rfind(':');
    return colon == std::string::npos ? 0 : static_cast<uint16_t>(std::stoi(address.substr(colon + 1)));
  }
};

// One row of `lime-chat --status` (the first columns: name, address, alive, layers) and the whole line.
struct status_row {
  std::string name, address, layers, line;
  bool alive = false;
};

// Nodes and clients of one test. The destructor stops every process (SIGKILL) and removes the logs; when the test
// has failed it first prints the tail of every node's stderr.
class cluster_harness {
 public:
  explicit cluster_harness(std::string model) : model_(std::move(model)) {}
  ~cluster_harness() {
    if (::testing::Test::HasFailure()) std::cerr << logs(40);
    for (auto& [n, c] : clients_) c->proc().kill_now();
    for (auto& n : nodes_) n->proc.kill_now();
  }
  cluster_harness(const cluster_harness&) = delete;
  cluster_harness& operator=(const cluster_harness&) = delete;

  const std::string& model() const { return model_; }
  const scratch_dir& dir() const { return dir_; }

  // Starts lime-node --name NAME -m MODEL --listen 127.0.0.1:0 <fast flags> <args> (a --listen or -m in args wins;
  // `prefix` goes before the binary, e.g. {"ip", "netns", "exec", "ns"}) and waits for its "listening:" line.
  // Returns nullptr with *error (its stderr) when it exits first or does not listen in time.
  node_process* start_node(const std::string& name, const std::vector<std::string>& args, std::string* error,
                           const std::vector<std::string>& prefix = {}, int timeout_ms = 15000) {
    auto n = std::make_unique<node_process>();
    n->name = name;
    n->argv = prefix;
    n->argv.push_back(node_binary());
    n->argv.insert(n->argv.end(), {"--name", name});
    auto has = [&](const char* flag) {
      for (const auto& a : args)
        if (a == flag) return true;
      return false;
    };
    if (!has("-m") && !has("--model")) n->argv.insert(n->argv.end(), {"-m", model_});
    if (!has("--listen")) n->argv.insert(n->argv.end(), {"--listen", "127.0.0.1:0"});
    for (const auto& f : fast_node_flags()) n->argv.push_back(f);
    n->argv.insert(n->argv.end(), args.begin(), args.end());
    node_process* p = n.get();
    nodes_.push_back(std::move(n));
    if (!launch(p, error, timeout_ms)) return nullptr;
    return p;
  }

  // Starts the node again with the same flags, on the same address (a restart after kill).
  bool restart_node(node_process* n, std::string* error, int timeout_ms = 15000) {
    n->proc.kill_now();
    std::vector<std::string> argv = n->argv;
    for (size_t i = 0; i + 1 < argv.size(); ++i)
      if (argv[i] == "--listen") argv[i + 1] = n->address;
    n->argv = argv;
    n->proc.reset();
    ++restarts_;
    return launch(n, error, timeout_ms);
  }

  // Starts the workers (each listening on a free port), then the head dialing them (--peers) with `placement`
  // ("" = by memory budget), and waits until the cluster serves. Extra flags per node name. nullptr on failure
  // (a test failure is recorded with the reason).
  node_process* start_pipeline(const std::vector<std::string>& workers, const std::string& placement,
                               const std::map<std::string, std::vector<std::string>>& extra = {},
                               bool wait = true) {
    std::string peers, error;
    auto flags = [&](const std::string& name) {
      auto it = extra.find(name);
      return it == extra.end() ? std::vector<std::string>{} : it->second;
    };
    for (const auto& w : workers) {
      node_process* n = start_node(w, flags(w), &error);
      if (!n) {
        ADD_FAILURE() << "worker " << w << ": " << error;
        return nullptr;
      }
      peers += (peers.empty() ? "" : ",") + n->address;
    }
    std::vector<std::string> head_args = {"--head"};
    if (!peers.empty()) head_args.insert(head_args.end(), {"--peers", peers});
    if (!placement.empty()) head_args.insert(head_args.end(), {"--placement", placement});
    for (const auto& f : flags("head")) head_args.push_back(f);
    node_process* head = start_node("head", head_args, &error);
    if (!head) {
      ADD_FAILURE() << "head: " << error;
      return nullptr;
    }
    if (wait && wait_serving(head).empty()) return nullptr;
    return head;
  }

  node_process* node(const std::string& name) {
    for (auto& n : nodes_)
      if (n->name == name) return n.get();
    return nullptr;
  }

  // SIGTERM and wait; SIGKILL after the timeout. Returns the exit code (-1 when it had to be killed).
  int terminate(node_process* n, int timeout_ms = 5000) {
    n->proc.send_signal(SIGTERM);
    const int rc = n->proc.wait_exit(timeout_ms);
    if (rc < 0) n->proc.kill_now();
    return rc;
  }

  // lime-chat -m MODEL -t 1 <args> in one process: the reference. Cached per argument list.
  chat_result reference(const std::vector<std::string>& args, int timeout_ms = 60000) {
    std::string key;
    for (const auto& a : args) key += a + '\x1f';
    auto it = reference_cache().find(model_ + '\x1e' + key);
    if (it != reference_cache().end()) return it->second;
    std::vector<std::string> argv = {chat_binary(), "-m", model_, "-t", "1"};
    argv.insert(argv.end(), args.begin(), args.end());
    chat_result r = run_client(argv, timeout_ms);
    if (r.exit_code == 0) reference_cache()[model_ + '\x1e' + key] = r;
    return r;
  }

  // What --connect clients are started under (e.g. {"ip", "netns", "exec", "ns"}); the reference is not.
  void set_client_prefix(std::vector<std::string> prefix) { client_prefix_ = std::move(prefix); }

  // lime-chat --connect HEAD <args> in the background.
  chat_client* start_chat(const node_process* head, const std::vector<std::string>& args) {
    std::vector<std::string> argv = client_prefix_;
    argv.insert(argv.end(), {chat_binary(), "--connect", head->address});
    argv.insert(argv.end(), args.begin(), args.end());
    auto c = std::make_unique<chat_client>();
    const std::string tag = "client" + std::to_string(++n_clients_);
    c->start(argv, dir_.file(tag + ".out"), dir_.file(tag + ".err"));
    chat_client* p = c.get();
    clients_[tag] = std::move(c);
    return p;
  }

  // lime-chat --connect HEAD <args>, waited for.
  chat_result chat(const node_process* head, const std::vector<std::string>& args, int timeout_ms = 30000) {
    return start_chat(head, args)->finish(timeout_ms);
  }

  // `lime-chat --connect HEAD --status` output ("" when it failed).
  std::string status(const node_process* head, const std::vector<std::string>& extra = {}) {
    std::vector<std::string> args = {"--status"};
    args.insert(args.end(), extra.begin(), extra.end());
    chat_result r = chat(head, args, 20000);
    return r.exit_code == 0 ? r.out : std::string();
  }

  // Polls --status until pred(output) holds; returns the last output, "" on timeout (*last gets the last output).
  std::string wait_status(const node_process* head, const std::function<bool(const std::string&)>& pred,
                          int timeout_ms, std::string* last = nullptr, const std::vector<std::string>& extra = {}) {
    const auto deadline = clock_type::now() + std::chrono::milliseconds(timeout_ms);
    std::string s;
    for (;;) {
      s = status(head, extra);
      if (last) *last = s;
      if (!s.empty() && pred(s)) return s;
      if (clock_type::now() > deadline) return "";
      sleep_ms(50);
    }
  }
  std::string wait_serving(const node_process* head, int timeout_ms = 15000, const std::vector<std::string>& extra = {}) {
    std::string last;
    std::string s = wait_status(
        head, [](const std::string& o) { return o.rfind("cluster: serving", 0) == 0; }, timeout_ms, &last, extra);
    if (s.empty()) ADD_FAILURE() << "the cluster is not serving after " << timeout_ms << " ms; last status:\n" << last;
    return s;
  }

  // Every node's stderr (last `n` lines each), for failure messages.
  std::string logs(int n = 30) const {
    std::ostringstream os;
    for (const auto& p : nodes_) {
      os << "----- " << p->name << " (" << p->address << ") stderr, last " << n << " lines -----\n"
         << tail_lines(read_file_text(p->proc.err_path()), n);
    }
    return os.str();
  }

 private:
  bool launch(node_process* n, std::string* error, int timeout_ms) {
    const std::string tag = n->name + (restarts_ ? "." + std::to_string(restarts_) : std::string());
    if (!n->proc.spawn(n->argv, dir_.file(tag + ".out"), dir_.file(tag + ".err"))) {
      *error = "fork failed";
      return false;
    }
    const auto deadline = clock_type::now() + std::chrono::milliseconds(timeout_ms);
    const std::string key = "listening: ";
    for (;;) {
      const std::string out = n->proc.out();
      const size_t at = out.find(key);
      const size_t nl = at == std::string::npos ? std::string::npos : out.find('\n', at);
      if (nl != std::string::npos) {
        n->address = out.substr(at + key.size(), nl - at - key.size());
        return true;
      }
      if (!n->proc.running()) {
        *error = n->name + " exited with code " + std::to_string(n->proc.exit_code()) + " before listening:\n" +
                 n->proc.err();
        return false;
      }
      if (clock_type::now() > deadline) {
        *error = n->name + " did not print 'listening:' in " + std::to_string(timeout_ms) + " ms:\n" + n->proc.err();
        n->proc.kill_now();
        return false;
      }
      sleep_ms(5);
    }
  }

  chat_result run_client(const std::vector<std::string>& argv, int timeout_ms) {
    chat_client c;
    const std::string tag = "client" + std::to_string(++n_clients_);
    c.start(argv, dir_.file(tag + ".out"), dir_.file(tag + ".err"));
    return c.finish(timeout_ms);
  }

  static std::map<std::string, chat_result>& reference_cache() {
    static std::map<std::string, chat_result> cache;
    return cache;
  }

  std::string model_;
  scratch_dir dir_;
  std::vector<std::unique_ptr<node_process>> nodes_;
  std::map<std::string, std::unique_ptr<chat_client>> clients_;
  std::vector<std::string> client_prefix_;
  int n_clients_ = 0;
  int restarts_ = 0;
};

// A cluster answer must equal the single-process one: exit code 0, the same stdout bytes, the same checksum.
inline ::testing::AssertionResult same_answer(const chat_result& got, const chat_result& want) {
  if (want.exit_code != 0 || want.checksum.empty())
    return ::testing::AssertionFailure() << "the reference run failed (" << want.exit_code << "): " << want.err;
  if (got.exit_code != 0)
    return ::testing::AssertionFailure() << "exit code " << got.exit_code << " after " << got.seconds << " s, stderr:\n"
                                         << got.err << "stdout:\n" << got.out;
  if (got.out != want.out)
    return ::testing::AssertionFailure() << "stdout differs\n  cluster: [" << got.out << "]\n  single:  [" << want.out << "]";
  if (got.checksum != want.checksum)
    return ::testing::AssertionFailure() << "checksum " << got.checksum << " != " << want.checksum;
  return ::testing::AssertionSuccess();
}

// Parses the node rows of a --status output.
inline std::vector<status_row> status_rows(const std::string& status) {
  std::vector<status_row> rows;
  std::istringstream in(status);
  std::string line;
  bool table = false;
  while (std::getline(in, line)) {
    if (line.rfind("node ", 0) == 0) {
      table = true;
      continue;
    }
    if (!table || line.empty()) continue;
    std::istringstream ls(line);
    status_row r;
    std::string alive;
    ls >> r.name >> r.address >> alive >> r.layers;
    r.alive = alive == "yes";
    r.line = line;
    rows.push_back(r);
  }
  return rows;
}

// The row of node `name` (a copy: safe on a temporary list), or nullopt.
inline std::optional<status_row> find_row(const std::vector<status_row>& rows, const std::string& name) {
  for (const auto& r : rows)
    if (r.name == name) return r;
  return std::nullopt;
}

// Whether some line of `log` contains every one of `parts`.
inline bool log_has_line(const std::string& log, const std::vector<std::string>& parts) {
  std::istringstream in(log);
  std::string line;
  while (std::getline(in, line)) {
    bool all = true;
    for (const auto& p : parts) all = all && line.find(p) != std::string::npos;
    if (all) return true;
  }
  return false;
}

// "N sequences replayed" from a --status output (-1 when absent).
inline long long status_replays(const std::string& status) {
  const size_t at = status.find(" sequences replayed");
  if (at == std::string::npos) return -1;
  size_t b = at;
  while (b > 0 && isdigit(static_cast<unsigned char>(status[b - 1]))) --b;
  return b == at ? -1 : std::stoll(status.substr(b, at - b));
}

// The three-node split the fault tests use.
inline const char* const k_three = "head=0-1,w1=1-4,w2=4-5";

// A request that decodes long enough to be hit mid-answer (~0.3 s of decode on three nodes here).
inline std::vector<std::string> long_answer() {
  return {"-p", "Once upon a time", "-n", "300", "--temp", "0.8", "-s", "42", "--ignore-eos", "--print-checksum"};
}
inline std::vector<std::string> short_answer(const std::string& prompt = "The little dog") {
  return {"-p", prompt, "-n", "32", "--temp", "0", "--print-checksum"};
}

}  // namespace lime::test
