// lime-bench generate as a user runs it on stories260K: the llama-bench-style rows for each test (batched decode
// ones with --seqs), and the roofline lines with their paired figures (each run over the peak probed around it), which must be plausible
// percentages; lime-bench kernels' paired column likewise. Speeds themselves are not asserted (benchmarks print
// figures, they are not timed tests).
#include <gtest/gtest.h>

#include <cstdlib>
#include <string>

#include "tests/apps/process.h"
#include "tests/test_models.h"

namespace lime {
namespace {

const std::string k_bench = std::string(LIME_BINARY_DIR) + "/apps/lime-bench";

// The percentage after `key` on the line that starts with `line_start`, or -1 when either is missing.
double percent_after(const std::string& out, const std::string& line_start, const std::string& key) {
  const size_t line = out.find("\n" + line_start);
  if (line == std::string::npos) return -1.0;
  const size_t end = out.find('\n', line + 1);
  const std::string text = out.substr(line + 1, end == std::string::npos ? std::string::npos : end - line - 1);
  const size_t k = text.find(key);
  if (k == std::string::npos) return -1.0;
  return std::strtod(text.c_str() + k + key.size(), nullptr);
}

TEST(lime_bench, generate_prints_table_rows_and_paired_roofline_figures) {
  LIME_REQUIRE_MODELS(models);
  const test::run_result r = test::run_program({k_bench, "generate", "-m", models + "/stories260K.gguf", "-t", "1",
                                                "-p", "8", "-n", "4", "-r", "2", "--bw-mib", "64",
                                                "--backend", "cpu"});  // the probes are CPU figures
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("|       1 |             pp8 |"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("|       1 |             tg4 |"), std::string::npos) << r.out;
  // Paired figures: rate over probe, median of the 2 runs. A figure of 0 or above 10x the probe would mean the
  // probe or the pairing is broken (stories260K is tiny: far from the peak, but not at zero).
  const double pp = percent_after(r.out, "pp8:", "paired with probes around each run: ");
  const double tg = percent_after(r.out, "tg:", "paired with probes around each run: ");
  EXPECT_GT(pp, 0.0) << r.out;
  EXPECT_LT(pp, 1000.0) << r.out;
  EXPECT_GT(tg, 0.0) << r.out;
  EXPECT_LT(tg, 1000.0) << r.out;
  EXPECT_NE(r.out.find("(median of 2; probes "), std::string::npos) << r.out;
}

TEST(lime_bench, generate_seqs_adds_batched_decode_rows) {
  LIME_REQUIRE_MODELS(models);
  const test::run_result r = test::run_program({k_bench, "generate", "-m", models + "/stories260K.gguf", "-t", "2",
                                                "-p", "8", "-n", "4", "-r", "1", "--bw-mib", "16", "--seqs", "2,5",
                                                "--backend", "cpu"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("|       2 |             tg4 |"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("|       2 |          tg4 x2 |"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("|       2 |          tg4 x5 |"), std::string::npos) << r.out;
  // The summary: aggregate and per-sequence rates, and the aggregate over the single-sequence row (positive).
  const double x5 = percent_after(r.out, "tg4 x5:", "in all ");
  EXPECT_GT(x5, 0.0) << r.out;
  EXPECT_NE(r.out.find("tg4 x5: 5 sequences decoded together: "), std::string::npos) << r.out;
  // Bad counts are refused before anything runs.
  const test::run_result bad = test::run_program({k_bench, "generate", "-m", models + "/stories260K.gguf", "--seqs", "0"});
  EXPECT_NE(bad.exit_code, 0);
  EXPECT_NE(bad.err.find("--seqs"), std::string::npos) << bad.err;
}

TEST(lime_bench, generate_depth_rows_count_the_kv_cache_of_its_type) {
  LIME_REQUIRE_MODELS(models);
  // stories260K: 5 layers, 4 kv heads of 8: one position's K and V are 2 x 5 x 32 x 4 bytes in f32 (1280), half in
  // f16. Token i of -n 4 after -d 64 reads 64 + i + 1 positions: 66.5 on average.
  for (const char* kv : {"f32", "f16"}) {
    const test::run_result r = test::run_program({k_bench, "generate", "-m", models + "/stories260K.gguf", "-t", "1",
                                                  "-p", "8", "-n", "4", "-r", "1", "-d", "64", "--bw-mib", "16",
                                                  "--kv-type", kv, "--backend", "cpu"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_NE(r.out.find(std::string("KV cache: ") + kv), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("|       1 |       tg4 @ d64 |"), std::string::npos) << r.out;
    const size_t line = r.out.find("\ntg4 @ d64: ");
    ASSERT_NE(line, std::string::npos) << r.out;
    const size_t plus = r.out.find("MiB of weights + ", line);
    ASSERT_NE(plus, std::string::npos) << r.out;
    const double kv_mib = std::strtod(r.out.c_str() + plus + 17, nullptr);
    const double want = (std::string(kv) == "f32" ? 1280.0 : 640.0) * 66.5 / (1024.0 * 1024.0);
    EXPECT_NEAR(kv_mib, want, 0.006) << r.out;  // printed with 2 decimals
    EXPECT_GT(percent_after(r.out, "tg4 @ d64:", "paired with probes around each run: "), 0.0) << r.out;
    EXPECT_EQ(r.out.find("past the model's context length"), std::string::npos) << r.out;
  }
  // Past the model's context length (2048) it still runs, and says so.
  const test::run_result deep = test::run_program({k_bench, "generate", "-m", models + "/stories260K.gguf", "-t", "1",
                                                   "-p", "8", "-n", "4", "-r", "1", "-d", "2044", "--bw-mib", "16",
                                                   "--backend", "cpu"});
  ASSERT_EQ(deep.exit_code, 0) << deep.err;
  EXPECT_NE(deep.out.find("note: the deepest test runs 2049 positions, past the model's context length of 2048"),
            std::string::npos) << deep.out;
  EXPECT_NE(deep.out.find("|       1 |     tg4 @ d2044 |"), std::string::npos) << deep.out;
  const test::run_result bad = test::run_program({k_bench, "generate", "-m", models + "/stories260K.gguf",
                                                  "--kv-type", "q8_0"});
  EXPECT_EQ(bad.exit_code, 2);
  EXPECT_NE(bad.err.find("--kv-type"), std::string::npos) << bad.err;
}

// The last cell of the table row that starts with `row_start` (trimmed), or "" when there is no such row.
std::string last_cell(const std::string& out, const std::string& row_start) {
  const size_t line = out.find("\n" + row_start);
  if (line == std::string::npos) return "";
  const size_t end = out.find('\n', line + 1);
  std::string text = out.substr(line + 1, end == std::string::npos ? std::string::npos : end - line - 1);
  while (!text.empty() && (text.back() == ' ' || text.back() == '|')) text.pop_back();
  const size_t bar = text.rfind('|');
  std::string cell = bar == std::string::npos ? text : text.substr(bar + 1);
  while (!cell.empty() && cell.front() == ' ') cell.erase(cell.begin());
  return cell;
}

TEST(lime_bench, kernels_pairs_compute_bound_rows_with_fma_probes) {
  // One small matmul (--max-gflop) and the attention rows at stories110M's shape; no model file needed.
  const test::run_result r = test::run_program({k_bench, "kernels", "-t", "1", "--types", "q8_0", "--shapes",
                                                "stories110M", "--batches", "64", "--stream-mib", "1", "--bw-mib",
                                                "16", "--max-gflop", "0.05", "--backend", "cpu"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("| % of FMA peak | paired |"), std::string::npos) << r.out;
  // Compute-bound rows carry a paired figure (the median run over the mean of its two probes); it is a plausible
  // percentage: 0 or a huge value would mean a probe read nothing or the pairing is broken.
  for (const char* row : {"| matmul b64        | q8_0 |", "| attention pp512   |"}) {
    const std::string cell = last_cell(r.out, row);
    ASSERT_FALSE(cell.empty()) << row << "\n" << r.out;
    ASSERT_EQ(cell.back(), '%') << row << "\n" << r.out;
    const double pct = std::strtod(cell.c_str(), nullptr);
    EXPECT_GT(pct, 0.0) << row << "\n" << r.out;
    EXPECT_LT(pct, 1000.0) << row << "\n" << r.out;
  }
  // Bandwidth-bound rows are not paired with FMA probes.
  EXPECT_EQ(last_cell(r.out, "| matvec            | q8_0 | stories110M attn_q"), "-") << r.out;
  EXPECT_EQ(last_cell(r.out, "| attention tg@4096 |"), "-") << r.out;
}

}  // namespace
}  // namespace lime
