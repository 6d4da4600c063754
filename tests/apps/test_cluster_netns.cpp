// A two-node pipeline across network namespaces joined by a veth pair shaped to 100 Mbit/s (tc tbf): the answer
// equals the single-process one, and the head's measured link (bandwidth, RTT) goes to the test log. Needs root and
// `ip netns`; skipped otherwise. The namespaces (and with them the veth pair) are always deleted.
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <sstream>

#include "tests/apps/cluster_harness.h"
#include "tests/apps/process.h"
#include "tests/test_models.h"

namespace lime {
namespace {

using test::cluster_harness;
using test::node_process;
using test::same_answer;

const char* const k_prefix = "limet";  // namespaces "limet<PID>h" / "limet<PID>w"

// The full path of a system tool (run_program does not search PATH); the bare name when not found.
std::string tool(const std::string& name) {
  for (const char* d : {"/usr/sbin/", "/sbin/", "/usr/bin/", "/bin/"}) {
    const std::string p = d + name;
    if (::access(p.c_str(), X_OK) == 0) return p;
  }
  return name;
}

bool run_ok(const std::vector<std::string>& argv, std::string* why) {
  auto r = test::run_program(argv, "", 20);
  if (r.exit_code == 0) return true;
  std::string cmd;
  for (const auto& a : argv) cmd += a + " ";
  *why = cmd + "-> exit " + std::to_string(r.exit_code) + ": " + r.err;
  return false;
}

// Namespaces of an earlier run of this test whose process is gone (killed before it could clean up).
void delete_stale_namespaces() {
  auto r = test::run_program({tool("ip"), "netns", "list"}, "", 20);
  std::istringstream in(r.out);
  std::string line;
  while (std::getline(in, line)) {
    const std::string name = line.substr(0, line.find(' '));
    if (name.rfind(k_prefix, 0) != 0 || name.size() < 7) continue;
    const std::string pid = name.substr(5, name.size() - 6);
    if (pid.find_first_not_of("0123456789") != std::string::npos || pid.empty()) continue;
    if (::kill(static_cast<pid_t>(std::stol(pid)), 0) != 0 && errno == ESRCH)
      (void)test::run_program({tool("ip"), "netns", "del", name}, "", 20);
  }
}

// Two namespaces joined by a veth pair: 198.18.0.1/30 in `head_ns`, 198.18.0.2/30 in `worker_ns`, each end
// shaped with tbf. Deleting the namespaces deletes the pair.
class veth_link {
 public:
  veth_link() {
    const std::string id = std::to_string(getpid());
    head_ns = k_prefix + id + "h";
    worker_ns = k_prefix + id + "w";
    head_dev_ = "lt" + id + "h";
    worker_dev_ = "lt" + id + "w";
  }
  ~veth_link() {
    for (const std::string& ns : created_) (void)test::run_program({tool("ip"), "netns", "del", ns}, "", 20);
    (void)test::run_program({tool("ip"), "link", "del", head_dev_}, "", 20);  // only if it never moved into a namespace
  }
  bool create(std::string* why) {
    delete_stale_namespaces();
    for (const std::string& ns : {head_ns, worker_ns}) {
      if (!run_ok({tool("ip"), "netns", "add", ns}, why)) return false;
      created_.push_back(ns);
    }
    const std::string shape_rate = "100mbit";
    return run_ok({tool("ip"), "link", "add", head_dev_, "type", "veth", "peer", "name", worker_dev_}, why) &&
           run_ok({tool("ip"), "link", "set", head_dev_, "netns", head_ns}, why) &&
           run_ok({tool("ip"), "link", "set", worker_dev_, "netns", worker_ns}, why) &&
           run_ok({tool("ip"), "-n", head_ns, "addr", "add", "198.18.0.1/30", "dev", head_dev_}, why) &&
           run_ok({tool("ip"), "-n", worker_ns, "addr", "add", "198.18.0.2/30", "dev", worker_dev_}, why) &&
           run_ok({tool("ip"), "-n", head_ns, "link", "set", head_dev_, "up"}, why) &&
           run_ok({tool("ip"), "-n", worker_ns, "link", "set", worker_dev_, "up"}, why) &&
           run_ok({tool("ip"), "-n", head_ns, "link", "set", "lo", "up"}, why) &&
           run_ok({tool("ip"), "-n", worker_ns, "link", "set", "lo", "up"}, why) &&
           run_ok({tool("tc"), "-n", head_ns, "qdisc", "add", "dev", head_dev_, "root", "tbf", "rate", shape_rate, "burst",
                   "32kbit", "latency", "400ms"}, why) &&
           run_ok({tool("tc"), "-n", worker_ns, "qdisc", "add", "dev", worker_dev_, "root", "tbf", "rate", shape_rate,
                   "burst", "32kbit", "latency", "400ms"}, why);
  }
  std::vector<std::string> in(const std::string& ns) const { return {tool("ip"), "netns", "exec", ns}; }

  std::string head_ns, worker_ns;

 private:
  std::string head_dev_, worker_dev_;
  std::vector<std::string> created_;
};

TEST(cluster_netns, two_nodes_over_a_shaped_veth_link_match) {
  LIME_REQUIRE_MODELS(dir);
  if (geteuid() != 0) GTEST_SKIP() << "needs root for network namespaces";
  veth_link net;  // declared before the harness: its processes stop before the namespaces go
  std::string why;
  if (!net.create(&why)) GTEST_SKIP() << "cannot build network namespaces here: " << why;
  cluster_harness h(dir + "/stories260K.gguf");
  h.set_client_prefix(net.in(net.head_ns));
  std::string error;
  node_process* w1 = h.start_node("w1", {"--listen", "198.18.0.2:0"}, &error, net.in(net.worker_ns));
  ASSERT_NE(w1, nullptr) << error;
  // w1 runs the first layers, so the activations cross the shaped link into the head (its "link in" column).
  node_process* head = h.start_node("head", {"--head", "--listen", "198.18.0.1:0", "--peers", w1->address,
                                             "--placement", "w1=0-2,head=2-5"},
                                    &error, net.in(net.head_ns));
  ASSERT_NE(head, nullptr) << error;
  ASSERT_FALSE(h.wait_serving(head).empty());

  // A long prompt makes prefill frames of several KiB (the link's bandwidth is sampled on frames >= 4 KiB).
  const std::vector<std::vector<std::string>> reqs = {
      {"-p", "Once upon a time there was a little girl named Lily. She loved to play outside in the park with her "
             "friends, and every day she ran to the big old tree by the pond to look at the birds.",
       "-n", "32", "--temp", "0.7", "-s", "17", "--print-checksum"},
      {"-p", "Once upon a time", "-n", "40", "--temp", "0", "--print-checksum"}};
  for (const auto& r : reqs) EXPECT_TRUE(same_answer(h.chat(head, r), h.reference(r)));

  const std::string st = h.status(head);
  const auto row = test::find_row(test::status_rows(st), "w1");
  ASSERT_TRUE(row.has_value()) << st;
  EXPECT_TRUE(row->alive);
  EXPECT_EQ(row->address, w1->address);
  std::cout << "link head <- w1 over veth (tbf 100mbit), from --status:\n" << st;
}

}  // namespace
}  // namespace lime
