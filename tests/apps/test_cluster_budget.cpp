// lime-node clusters whose nodes' budgets are smaller than their share of the model: a generated f32 model (~42 MiB,
// 24 thin layers) on 2 and 3 nodes at 50% and 30% of each node's share streams its weights (weight stores built by
// the loaders) and answers bit for bit as single-process lime-chat -m, for 1 and 8 concurrent requests; long
// requests push a node's KV over the high watermark, the loader gives weight budget to the KV pool, and the answers
// are still identical. Prints tokens/s of a 2-node run at full budget and at 50% / 30%.
#include <gtest/gtest.h>
#include <stdlib.h>
#include <unistd.h>

#include <cstdio>
#include <string>
#include <vector>

#include "runtime/mem_budget.h"
#include "runtime/model.h"
#include "runtime/node_budget.h"
#include "runtime/stage.h"
#include "tests/apps/cluster_harness.h"
#include "tests/apps/mem_cgroup.h"
#include "tests/apps/process.h"

namespace lime {
namespace {

using test::chat_client;
using test::chat_result;
using test::cluster_harness;
using test::node_process;
using test::same_answer;

constexpr int32_t k_rows = 64;  // -b on every node: micro-batch rows (a node's activation share is sized by it)

double mib(uint64_t b) { return static_cast<double>(b) / (1024.0 * 1024.0); }

// One model for the suite: n_embd 192 / n_ff 512, 24 layers, 4096-token vocabulary (~1.5 MiB per layer): a layer
// is small next to a node's share, so a node at 30% of its share can still stream it.
class cluster_budget : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    std::string t = ::testing::TempDir() + "lime_cb_XXXXXX";
    std::vector<char> buf(t.begin(), t.end());
    buf.push_back('\0');
    if (!mkdtemp(buf.data())) return;
    dir_ = buf.data();
    path_ = dir_ + "/cb.gguf";
    auto r = test::run_program({test::mkmodel_binary(), "--type", "f32", "--n-embd", "192", "--n-ff", "512", "--n-layer",
                                "24", "--n-head", "6", "--n-head-kv", "2", "--n-vocab", "4096", "--n-ctx", "1024", "--seed",
                                "17", "-o", path_});
    if (r.exit_code != 0) {
      setup_error_ = "lime-mkmodel failed: " + r.err;
      return;
    }
    auto m = model::load(path_);
    if (!m.ok()) {
      setup_error_ = m.err().message;
      return;
    }
    weight_bytes_ = m->weight_bytes();
    const int32_t n = m->hparams().n_layer;
    node_budget_config c;
    c.n_rows = k_rows;
    c.n_logit_rows = 8;
    c.n_threads = 1;
    // What each node of an even split needs at least (streamed) and holds (resident), for the preconditions.
    for (int32_t nodes : {2, 3}) {
      uint64_t need = 0, share = 0;
      for (int32_t i = 0; i < nodes; ++i) {
        const layer_range r{n * i / nodes, n * (i + 1) / nodes};
        need = std::max(need, node_budget_range_need(*m, r, c));
        share = std::max(share, stage_weight_bytes(*m, r));
      }
      need_[nodes] = need;
      share_[nodes] = share;
    }
  }
  static void TearDownTestSuite() {
    if (!path_.empty()) ::unlink(path_.c_str());
    if (!dir_.empty()) ::rmdir(dir_.c_str());
  }
  void SetUp() override {
    ASSERT_TRUE(setup_error_.empty()) << setup_error_;
    ASSERT_FALSE(path_.empty());
  }

