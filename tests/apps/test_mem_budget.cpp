// lime-chat --mem-budget as a user runs it, and the proof by cgroup: a generated f32 model (~120 MiB of weights)
// runs inside a memory cgroup capped at the budget + 64 MiB (code, libraries, stacks) at budgets of 50% and 25% of
// its weight bytes, not OOM-killed and with the unconstrained output and checksum; without --mem-budget the same
// cap squeezes the plain mmap run (negative control). Skips the cgroup parts when not root or none is writable.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <string>
#include <vector>

#include "runtime/mem_budget.h"
#include "runtime/model.h"
#include "tests/apps/mem_cgroup.h"
#include "tests/apps/process.h"

namespace lime {
namespace {

const std::string k_chat = std::string(LIME_BINARY_DIR) + "/apps/lime-chat";
const std::string k_mkmodel = std::string(LIME_BINARY_DIR) + "/apps/lime-mkmodel";
constexpr uint64_t k_code_allowance = 64ull << 20;  // code, shared libraries, thread stacks on top of the budget
constexpr int32_t k_ctx = 128;
constexpr int32_t k_threads = 2;

double mib(uint64_t b) { return static_cast<double>(b) / (1024.0 * 1024.0); }

// Writes dirty pages of the file and drops it from the page cache, so the next reader charges what it reads.
void drop_from_page_cache(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY);
  if (fd < 0) return;
  ::fdatasync(fd);
  ::posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
  ::close(fd);
}

// Bytes of the file in the page cache now (mincore over a mapping that touches nothing).
uint64_t cached_bytes(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY);
  if (fd < 0) return 0;
  struct stat st;
  uint64_t cached = 0;
  if (::fstat(fd, &st) == 0 && st.st_size > 0) {
    const size_t size = static_cast<size_t>(st.st_size);
    void* p = ::mmap(nullptr, size, PROT_READ, MAP_SHARED, fd, 0);
    if (p != MAP_FAILED) {
      const size_t page = static_cast<size_t>(::sysconf(_SC_PAGESIZE));
      std::vector<unsigned char> vec((size + page - 1) / page);
      if (::mincore(p, size, vec.data()) == 0)
        for (unsigned char c : vec) cached += (c & 1) ? page : 0;
      ::munmap(p, size);
    }
  }
  ::close(fd);
  return cached;
}

std::string checksum_line(const std::string& err) {
  const size_t at = err.find("checksum: ");
  return at == std::string::npos ? "" : err.substr(at, err.find('\n', at) - at);
}

std::string line_with(const std::string& text, const std::string& key) {
  const size_t at = text.find(key);
  if (at == std::string::npos) return "";
  const size_t begin = text.rfind('\n', at);
  const size_t b = begin == std::string::npos ? 0 : begin + 1;
  return text.substr(b, text.find('\n', at) - b);
}

// One model for the suite: 52 layers of n_embd 256 / n_ff 512 with grouped KV and a 4096-token vocabulary, so
// the weights (~120 MiB f32) dominate and a layer is small next to them (the streaming minimum stays low).
class lime_chat_mem_budget : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    std::string t = ::testing::TempDir() + "lime_mb_XXXXXX";
    std::vector<char> buf(t.begin(), t.end());
    buf.push_back('\0');
    if (!mkdtemp(buf.data())) return;
    dir_ = buf.data();
    path_ = dir_ + "/mb.gguf";
    auto r = test::run_program({k_mkmodel, "--type", "f32", "--n-embd", "256", "--n-ff", "512", "--n-layer", "52", "--n-head",
                                "8", "--n-head-kv", "2", "--n-vocab", "4096", "--n-ctx", "512", "--seed", "5", "-o", path_});
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
    mem_budget_config c;
    c.n_ctx = k_ctx;
    c.n_batch = 512;
    c.n_threads = k_threads;
    auto min = mem_budget_min(*m, c);
    if (!min.ok()) {
      setup_error_ = min.err().message;
      return;
    }
    min_budget_ = min.value();
    // The reference: no budget, no cap.
    ref_ = test::run_program(chat_args(0, false));
  }
  static void TearDownTestSuite() {
    if (!path_.empty()) ::unlink(path_.c_str());
    if (!dir_.empty()) ::rmdir(dir_.c_str());
  }
  void SetUp() override {
    ASSERT_TRUE(setup_error_.empty()) << setup_error_;
    ASSERT_FALSE(path_.empty());
    ASSERT_EQ(ref_.exit_code, 0) << ref_.err;
    ASSERT_FALSE(checksum_line(ref_.err).empty()) << ref_.err;
  }

  static std::vector<std::string> chat_args(uint64_t budget, bool verbose) {
    std::vector<std::string> a = {k_chat, "-m", path_, "-p", "Once upon a time", "-n", "16", "--temp", "0", "-c",
                                  std::to_string(k_ctx), "-t", std::to_string(k_threads), "--print-checksum"};
    if (budget > 0) a.insert(a.end(), {"--mem-budget", std::to_string(budget)});
    if (verbose) a.push_back("--verbose");
    return a;
  }
  static uint64_t percent(int pct) { return weight_bytes_ * static_cast<uint64_t>(pct) / 100; }
  void expect_same_as_ref(const test::run_result& r) const {
    EXPECT_EQ(r.out, ref_.out);
    EXPECT_EQ(checksum_line(r.err), checksum_line(ref_.err)) << r.err;
  }

  static std::string dir_, path_, setup_error_;
  static uint64_t weight_bytes_, min_budget_;
  static test::run_result ref_;
};

