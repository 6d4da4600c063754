// lime-node pipelines under faults end with the single-process answer or a clear error, never a hang or a crashed
// survivor: a worker crashing during prefill, killed or stopped during decode, injected frame faults (drop,
// duplicate, delay, corrupt), wrong cluster secrets, and garbage bytes on the head's port.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>

#include "tests/apps/cluster_harness.h"
#include "tests/test_models.h"

namespace lime {
namespace {

using test::chat_client;
using test::chat_result;
using test::cluster_harness;
using test::node_process;
using test::k_three;
using test::long_answer;
using test::same_answer;
using test::short_answer;


// Waits until the client printed `n` bytes past its prompt echo, so the answer is streaming.
::testing::AssertionResult streaming(chat_client* c, size_t prompt_bytes, size_t n = 40) {
  if (c->wait_out_beyond(prompt_bytes + n, 20000)) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "no text streamed; stderr:\n" << c->proc().err();
}

void expect_alive(cluster_harness& h, std::initializer_list<const char*> names) {
  for (const char* n : names)
    EXPECT_TRUE(h.node(n)->proc.running()) << n << " is not running (exit " << h.node(n)->proc.exit_code() << ")";
}

long long replays(cluster_harness& h, const node_process* head) { return test::status_replays(h.status(head)); }

// (a) The crash hook ends a worker after two micro-batches, in the middle of a prefill of many small batches.
TEST(cluster_faults, worker_crash_during_prefill_is_replaced_over_survivors) {
  LIME_REQUIRE_MODELS(dir);
  cluster_harness h(dir + "/stories260K.gguf");
  node_process* head = h.start_pipeline({"w1", "w2"}, k_three, {{"head", {"-b", "4"}}, {"w1", {"--crash-after-batches", "2"}}});
  ASSERT_NE(head, nullptr);
  const std::vector<std::string> req = {
      "-p", "Once upon a time there was a little girl named Lily. She loved to play outside in the park with her "
            "friends. One day she saw a big red ball near the old tree, and she wanted to play with it.",
      "-n", "24", "--temp", "0.6", "-s", "5", "--print-checksum"};
  EXPECT_TRUE(same_answer(h.chat(head, req), h.reference(req)));
  EXPECT_EQ(h.node("w1")->proc.wait_exit(5000), 137) << "the crash hook did not fire";
  expect_alive(h, {"head", "w2"});
  const std::string st = h.status(head);
  const auto rows = test::status_rows(st);
  ASSERT_TRUE(test::find_row(rows, "w1").has_value()) << st;
  EXPECT_FALSE(test::find_row(rows, "w1")->alive) << st;
  EXPECT_GE(test::status_replays(st), 1) << st;
  EXPECT_TRUE(same_answer(h.chat(head, short_answer()), h.reference(short_answer())));
}

// (b) kill -9 of a worker while the answer streams; prints how long the stream paused.
TEST(cluster_faults, worker_killed_during_decode_gives_identical_answer) {
  LIME_REQUIRE_MODELS(dir);
  cluster_harness h(dir + "/stories260K.gguf");
  node_process* head = h.start_pipeline({"w1", "w2"}, k_three);
  ASSERT_NE(head, nullptr);
  chat_client* c = h.start_chat(head, long_answer());
  ASSERT_TRUE(streaming(c, 16));
  const size_t before = c->out_bytes();
  const auto t_kill = test::clock_type::now();
  h.node("w1")->proc.kill_now();
  if (c->wait_out_beyond(before, 20000))
    std::cout << "kill -9 of w1 -> next streamed text: " << test::seconds_since(t_kill) * 1000 << " ms\n";
  EXPECT_TRUE(same_answer(c->finish(30000), h.reference(long_answer())));
  expect_alive(h, {"head", "w2"});
  EXPECT_GE(replays(h, head), 1);
}

// (c) SIGSTOP: the worker is silent, declared lost after the heartbeat timeout; after SIGCONT it must not disturb
// the survivors, and it joins again.
TEST(cluster_faults, stopped_worker_is_lost_then_resumes_without_harm) {
  LIME_REQUIRE_MODELS(dir);
  cluster_harness h(dir + "/stories260K.gguf");
  node_process* head = h.start_pipeline({"w1", "w2"}, k_three);
  ASSERT_NE(head, nullptr);
  chat_client* c = h.start_chat(head, long_answer());
  ASSERT_TRUE(streaming(c, 16));
  const auto t_stop = test::clock_type::now();
  h.node("w1")->proc.send_signal(SIGSTOP);
  EXPECT_TRUE(same_answer(c->finish(30000), h.reference(long_answer())));
  std::cout << "answer complete " << test::seconds_since(t_stop) * 1000 << " ms after SIGSTOP\n";
  EXPECT_TRUE(test::log_has_line(head->proc.err(), {"peer down", "peer=w1 ", "reason=heartbeat timeout"}))
      << "w1 was not lost by heartbeat timeout";
  h.node("w1")->proc.send_signal(SIGCONT);
  // Right after the resume (w1 may still flush frames of the old epoch) and again once it is back in the placement.
  EXPECT_TRUE(same_answer(h.chat(head, short_answer()), h.reference(short_answer())));
  std::string last;
  const std::string st = h.wait_status(
      head,
      [](const std::string& s) {
        const auto w1 = test::find_row(test::status_rows(s), "w1");
        return s.rfind("cluster: serving", 0) == 0 && w1 && w1->alive && w1->layers == "1-4";
      },
      15000, &last);
  EXPECT_FALSE(st.empty()) << "w1 did not rejoin the placement; last status:\n" << last;
  EXPECT_TRUE(same_answer(h.chat(head, short_answer("A big red ball")), h.reference(short_answer("A big red ball"))));
  expect_alive(h, {"head", "w1", "w2"});
}

// (d) Injected faults on the middle worker's outgoing frames.
struct fault_case {
  const char* label;
  std::vector<std::string> w1, w2, head;
  bool expect_replay;
  std::string log_node, log_text;  // the fault must show in this node's log ("" = no check)
};
void PrintTo(const fault_case& c, std::ostream* os) { *os << c.label; }

class cluster_fault_injection : public ::testing::TestWithParam<fault_case> {};

TEST_P(cluster_fault_injection, answers_stay_identical) {
  LIME_REQUIRE_MODELS(dir);
  const fault_case& fc = GetParam();
  cluster_harness h(dir + "/stories260K.gguf");
  node_process* head = h.start_pipeline({"w1", "w2"}, k_three, {{"head", fc.head}, {"w1", fc.w1}, {"w2", fc.w2}});
  ASSERT_NE(head, nullptr);
  const std::vector<std::vector<std::string>> reqs = {
      short_answer("Once upon a time"),
      {"-p", "Tom and Sue", "-n", "32", "--temp", "0.9", "-s", "8", "--ignore-eos", "--print-checksum"}};
  std::vector<chat_client*> cs;
  for (const auto& r : reqs) cs.push_back(h.start_chat(head, r));
  for (size_t i = 0; i < cs.size(); ++i) EXPECT_TRUE(same_answer(cs[i]->finish(30000), h.reference(reqs[i]))) << i;
  EXPECT_TRUE(same_answer(h.chat(head, short_answer()), h.reference(short_answer())));
  expect_alive(h, {"head", "w1", "w2"});
  if (!fc.log_node.empty()) {
    EXPECT_TRUE(test::log_has_line(h.node(fc.log_node)->proc.err(), {"peer down", fc.log_text})) << fc.log_node;
  }
  if (fc.expect_replay) {
    EXPECT_GE(replays(h, head), 1) << "the fault never hit";
  }
}

INSTANTIATE_TEST_SUITE_P(
    faults, cluster_fault_injection,
    ::testing::Values(
        // A lost micro-batch comes back through the batch timeout.
        fault_case{"drop", {"--fault", "micro_batch:drop:0.04", "--fault-seed", "3"}, {}, {"--batch-timeout-ms", "1000"},
                   true, "", ""},
        // Duplicates on the way down the pipeline and back to the head.
        fault_case{"duplicate", {"--fault", "micro_batch:duplicate:0.3"}, {"--fault", "sampled_tokens:duplicate:0.3"},
                   {}, false, "", ""},
        // Delays reorder frames (heartbeats included) on both links.
        fault_case{"delay", {"--fault", "*:delay:0.3:25"}, {"--fault", "sampled_tokens:delay:0.3:25"}, {}, false, "", ""},
        // A corrupt frame to the head drops that link: the head re-places over the others and replays.
        fault_case{"corrupt_to_head", {}, {"--fault", "sampled_tokens:corrupt:0.05", "--fault-seed", "2"}, {}, true,
                   "head", "reason=bad frame"},
        // A corrupt frame between two workers: the link is lost between them; the batch comes back by timeout.
        fault_case{"corrupt_between_workers",
                   {"--fault", "micro_batch:corrupt:0.04", "--fault-seed", "4"},
                   {},
                   {"--batch-timeout-ms", "1000"},
                   true,
                   "w2",
                   "reason=bad frame"}),
    [](const ::testing::TestParamInfo<fault_case>& i) { return std::string(i.param.label); });

// (e) Cluster secrets: a worker with another secret never joins; a client with another (or no) secret is refused.
TEST(cluster_faults, wrong_secret_worker_never_joins_and_wrong_secret_client_fails) {
  LIME_REQUIRE_MODELS(dir);
  cluster_harness h(dir + "/stories260K.gguf");
  const std::string good = h.dir().file("secret"), bad = h.dir().file("wrong-secret");
  test::write_file_text(good, "correct horse battery staple\n");
  test::write_file_text(bad, "another secret\n");
  const std::vector<std::string> g = {"--cluster-secret-file", good};
  node_process* head = h.start_pipeline(
      {"w1", "w2"}, "",
      {{"head", {"--cluster-secret-file", good, "--peer-wait-ms", "1500"}},
       {"w1", {"--cluster-secret-file", bad}},
       {"w2", g}},
      false);
  ASSERT_NE(head, nullptr);
  ASSERT_FALSE(h.wait_serving(head, 15000, g).empty());
  std::vector<std::string> req = short_answer();
  req.insert(req.end(), g.begin(), g.end());
  EXPECT_TRUE(same_answer(h.chat(head, req), h.reference(short_answer())));
  const std::string st = h.status(head, g);
  const auto w1 = test::find_row(test::status_rows(st), "w1");
  EXPECT_TRUE(!w1 || !w1->alive) << st;
  const auto w2 = test::find_row(test::status_rows(st), "w2");
  EXPECT_TRUE(w2 && w2->alive && w2->layers != "-") << st;
  EXPECT_TRUE(test::log_has_line(head->proc.err(), {"refused", "reason=bad mac"}));

  for (const std::vector<std::string>& secret : {std::vector<std::string>{"--cluster-secret-file", bad},
                                                 std::vector<std::string>{}}) {
    std::vector<std::string> r = short_answer();
    r.insert(r.end(), secret.begin(), secret.end());
    chat_result got = h.chat(head, r, 30000);
    EXPECT_EQ(got.exit_code, 1) << got.err;
    EXPECT_TRUE(test::log_has_line(got.err, {"lime-chat: error: cannot connect", "bad mac"})) << got.err;
    EXPECT_EQ(got.out.find("little"), std::string::npos) << got.out;
    std::cout << "client with " << (secret.empty() ? "no" : "a wrong") << " secret: " << test::tail_lines(got.err, 2);
  }
  expect_alive(h, {"head", "w1", "w2"});
}

// Opens a TCP connection to the port, writes `bytes`, and reports whether the peer closed it within timeout_ms.
bool closed_after_sending(uint16_t port, const std::string& bytes, int timeout_ms) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return false;
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
  bool closed = false;
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0) {
    (void)!::send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL);
    const auto deadline = test::clock_type::now() + std::chrono::milliseconds(timeout_ms);
    while (!closed && test::clock_type::now() < deadline) {
      pollfd p{fd, POLLIN, 0};
      if (::poll(&p, 1, 20) > 0) {
        char buf[4096];
        const ssize_t n = ::recv(fd, buf, sizeof(buf), 0);
        closed = n <= 0;  // hello frames from the node are read and ignored
      }
    }
  }
  ::close(fd);
  return closed;
}