  // Each node's budget: pct% of an even share of the weights (0: no budget).
  static uint64_t budget_for(int32_t nodes, int pct) {
    return pct == 0 ? 0 : weight_bytes_ / static_cast<uint64_t>(nodes) * static_cast<uint64_t>(pct) / 100;
  }
  static std::vector<std::string> node_flags(uint64_t budget, const std::vector<std::string>& more = {}) {
    std::vector<std::string> f = {"-b", std::to_string(k_rows)};
    if (budget > 0) f.insert(f.end(), {"--mem-budget", std::to_string(budget)});
    f.insert(f.end(), more.begin(), more.end());
    return f;
  }
  // A cluster of `nodes` placed by budget (every node the same budget); nullptr on failure.
  static node_process* start(cluster_harness& h, int32_t nodes, uint64_t budget, const std::vector<std::string>& head_more = {}) {
    std::vector<std::string> workers;
    std::map<std::string, std::vector<std::string>> extra;
    for (int32_t i = 1; i < nodes; ++i) {
      workers.push_back("w" + std::to_string(i));
      extra[workers.back()] = node_flags(budget);
    }
    extra["head"] = node_flags(budget, head_more);
    return h.start_pipeline(workers, "", extra);
  }

  static std::string dir_, path_, setup_error_;
  static uint64_t weight_bytes_;
  static std::map<int32_t, uint64_t> need_, share_;
};

std::string cluster_budget::dir_, cluster_budget::path_, cluster_budget::setup_error_;
uint64_t cluster_budget::weight_bytes_ = 0;
std::map<int32_t, uint64_t> cluster_budget::need_, cluster_budget::share_;

std::vector<std::string> with_checksum(std::vector<std::string> a) {
  a.push_back("--print-checksum");
  return a;
}

std::vector<std::vector<std::string>> eight_requests() {
  return {
      {"-p", "Once upon a time", "-n", "24", "--temp", "0"},
      {"-p", "The little dog", "-n", "24", "--temp", "0.8", "-s", "1"},
      {"-p", "Tom and Sue went to the park", "-n", "24", "--temp", "1.0", "-s", "7", "--ignore-eos"},
      {"-p", "A big red ball", "-n", "24", "--temp", "0.5", "-s", "123"},
      {"-p", "", "-n", "24", "--temp", "0", "--ignore-eos"},
      {"-p", "Lily saw a bird in the tree", "-n", "24", "--temp", "1.2", "-s", "99", "--top-k", "0"},
      {"-p", "One day", "-n", "24", "--temp", "0.7", "-s", "5", "--ignore-eos", "--top-p", "0.9"},
      {"-p", "The sun was hot", "-n", "24", "--temp", "0.3", "-s", "2024", "--repeat-penalty", "1.1"},
  };
}

// Runs the requests at once and compares each with its single-process reference.
void expect_concurrent_match(cluster_harness& h, const node_process* head, const std::vector<std::vector<std::string>>& reqs,
                             int timeout_ms = 120000) {
  std::vector<chat_result> want;
  for (const auto& r : reqs) want.push_back(h.reference(with_checksum(r), timeout_ms));
  std::vector<chat_client*> clients;
  for (const auto& r : reqs) clients.push_back(h.start_chat(head, with_checksum(r)));
  for (size_t i = 0; i < clients.size(); ++i)
    EXPECT_TRUE(same_answer(clients[i]->finish(timeout_ms), want[i])) << "request " << i << " (-p '" << reqs[i][1] << "')";
}

// "generated: N tokens, X tok/s" of a --verbose client (0 when absent).
double generated_tok_s(const std::string& err) {
  const std::string key = "generated: ";
  const size_t at = err.rfind(key);
  if (at == std::string::npos) return 0;
  const size_t comma = err.find(", ", at);
  return comma == std::string::npos ? 0 : std::atof(err.c_str() + comma + 2);
}

// stdout without the log lines a --verbose client prints there ("[2026-... ] [info] ...").
std::string without_log_lines(const std::string& out) {
  std::string kept;
  size_t at = 0;
  while (at < out.size()) {
    size_t nl = out.find('\n', at);
    const size_t end = nl == std::string::npos ? out.size() : nl + 1;
    const std::string line = out.substr(at, end - at);
    if (!(line.rfind("[20", 0) == 0 && line.find("] [info] ") != std::string::npos)) kept += line;
    at = end;
  }
  return kept;
}