std::string lime_chat_mem_budget::dir_, lime_chat_mem_budget::path_, lime_chat_mem_budget::setup_error_;
uint64_t lime_chat_mem_budget::weight_bytes_ = 0, lime_chat_mem_budget::min_budget_ = 0;
test::run_result lime_chat_mem_budget::ref_;

TEST_F(lime_chat_mem_budget, bad_and_too_small_budgets_fail_with_one_line_errors) {
  auto r = test::run_program({k_chat, "-m", path_, "-p", "x", "--mem-budget", "lots"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("bad value 'lots' for --mem-budget"), std::string::npos) << r.err;
  r = test::run_program({k_chat, "--connect", "127.0.0.1:1", "--mem-budget", "1G"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("lime-node --mem-budget"), std::string::npos) << r.err;
  r = test::run_program(chat_args(min_budget_ - 1, false));
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("too small: at least"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find(std::to_string(min_budget_) + " bytes"), std::string::npos) << r.err;
  EXPECT_TRUE(r.out.empty()) << r.out;
}

TEST_F(lime_chat_mem_budget, every_budget_prints_the_unconstrained_output_and_checksum) {
  std::printf("model: %.1f MiB of weights, smallest budget %.1f MiB (-c %d)\n", mib(weight_bytes_), mib(min_budget_), k_ctx);
  for (int pct : {100, 75, 50, 25, 0}) {
    const uint64_t budget = pct > 0 ? std::max(percent(pct), min_budget_) : min_budget_;
    SCOPED_TRACE(pct);
    auto r = test::run_program(chat_args(budget, true));
    ASSERT_EQ(r.exit_code, 0) << r.err;
    expect_same_as_ref(r);
    EXPECT_NE(r.err.find("I/O O_DIRECT"), std::string::npos) << r.err;  // the plan line
    const std::string peak = line_with(r.err, "peak RSS");
    EXPECT_FALSE(peak.empty()) << r.err;
    std::printf("budget %s (%.1f MiB): %s | %s | %s\n", pct > 0 ? (std::to_string(pct) + "%").c_str() : "minimum",
                mib(budget), line_with(r.err, "streamed per token").c_str(), line_with(r.err, "generated:").c_str(),
                peak.c_str());
  }
}

TEST_F(lime_chat_mem_budget, runs_inside_a_cgroup_capped_at_the_budget_plus_64_mib) {
  for (int pct : {50, 25}) {
    SCOPED_TRACE(pct);
    const uint64_t budget = percent(pct);
    ASSERT_GE(budget, min_budget_) << "the model's shape should allow " << pct << "% of its weights";
    std::string why;
    auto cg = test::mem_cgroup::create(budget + k_code_allowance, &why);
    if (!cg) GTEST_SKIP() << why;
    drop_from_page_cache(path_);
    const test::cg_run run = cg->run(chat_args(budget, true));
    std::printf("cgroup %s %s: budget %d%% = %.1f MiB, cap %.1f MiB, peak charged %.1f MiB, hit the cap %llu times, "
                "OOM kills %llu, child peak RSS %.1f MiB, read %.1f MiB from storage, %.1f s, exit %d\n  %s\n  %s\n",
                cg->v2() ? "v2" : "v1", cg->dir().c_str(), pct, mib(budget), mib(cg->limit()), mib(cg->peak()),
                static_cast<unsigned long long>(cg->hit_cap()), static_cast<unsigned long long>(cg->oom_kills()),
                mib(run.max_rss), mib(run.read_bytes), run.seconds, run.r.exit_code,
                line_with(run.r.err, "streamed per token").c_str(), line_with(run.r.err, "peak RSS").c_str());
    ASSERT_NE(run.r.exit_code, 137) << "OOM-killed inside the cap:\n" << run.r.err;
    ASSERT_EQ(run.r.exit_code, 0) << run.r.err;
    expect_same_as_ref(run.r);
    EXPECT_EQ(cg->oom_kills(), 0u);
    // What the cgroup charged stays within the budget itself: lime-chat's code pages were read into the page cache
    // by the reference run outside the cgroup, so the charge is the anonymous memory, the model's header pages and
    // kernel objects, which is what the budget covers. The resident set (code included) stays within the cap.
    EXPECT_LE(cg->peak(), budget);
    EXPECT_LE(run.max_rss, cg->limit());
  }
}

TEST_F(lime_chat_mem_budget, without_a_budget_the_same_cap_squeezes_the_mmap_run) {
  const uint64_t budget = percent(25);
  std::string why;
  auto with = test::mem_cgroup::create(budget + k_code_allowance, &why);
  if (!with) GTEST_SKIP() << why;
  drop_from_page_cache(path_);
  const test::cg_run b = with->run(chat_args(budget, false));
  const uint64_t cached_after_budget = cached_bytes(path_);
  ASSERT_EQ(b.r.exit_code, 0) << b.r.err;

  auto without = test::mem_cgroup::create(budget + k_code_allowance, &why);
  ASSERT_TRUE(without) << why;
  drop_from_page_cache(path_);
  const test::cg_run p = without->run(chat_args(0, false));
  const uint64_t cached_after_mmap = cached_bytes(path_);
  std::printf("cap %.1f MiB (25%% budget %.1f MiB + 64 MiB), model %.1f MiB of weights\n"
              "  --mem-budget: exit %d, peak charged %.1f MiB, hit the cap %llu times, child peak RSS %.1f MiB, "
              "read %.1f MiB, file in page cache after %.1f MiB, %.2f s\n"
              "  plain mmap:   exit %d, peak charged %.1f MiB, hit the cap %llu times, OOM kills %llu, child peak RSS "
              "%.1f MiB, read %.1f MiB (%llu major faults), file in page cache after %.1f MiB, %.2f s\n",
              mib(with->limit()), mib(budget), mib(weight_bytes_), b.r.exit_code, mib(with->peak()),
              static_cast<unsigned long long>(with->hit_cap()), mib(b.max_rss), mib(b.read_bytes), mib(cached_after_budget),
              b.seconds, p.r.exit_code, mib(without->peak()), static_cast<unsigned long long>(without->hit_cap()),
              static_cast<unsigned long long>(without->oom_kills()), mib(p.max_rss), mib(p.read_bytes),
              static_cast<unsigned long long>(p.major_faults), mib(cached_after_mmap), p.seconds);
  if (p.r.exit_code == 137) {
    // Killed: the cap is real and the plain run does not fit in it.
    EXPECT_GT(without->oom_kills() + without->hit_cap(), 0u);
    return;
  }
  // The kernel reclaimed the mapped file's pages instead of killing: the cap held the plain run down (it pressed
  // against the cap, its peak is the cap, it read the file more than once), while the budgeted run never did.
  ASSERT_EQ(p.r.exit_code, 0) << p.r.err;
  expect_same_as_ref(p.r);
  EXPECT_GT(without->hit_cap(), 0u) << "the plain mmap run never reached the cap";
  EXPECT_GE(without->peak(), with->limit() - (4ull << 20));
  EXPECT_EQ(with->hit_cap(), 0u) << "the budgeted run pressed against the cap";
  EXPECT_LT(with->peak(), without->peak());
  EXPECT_GT(p.read_bytes, weight_bytes_) << "the plain run should have re-read evicted pages";
  // Streamed with O_DIRECT and the load's read-ahead dropped: only the mapped header (~0.2 MiB) stays cached.
  EXPECT_LT(cached_after_budget, 2ull << 20) << "the budgeted run left the file in the page cache";
  EXPECT_GT(cached_after_mmap, weight_bytes_ / 2);
}

}  // namespace
}  // namespace lime