// (f) Garbage on the head's port: each connection is dropped, the head survives and still answers identically.
TEST(cluster_faults, garbage_bytes_on_the_head_port_are_dropped) {
  LIME_REQUIRE_MODELS(dir);
  cluster_harness h(dir + "/stories260K.gguf");
  node_process* head = h.start_pipeline({"w1"}, "head=0-2,w1=2-5");
  ASSERT_NE(head, nullptr);
  std::string noise(4096, '\0');
  uint32_t x = 12345;
  for (char& ch : noise) {
    x = x * 1103515245u + 12345u;
    ch = static_cast<char>(x >> 24);
  }
  const std::string small_frame_of_junk = std::string("\x10\x00\x00\x00", 4) + std::string(16, '\x7f');
  EXPECT_TRUE(closed_after_sending(head->port(), noise, 3000)) << "random bytes";
  EXPECT_TRUE(closed_after_sending(head->port(), "GET / HTTP/1.1\r\nHost: x\r\n\r\n", 3000)) << "HTTP";
  EXPECT_TRUE(closed_after_sending(head->port(), std::string("\xff\xff\xff\xff", 4), 3000)) << "huge length";
  EXPECT_TRUE(closed_after_sending(head->port(), std::string(4, '\0'), 3000)) << "empty frame";
  EXPECT_TRUE(closed_after_sending(head->port(), small_frame_of_junk, 3000)) << "undecodable frame";
  EXPECT_TRUE(same_answer(h.chat(head, short_answer()), h.reference(short_answer())));
  const auto rows = test::status_rows(h.status(head));
  EXPECT_EQ(rows.size(), 2u);
  expect_alive(h, {"head", "w1"});
}

}  // namespace
}  // namespace lime
