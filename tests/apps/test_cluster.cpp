// lime-node pipelines on loopback give the single-process answer bit for bit: 1, 2 and 3 nodes, even and uneven
// splits with one-layer groups, one request and eight concurrent clients (greedy and sampled, --ignore-eos), and a
// bigger generated q8_0 model on two nodes.
#include <gtest/gtest.h>

#include "tests/apps/cluster_harness.h"
#include "tests/apps/process.h"
#include "tests/test_models.h"

namespace lime {
namespace {

using test::chat_client;
using test::chat_result;
using test::cluster_harness;
using test::node_process;
using test::same_answer;

// Eight requests that differ in prompt, seed, temperature (greedy included) and options.
std::vector<std::vector<std::string>> mixed_requests(const std::string& n) {
  return {
      {"-p", "Once upon a time", "-n", n, "--temp", "0"},
      {"-p", "The little dog", "-n", n, "--temp", "0.8", "-s", "1"},
      {"-p", "Tom and Sue went to the park", "-n", n, "--temp", "1.0", "-s", "7", "--ignore-eos"},
      {"-p", "A big red ball", "-n", n, "--temp", "0.5", "-s", "123"},
      {"-p", "", "-n", n, "--temp", "0", "--ignore-eos"},
      {"-p", "Lily saw a bird in the tree", "-n", n, "--temp", "1.2", "-s", "99", "--top-k", "0"},
      {"-p", "One day", "-n", n, "--temp", "0.7", "-s", "5", "--ignore-eos", "--top-p", "0.9"},
      {"-p", "The sun was hot", "-n", n, "--temp", "0.3", "-s", "2024", "--repeat-penalty", "1.1"},
  };
}

std::vector<std::string> with_checksum(std::vector<std::string> args) {
  args.push_back("--print-checksum");
  return args;
}

// Runs the requests at once (one client process each) and compares each with its single-process reference.
void expect_concurrent_match(cluster_harness& h, const node_process* head,
                             const std::vector<std::vector<std::string>>& requests) {
  std::vector<chat_result> want;
  for (const auto& r : requests) want.push_back(h.reference(with_checksum(r)));
  std::vector<chat_client*> clients;
  for (const auto& r : requests) clients.push_back(h.start_chat(head, with_checksum(r)));
  for (size_t i = 0; i < clients.size(); ++i) {
    chat_result got = clients[i]->finish(30000);
    EXPECT_TRUE(same_answer(got, want[i])) << "request " << i << " (-p '" << requests[i][1] << "')";
  }
}

struct split_case {
  const char* label;
  const char* placement;
  std::vector<std::string> workers;
};
void PrintTo(const split_case& c, std::ostream* os) { *os << c.placement; }

class cluster_split : public ::testing::TestWithParam<split_case> {};

TEST_P(cluster_split, one_and_eight_concurrent_requests_match_single_process) {
  LIME_REQUIRE_MODELS(dir);
  const split_case& c = GetParam();
  cluster_harness h(dir + "/stories260K.gguf");
  node_process* head = h.start_pipeline(c.workers, c.placement);
  ASSERT_NE(head, nullptr);

  // The placement asked for is the one serving.
  const auto rows = test::status_rows(h.status(head));
  ASSERT_EQ(rows.size(), c.workers.size() + 1);
  std::string placed;
  for (const auto& r : rows)
    if (r.layers != "-") placed += (placed.empty() ? "" : ",") + r.name + "=" + r.layers;
  EXPECT_EQ(placed, c.placement);

  const std::vector<std::string> one = {"-p", "Once upon a time", "-n", "40", "--temp", "0", "--print-checksum"};
  EXPECT_TRUE(same_answer(h.chat(head, one), h.reference(one)));
  expect_concurrent_match(h, head, mixed_requests("40"));
  // Still the same after the concurrent burst (nothing left behind in the KV of any stage).
  EXPECT_TRUE(same_answer(h.chat(head, one), h.reference(one)));
  for (const auto& w : c.workers) EXPECT_TRUE(h.node(w)->proc.running()) << w;
  EXPECT_EQ(h.terminate(head), 0);
}

INSTANTIATE_TEST_SUITE_P(
    splits, cluster_split,
    ::testing::Values(split_case{"one_node", "head=0-5", {}},
                      split_case{"two_1_4", "head=0-1,w1=1-5", {"w1"}},
                      split_case{"two_4_1", "head=0-4,w1=4-5", {"w1"}},
                      split_case{"three_1_3_1", "head=0-1,w1=1-4,w2=4-5", {"w1", "w2"}},
                      split_case{"three_2_1_2", "head=0-2,w1=2-3,w2=3-5", {"w1", "w2"}}),
    [](const ::testing::TestParamInfo<split_case>& i) { return std::string(i.param.label); });

// Workers dialing the head (--join) instead of being dialed, and a placement by memory budget (no --placement).
TEST(cluster, workers_that_join_and_budget_placement_match) {
  LIME_REQUIRE_MODELS(dir);
  cluster_harness h(dir + "/stories260K.gguf");
  std::string error;
  node_process* head = h.start_node("head", {"--head", "--mem-budget", "40M"}, &error);
  ASSERT_NE(head, nullptr) << error;
  ASSERT_NE(h.start_node("w1", {"--join", head->address, "--mem-budget", "40M"}, &error), nullptr) << error;
  std::string last;
  const std::string st = h.wait_status(
      head,
      [](const std::string& s) {
        const auto rows = test::status_rows(s);
        const auto w1 = test::find_row(rows, "w1");
        return s.rfind("cluster: serving", 0) == 0 && w1 && w1->alive && w1->layers != "-";
      },
      15000, &last);
  ASSERT_FALSE(st.empty()) << "w1 never got layers:\n" << last;
  std::cout << st;
  expect_concurrent_match(h, head, mixed_requests("24"));
}

// A generated model with wider layers (n_embd 256, 32000-token SentencePiece vocab, q8_0) on two nodes.
TEST(cluster, generated_q8_0_model_on_two_nodes_matches) {
  LIME_REQUIRE_MODELS(dir);
  test::scratch_dir tmp;
  ASSERT_FALSE(tmp.path().empty());
  const std::string model = tmp.file("wide-q8_0.gguf");
  auto mk = test::run_program({test::mkmodel_binary(), "--type", "q8_0", "--n-embd", "256", "--n-ff", "768",
                               "--n-layer", "4", "--n-head", "8", "--n-head-kv", "4", "--n-vocab", "32000",
                               "--n-ctx", "512", "--seed", "11", "--vocab",
                               dir + "/vocab/ggml-vocab-llama-spm.gguf", "-o", model});
  ASSERT_EQ(mk.exit_code, 0) << mk.err;
  {
    cluster_harness h(model);
    node_process* head = h.start_pipeline({"w1"}, "head=0-1,w1=1-4");
    ASSERT_NE(head, nullptr);
    const std::vector<std::string> greedy = {"-p", "Once upon a time", "-n", "24", "--temp", "0", "--print-checksum"};
    EXPECT_TRUE(same_answer(h.chat(head, greedy), h.reference(greedy)));
    expect_concurrent_match(h, head,
                            {{"-p", "Hello world", "-n", "24", "--temp", "0.9", "-s", "3"},
                             {"-p", "The quick brown fox", "-n", "24", "--temp", "0", "--ignore-eos"},
                             {"-p", "Numbers: 1 2 3", "-n", "24", "--temp", "1.1", "-s", "77", "--ignore-eos"}});
  }
}

}  // namespace
}  // namespace lime