// Every node streams: its log names its store, and --status shows less resident than its layers' weights and bytes
// streamed per token.
// The "streamed/tok" column of a --status row ("-" when the node streams nothing).
std::string streamed_column(const std::string& row_line) {
  std::istringstream ls(row_line);
  std::string name, address, alive, layers, b1, b2, w1, w2, streamed;
  ls >> name >> address >> alive >> layers >> b1 >> b2 >> w1 >> w2 >> streamed;
  return streamed;
}

// Every node of the --status output streams some of its weights.
bool all_streaming(const std::string& status) {
  const auto rows = test::status_rows(status);
  for (const auto& r : rows)
    if (streamed_column(r.line) == "-") return false;
  return !rows.empty();
}

void expect_streaming(cluster_harness& h, const node_process* head, int32_t nodes) {
  std::string last;
  const std::string st = h.wait_status(head, all_streaming, 10000, &last);
  EXPECT_FALSE(st.empty()) << "the status does not show every node streaming:\n" << last;
  std::cout << last;
  const auto rows = test::status_rows(last);
  ASSERT_EQ(rows.size(), static_cast<size_t>(nodes)) << last;
  for (const auto& r : rows) {
    EXPECT_NE(r.layers, "-") << "node " << r.name << " holds no layers:\n" << last;
    const node_process* n = h.node(r.name);
    ASSERT_NE(n, nullptr);
    const std::string log = n->proc.err();
    EXPECT_TRUE(test::log_has_line(log, {"node " + r.name, "streamed through a store of"})) << log;
    EXPECT_TRUE(test::log_has_line(log, {"loader: node " + r.name, "streamed per token"})) << log;
  }
}

TEST_F(cluster_budget, two_and_three_nodes_at_half_and_a_third_of_their_share_match_single_process) {
  const std::vector<std::string> one = {"-p", "Once upon a time", "-n", "32", "--temp", "0", "--print-checksum"};
  for (int32_t nodes : {2, 3}) {
    for (int pct : {50, 30}) {
      SCOPED_TRACE(std::to_string(nodes) + " nodes at " + std::to_string(pct) + "%");
      const uint64_t budget = budget_for(nodes, pct);
      // The budget is far below the node's share (it cannot hold its layers resident) but above the streaming need.
      ASSERT_LT(budget, share_[nodes]);
      ASSERT_GE(budget, need_[nodes]) << "the model's shape should let a node stream at " << pct << "%";
      std::printf("%d nodes at %d%%: budget %.1f MiB each, share %.1f MiB, streaming needs %.1f MiB\n", nodes, pct,
                  mib(budget), mib(share_[nodes]), mib(need_[nodes]));
      cluster_harness h(path_);
      node_process* head = start(h, nodes, budget);
      ASSERT_NE(head, nullptr);
      expect_streaming(h, head, nodes);
      EXPECT_TRUE(same_answer(h.chat(head, one, 120000), h.reference(one, 120000)));
      expect_concurrent_match(h, head, eight_requests());
      EXPECT_TRUE(same_answer(h.chat(head, one, 120000), h.reference(one, 120000)));
      for (int32_t i = 1; i < nodes; ++i) EXPECT_TRUE(h.node("w" + std::to_string(i))->proc.running());
    }
  }
}

