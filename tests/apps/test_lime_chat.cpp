// lime-chat as a user runs it: goldens on stdout, checksum line, errors as one line, piped multi-turn input,
// and an interactive session on a pseudo-terminal (streaming, /reset, Ctrl-C stops an answer, /quit).
#include <gtest/gtest.h>

#include <fstream>
#include <regex>

#include "tests/apps/process.h"
#include "tests/golden.h"
#include "tests/test_models.h"

namespace lime {
namespace {

const std::string k_chat = std::string(LIME_BINARY_DIR) + "/apps/lime-chat";
const std::string k_tokenize = std::string(LIME_BINARY_DIR) + "/apps/lime-tokenize";

std::string last_line(const std::string& s) {
  std::string t = s;
  while (!t.empty() && t.back() == '\n') t.pop_back();
  size_t nl = t.rfind('\n');
  return nl == std::string::npos ? t : t.substr(nl + 1);
}

int count_lines(const std::string& s) {
  int n = 0;
  for (char c : s) n += c == '\n';
  return n;
}

TEST(lime_chat, golden_bos_story_on_stdout) {
  LIME_REQUIRE_MODELS(dir);
  auto golden = test::readme_golden_blocks(dir);
  ASSERT_GE(golden.size(), 2u);
  auto r = test::run_program({k_chat, "-m", dir + "/stories260K.gguf", "-p", "", "-n", "256", "--temp", "0"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, golden[0] + "\n");
  EXPECT_EQ(r.err.find("error"), std::string::npos) << r.err;
}

TEST(lime_chat, golden_once_upon_a_time_prints_prompt_then_completion) {
  LIME_REQUIRE_MODELS(dir);
  auto golden = test::readme_golden_blocks(dir);
  ASSERT_GE(golden.size(), 2u);
  auto r = test::run_program({k_chat, "-m", dir + "/stories260K.gguf", "-p", "Once upon a time", "-n", "64", "--temp", "0"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, golden[1] + "\n");
}

TEST(lime_chat, checksum_line_is_stable_across_threads_and_batch_size) {
  LIME_REQUIRE_MODELS(dir);
  const std::string model = dir + "/stories260K.gguf";
  auto a = test::run_program({k_chat, "-m", model, "-p", "A cat", "-n", "48", "--temp", "0.7", "-s", "42", "-t", "1", "-b", "1", "--print-checksum"});
  auto b = test::run_program({k_chat, "-m", model, "-p", "A cat", "-n", "48", "--temp", "0.7", "-s", "42", "-t", "2", "--print-checksum"});
  ASSERT_EQ(a.exit_code, 0) << a.err;
  ASSERT_EQ(b.exit_code, 0) << b.err;
  const std::string la = last_line(a.err);
  EXPECT_TRUE(std::regex_match(la, std::regex("checksum: [0-9a-f]{16}"))) << la;
  EXPECT_EQ(la, last_line(b.err));
  EXPECT_EQ(a.out, b.out);
  auto c = test::run_program({k_chat, "-m", model, "-p", "A cat", "-n", "48", "--temp", "0.7", "-s", "43", "--print-checksum"});
  EXPECT_NE(la, last_line(c.err));
}

TEST(lime_chat, errors_are_one_clear_line_and_nonzero) {
  auto missing = test::run_program({k_chat, "-m", "/nonexistent/model.gguf", "-p", "hi"});
  EXPECT_EQ(missing.exit_code, 1);
  EXPECT_EQ(count_lines(missing.err), 1) << missing.err;
  EXPECT_NE(missing.err.find("lime-chat: error:"), std::string::npos);
  EXPECT_TRUE(missing.out.empty());

  auto no_model = test::run_program({k_chat, "-p", "hi"});
  EXPECT_EQ(no_model.exit_code, 1);
  EXPECT_NE(no_model.err.find("-m"), std::string::npos);

  auto bad_flag = test::run_program({k_chat, "-m", "x.gguf", "--bogus"});
  EXPECT_EQ(bad_flag.exit_code, 1);
  EXPECT_NE(bad_flag.err.find("--bogus"), std::string::npos);

  auto bad_value = test::run_program({k_chat, "-m", "x.gguf", "-n", "many"});
  EXPECT_EQ(bad_value.exit_code, 1);
  EXPECT_NE(bad_value.err.find("many"), std::string::npos);

  // A corrupt model: a GGUF magic and then garbage.
  const std::string corrupt = ::testing::TempDir() + "/corrupt.gguf";
  {
    std::ofstream f(corrupt, std::ios::binary);
    f << "GGUF" << std::string("\x03\x00\x00\x00\xff\xff\xff\xff\xff\xff\xff\x7f", 12) << std::string(64, 'z');
  }
  auto bad_model = test::run_program({k_chat, "-m", corrupt, "-p", "hi"});
  EXPECT_EQ(bad_model.exit_code, 1);
  EXPECT_EQ(count_lines(bad_model.err), 1) << bad_model.err;
}

TEST(lime_chat, prompt_longer_than_context_is_refused) {
  LIME_REQUIRE_MODELS(dir);
  std::string prompt;
  for (int i = 0; i < 40; ++i) prompt += "The dog ran. ";
  auto r = test::run_program({k_chat, "-m", dir + "/stories260K.gguf", "-c", "32", "-p", prompt, "-n", "4"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("context"), std::string::npos) << r.err;
}

TEST(lime_chat, piped_turns_and_reset) {
  LIME_REQUIRE_MODELS(dir);
  auto r = test::run_program({k_chat, "-m", dir + "/stories260K.gguf", "--temp", "0", "-n", "12"},
                             "Once upon a time\n/reset\nOnce upon a time\n/quit\n");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  // Two identical answers (the conversation was reset in between), each followed by a stats line.
  const size_t nl = r.out.find('\n');
  ASSERT_NE(nl, std::string::npos);
  const std::string first = r.out.substr(0, nl + 1);
  EXPECT_FALSE(first.empty());
  EXPECT_EQ(r.out, first + first);
  EXPECT_NE(r.err.find("conversation reset"), std::string::npos);
  size_t stats = 0, at = 0;
  while ((at = r.err.find("[prompt:", at)) != std::string::npos) { ++stats; ++at; }
  EXPECT_EQ(stats, 2u);
}

TEST(lime_chat, interactive_on_a_terminal) {
  LIME_REQUIRE_MODELS(dir);
  test::pty_session s({k_chat, "-m", dir + "/stories260K.gguf", "--temp", "0", "-c", "4096", "--ignore-eos"});
  ASSERT_TRUE(s.started());
  size_t at = s.wait_for("> ", 0);
  ASSERT_NE(at, std::string::npos) << s.output();
  // A short answer streams and ends with a stats line.
  s.send("/reset\r");
  at = s.wait_for("conversation reset", at);
  ASSERT_NE(at, std::string::npos) << s.output();
  s.send("Once upon a time\r");
  // Ctrl-C while the (long: --ignore-eos, 4096 context) answer streams stops it, not the app.
  at = s.wait_for(" ", at + 1);
  ASSERT_NE(at, std::string::npos) << s.output();
  at = s.wait_for("there", at);
  ASSERT_NE(at, std::string::npos) << s.output();
  s.send("\x03");
  at = s.wait_for("finish: cancelled", at);
  ASSERT_NE(at, std::string::npos) << s.output();
  at = s.wait_for("> ", at);
  ASSERT_NE(at, std::string::npos) << s.output();
  s.send("/quit\r");
  EXPECT_EQ(s.wait_exit(), 0) << s.output();
}

TEST(lime_tokenize, prints_the_golden_prompt_ids) {
  LIME_REQUIRE_MODELS(dir);
  auto r = test::run_program({k_tokenize, "-m", dir + "/stories260K.gguf", "-p", "Once upon a time"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "1 403 407 261 378\n");
  auto nb = test::run_program({k_tokenize, "-m", dir + "/stories260K.gguf", "-p", "Once upon a time", "--no-bos"});
  EXPECT_EQ(nb.out, "403 407 261 378\n");
}

}  // namespace
}  // namespace lime
