// lime-mkmodel as a user runs it: a 2-layer stories110M at q4_0 with the llama-spm vocab that lime loads and runs,
// custom dimensions with a generated vocab, byte-identical output for a seed, and one-line errors for bad flags.
#include <gtest/gtest.h>
#include <stdlib.h>
#include <unistd.h>

#include <cmath>
#include <fstream>
#include <iterator>

#include "runtime/model.h"
#include "runtime/session.h"
#include "runtime/tokenizer.h"
#include "runtime/vocab.h"
#include "tests/apps/process.h"
#include "tests/test_models.h"

namespace lime {
namespace {

const std::string k_mkmodel = std::string(LIME_BINARY_DIR) + "/apps/lime-mkmodel";

// A fresh folder under the test temp dir, removed with its files at the end of the test.
class temp_dir {
 public:
  temp_dir() {
    std::string t = ::testing::TempDir() + "lime_mkmodel_XXXXXX";
    std::vector<char> buf(t.begin(), t.end());
    buf.push_back('\0');
    if (mkdtemp(buf.data())) path_ = buf.data();
  }
  ~temp_dir() {
    for (const std::string& f : files_) ::unlink(f.c_str());
    if (!path_.empty()) ::rmdir(path_.c_str());
  }
  std::string file(const std::string& name) {
    files_.push_back(path_ + "/" + name);
    return files_.back();
  }
  bool ok() const { return !path_.empty(); }