TEST_F(cluster_budget, kv_pressure_gives_weight_budget_to_the_kv_pool_and_answers_stay_identical) {
  const uint64_t budget = budget_for(2, 50);
  cluster_harness h(path_);
  node_process* head = start(h, 2, budget, {"-c", "1024"});
  ASSERT_NE(head, nullptr);
  // Four sequences of ~250 positions: ~8 KV blocks each on a node whose pool starts at 8 (its reserve).
  const std::vector<std::vector<std::string>> reqs = {
      {"-p", "Once upon a time", "-n", "240", "--temp", "0.8", "-s", "3", "--ignore-eos"},
      {"-p", "The little dog", "-n", "240", "--temp", "0", "--ignore-eos"},
      {"-p", "Tom and Sue went to the park", "-n", "240", "--temp", "1.1", "-s", "9", "--ignore-eos"},
      {"-p", "One day", "-n", "240", "--temp", "0.6", "-s", "31", "--ignore-eos"},
  };
  expect_concurrent_match(h, head, reqs, 240000);
  bool pressure = false, gave = false;
  for (const char* name : {"head", "w1"}) {
    const std::string log = h.node(name)->proc.err();
    const bool p = test::log_has_line(log, {"kv: node", "pressure high"});
    const bool g = test::log_has_line(log, {"gave back", "of weight budget to KV"});
    std::printf("%s: pressure high logged %s, weight budget given to KV %s\n", name, p ? "yes" : "no", g ? "yes" : "no");
    pressure |= p;
    gave |= g;
    EXPECT_EQ(p, g) << name << ": a node under pressure must give weights back, and only then:\n" << log;
  }
  EXPECT_TRUE(pressure) << h.logs(60);
  EXPECT_TRUE(gave) << h.logs(60);
  // When the requests are over, the pressure goes and the weights come back (the pools shrink to their split).
  for (const char* name : {"head", "w1"}) {
    bool took = false;
    for (int i = 0; i < 100 && !took; ++i) {
      took = test::log_has_line(h.node(name)->proc.err(), {"pressure normal", "took back"});
      if (!took) test::sleep_ms(100);
    }
    EXPECT_TRUE(took) << name << " did not take its weights back:\n" << h.logs(60);
  }
  for (const char* name : {"head", "w1"}) {
    const std::string log = h.node(name)->proc.err();
    auto count = [&](const std::vector<std::string>& parts) {
      std::istringstream in(log);
      std::string line;
      int n = 0;
      while (std::getline(in, line)) n += test::log_has_line(line, parts) ? 1 : 0;
      return n;
    };
    std::printf("%s: %d pressure-high reports, %d give-backs (%d on a full pool), %d take-backs\n", name,
                count({"kv: node", "pressure high"}), count({"gave back", "to KV"}), count({"KV full: gave back"}),
                count({"took back"}));
  }
  const std::vector<std::string> one = {"-p", "Once upon a time", "-n", "16", "--temp", "0", "--print-checksum"};
  EXPECT_TRUE(same_answer(h.chat(head, one, 120000), h.reference(one, 120000)));
}

TEST_F(cluster_budget, tokens_per_second_of_two_nodes_at_full_and_smaller_budgets) {
  const std::vector<std::string> req = {"-p", "Once upon a time", "-n", "64", "--temp", "0", "--ignore-eos",
                                        "--print-checksum"};
  const chat_result want = [&] {
    cluster_harness r(path_);
    return r.reference(req, 120000);
  }();
  std::printf("2 nodes, model %.1f MiB of weights, one request of 64 tokens:\n", mib(weight_bytes_));
  for (int pct : {0, 50, 30}) {
    cluster_harness h(path_);
    node_process* head = start(h, 2, budget_for(2, pct));
    ASSERT_NE(head, nullptr);
    const std::string st = pct ? h.wait_status(head, all_streaming, 10000) : h.status(head);
    std::vector<std::string> args = req;
    args.push_back("--verbose");
    (void)h.chat(head, args, 120000);  // warm-up: the first pass loads what stays resident
    const chat_result got = h.chat(head, args, 120000);
    EXPECT_EQ(got.exit_code, 0) << got.err;
    EXPECT_EQ(without_log_lines(got.out), want.out);
    EXPECT_EQ(got.checksum, want.checksum);
    std::printf("  budget %-6s %8.1f MiB per node: %.1f tok/s\n", pct ? (std::to_string(pct) + "%").c_str() : "full",
                mib(budget_for(2, pct)), generated_tok_s(got.err));
    for (const auto& r : test::status_rows(st)) std::printf("    %s\n", r.line.c_str());
  }
}

// The "rss/peak" column of a --status row, the last one: "12.3 MiB/15.0 MiB" -> bytes of the peak (0 when "-").
uint64_t peak_rss_column(const std::string& row_line) {
  const size_t slash = row_line.rfind('/');
  if (slash == std::string::npos || row_line.compare(row_line.size() - 1, 1, "-") == 0) return 0;
  std::istringstream in(row_line.substr(slash + 1));
  double v = 0;
  std::string unit;
  in >> v >> unit;
  const double scale = unit == "GiB" ? 1073741824.0 : unit == "MiB" ? 1048576.0 : unit == "KiB" ? 1024.0 : 1.0;
  return static_cast<uint64_t>(v * scale);
}

// Both nodes of a 2-node cluster at half their share run inside memory cgroups capped at their budget + 64 MiB (code,
// libraries, thread stacks): nothing is OOM-killed, 8 concurrent answers are the single-process ones, and the peak
// resident set each node reports in --status stays within its cap.
TEST_F(cluster_budget, nodes_inside_cgroups_capped_at_budget_plus_64_mib_answer_identically) {
  constexpr uint64_t k_allowance = 64ull << 20;
  const uint64_t budget = budget_for(2, 50);
  std::string why;
  auto cg_w = test::mem_cgroup::create(budget + k_allowance, &why);
  if (!cg_w) GTEST_SKIP() << why;
  auto cg_h = test::mem_cgroup::create(budget + k_allowance, &why);
  ASSERT_TRUE(cg_h) << why;
  ASSERT_TRUE(mem_budget_drop_file_cache(path_).ok());
  // sh joins the cgroup (writing its own pid, which exec keeps) before it becomes lime-node.
  auto inside = [](const test::mem_cgroup& g) {
    return std::vector<std::string>{"/bin/sh", "-c", "echo $$ > \"$0/cgroup.procs\" && exec \"$@\"", g.dir()};
  };
  cluster_harness h(path_);
  std::string error;
  node_process* w = h.start_node("w1", node_flags(budget), &error, inside(*cg_w));
  ASSERT_NE(w, nullptr) << error;
  node_process* head = h.start_node("head", node_flags(budget, {"--head", "--peers", w->address}), &error, inside(*cg_h));
  ASSERT_NE(head, nullptr) << error;
  ASSERT_FALSE(h.wait_serving(head).empty()) << h.logs(30);
  expect_streaming(h, head, 2);
  expect_concurrent_match(h, head, eight_requests());
  // The workers report their resident set with their KV usage (at most once a second): wait for both peaks.
  std::string last;
  const std::string st = h.wait_status(
      head,
      [](const std::string& s) {
        const auto rows = test::status_rows(s);
        for (const auto& r : rows)
          if (peak_rss_column(r.line) == 0) return false;
        return rows.size() == 2;
      },
      10000, &last);
  ASSERT_FALSE(st.empty()) << "no peak RSS in the status:\n" << last;
  std::cout << st;
  for (const auto& r : test::status_rows(st)) {
    const test::mem_cgroup& g = r.name == "head" ? *cg_h : *cg_w;
    const uint64_t reported = peak_rss_column(r.line);
    std::printf("%s: budget %.1f MiB, cap %.1f MiB, cgroup peak charge %.1f MiB, hit the cap %llu times, OOM kills %llu, "
                "reported peak RSS %.1f MiB\n",
                r.name.c_str(), mib(budget), mib(g.limit()), mib(g.peak()), static_cast<unsigned long long>(g.hit_cap()),
                static_cast<unsigned long long>(g.oom_kills()), mib(reported));
    EXPECT_EQ(g.oom_kills(), 0u) << r.name;
    EXPECT_EQ(g.hit_cap(), 0u) << r.name << " pressed against its cap (the kernel had to reclaim)";
    EXPECT_LE(reported, g.limit()) << r.name << ": peak RSS above the cap";
    EXPECT_GT(g.peak(), 0u) << r.name << " was not charged to its cgroup";
  }
  EXPECT_TRUE(h.node("w1")->proc.running());
  EXPECT_TRUE(head->proc.running());
}

}  // namespace
}  // namespace lime