 private:
  std::string path_;
  std::vector<std::string> files_;
};

std::string read_all(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
}

// Loads the model and its vocabulary and checks the logits of a short prompt are finite.
void expect_runs(const std::string& path, int32_t n_vocab) {
  auto m = model::load(path);
  ASSERT_TRUE(m.ok()) << m.err().message;
  auto voc = vocab_load(m->file());
  ASSERT_TRUE(voc.ok()) << voc.err().message;
  EXPECT_EQ(voc->n_tokens(), n_vocab);
  auto tok = tokenizer::create(*voc);
  ASSERT_TRUE(tok.ok()) << tok.err().message;
  std::vector<int32_t> prompt = tok->encode("Once upon a time", true, false);
  ASSERT_GE(prompt.size(), 2u);
  session_config cfg;
  cfg.n_ctx = 64;
  cfg.n_threads = 2;
  auto s = session::create(*m, *voc, cfg);
  ASSERT_TRUE(s.ok()) << s.err().message;
  auto logits = (*s)->eval_logits(prompt);
  ASSERT_TRUE(logits.ok()) << logits.err().message;
  ASSERT_EQ(logits->size(), static_cast<size_t>(n_vocab));
  for (float v : *logits) ASSERT_TRUE(std::isfinite(v));
}

TEST(lime_mkmodel, stories110m_q4_0_two_layers_loads_and_runs) {
  LIME_REQUIRE_MODELS(dir);
  temp_dir tmp;
  ASSERT_TRUE(tmp.ok());
  const std::string out = tmp.file("stories110M-q4_0.gguf");
  auto r = test::run_program({k_mkmodel, "--shape", "stories110M", "--type", "q4_0", "--seed", "3", "--layers", "2",
                              "--vocab", dir + "/vocab/ggml-vocab-llama-spm.gguf", "-o", out});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("wrote " + out), std::string::npos) << r.out;
  auto m = model::load(out);
  ASSERT_TRUE(m.ok()) << m.err().message;
  const model_hparams& hp = m->hparams();
  EXPECT_EQ(hp.n_layer, 2);
  EXPECT_EQ(hp.n_embd, 768);
  EXPECT_EQ(hp.n_ff, 2048);
  EXPECT_EQ(hp.n_head, 12);
  EXPECT_EQ(hp.n_head_kv, 12);
  EXPECT_EQ(hp.n_vocab, 32000);
  EXPECT_EQ(hp.n_ctx_train, 1024);
  EXPECT_FALSE(m->tied_embeddings());
  EXPECT_EQ(m->layer(1).w_down.type, tensor_type::q4_0);
  EXPECT_EQ(m->tok_embd().type, tensor_type::q4_0);
  EXPECT_EQ(m->output().type, tensor_type::q6_k);  // llama.cpp's head rule for quantized files
  EXPECT_EQ(m->file().get<uint32_t>("general.file_type").value(), 2u);
  EXPECT_EQ(m->file().get<std::string>("tokenizer.ggml.model").value(), "llama");
  expect_runs(out, 32000);
}

TEST(lime_mkmodel, custom_dims_with_generated_vocab) {
  temp_dir tmp;
  ASSERT_TRUE(tmp.ok());
  const std::string out = tmp.file("custom.gguf");
  auto r = test::run_program({k_mkmodel, "--type", "q4_k_m", "--n-embd", "256", "--n-ff", "768", "--n-layer", "3",
                              "--n-head", "8", "--n-head-kv", "2", "--n-vocab", "1000", "--n-ctx", "256",
                              "--rope-base", "50000", "-o", out});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto m = model::load(out);
  ASSERT_TRUE(m.ok()) << m.err().message;
  EXPECT_EQ(m->hparams().n_head_kv, 2);
  EXPECT_EQ(m->hparams().head_dim, 32);
  EXPECT_DOUBLE_EQ(m->hparams().rope_base, 50000.0);
  EXPECT_EQ(m->output().type, tensor_type::q6_k);
  EXPECT_EQ(m->layer(1).wq.type, tensor_type::q4_k);
  expect_runs(out, 1000);
}

TEST(lime_mkmodel, same_seed_same_file_other_seed_differs) {
  temp_dir tmp;
  ASSERT_TRUE(tmp.ok());
  const std::vector<std::string> base = {k_mkmodel, "--type", "q8_0", "--n-embd", "128", "--n-ff", "256", "--n-layer",
                                         "2", "--n-head", "4", "--n-vocab", "400"};
  auto run = [&](const std::string& seed, const std::string& threads, const std::string& out) {
    std::vector<std::string> argv = base;
    argv.insert(argv.end(), {"--seed", seed, "-t", threads, "-o", out});
    auto r = test::run_program(argv);
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return read_all(out);
  };
  const std::string a = run("11", "1", tmp.file("a.gguf"));
  const std::string b = run("11", "2", tmp.file("b.gguf"));
  const std::string c = run("12", "2", tmp.file("c.gguf"));
  ASSERT_FALSE(a.empty());
  EXPECT_EQ(a, b);
  EXPECT_EQ(a.size(), c.size());
  EXPECT_NE(a, c);
}

TEST(lime_mkmodel, bad_flags_fail_with_one_line_errors) {
  temp_dir tmp;
  ASSERT_TRUE(tmp.ok());
  const std::string out = tmp.file("never.gguf");
  auto r = test::run_program({k_mkmodel, "--shape", "stories110M", "--type", "q9_9", "-o", out});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("unknown type 'q9_9'"), std::string::npos) << r.err;
  r = test::run_program({k_mkmodel, "--shape", "llama-9b", "--type", "q4_0", "-o", out});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("llama-3.2-1b"), std::string::npos) << r.err;  // lists the known shapes
  r = test::run_program({k_mkmodel, "--type", "q4_0", "--n-embd", "100", "--n-ff", "256", "--n-layer", "1",
                         "--n-head", "3", "--n-vocab", "300", "-o", out});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("error:"), std::string::npos) << r.err;
  EXPECT_NE(::access(out.c_str(), F_OK), 0);  // nothing written
}

TEST(lime_mkmodel, vocab_size_mismatch_is_an_error) {
  LIME_REQUIRE_MODELS(dir);
  temp_dir tmp;
  ASSERT_TRUE(tmp.ok());
  const std::string out = tmp.file("mismatch.gguf");
  auto r = test::run_program({k_mkmodel, "--shape", "stories110M", "--type", "q4_0", "--layers", "1", "--n-vocab",
                              "500", "--vocab", dir + "/vocab/ggml-vocab-llama-spm.gguf", "-o", out});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("32000 tokens"), std::string::npos) << r.err;
  EXPECT_NE(::access(out.c_str(), F_OK), 0);
}

}  // namespace
}  // namespace lime
