// lime-mkmodel: writes a Llama GGUF with random weights at a real model's shape (runtime/model_gen.h), for
// benchmarks and tests. Parses flags, picks the vocabulary file, runs the generator, prints one summary line.
#include <sys/stat.h>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "runtime/model_gen.h"

namespace {

void usage() {
  std::fprintf(stderr,
               "usage: lime-mkmodel --shape NAME --type TYPE [--seed S] -o FILE.gguf [--layers N] [--vocab VOCAB.gguf|bpe]\n"
               "                    [--n-embd N --n-ff N --n-layer N --n-head N --n-head-kv N --n-vocab N --n-ctx N\n"
               "                     --rope-base F] [-t THREADS] [--list]\n"
               "  shapes: stories110M tinyllama-1.1b llama-3.2-1b llama-2-7b llama-3-8b llama-3.3-70b (or custom dims)\n"
               "  types:  f32 f16 bf16 q8_0 q4_0 q4_1 q5_0 q5_1 q4_k_m q5_k_m q6_k\n"
               "  vocab:  default llama-spm (../shared/models/vocab) for 32000 tokens, else a generated BPE vocab\n");
}

bool file_exists(const std::string& p) {
  struct stat st;
  return ::stat(p.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

// The llama-spm vocabulary (32000 tokens) from the shared models folder, or "" when it is not there.
std::string default_spm_vocab() {
  std::vector<std::string> dirs;
  if (const char* env = std::getenv("LIME_TEST_MODELS"); env && *env) dirs.push_back(env);
#ifdef LIME_DEFAULT_MODELS_DIR
  dirs.push_back(LIME_DEFAULT_MODELS_DIR);
#endif
  dirs.push_back("../shared/models");
  for (const std::string& d : dirs) {
    const std::string p = d + "/vocab/ggml-vocab-llama-spm.gguf";
    if (file_exists(p)) return p;
  }
  return "";
}

// The dimension a flag like "--n-embd" sets, or nullptr.
int32_t* dim_field(lime::model_shape& s, const std::string& flag) {
  if (flag == "--n-embd") return &s.n_embd;
  if (flag == "--n-ff") return &s.n_ff;
  if (flag == "--n-layer") return &s.n_layer;
  if (flag == "--n-head") return &s.n_head;
  if (flag == "--n-head-kv") return &s.n_head_kv;
  if (flag == "--n-vocab") return &s.n_vocab;
  if (flag == "--n-ctx") return &s.n_ctx;
  return nullptr;
}

bool parse_int(const char* s, long long lo, long long hi, long long* out) {
  char* end = nullptr;
  long long v = std::strtoll(s, &end, 10);
  if (!s[0] || *end || v < lo || v > hi) return false;
  *out = v;
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace lime;
  model_gen_options o;
  std::string shape_name, type_name, out, vocab;
  bool have_shape = false;
  long long layers = 0;
  std::vector<std::pair<std::string, int32_t>> overrides;  // dimension flags, applied on top of --shape
  float rope_base = 0.f;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto next = [&]() -> const char* {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "error: %s needs a value\n", a.c_str());
        std::exit(2);
      }
      return argv[++i];
    };
    long long v = 0;
    model_shape probe;
    if (dim_field(probe, a)) {
      if (!parse_int(next(), 1, 1 << 24, &v)) { std::fprintf(stderr, "error: bad value for %s\n", a.c_str()); return 2; }
      overrides.emplace_back(a, static_cast<int32_t>(v));
      continue;
    }
    if (a == "--shape") { shape_name = next(); have_shape = true; }
    else if (a == "--type") type_name = next();
    else if (a == "-o" || a == "--output") out = next();
    else if (a == "--vocab") vocab = next();
    else if (a == "--seed") {
      if (!parse_int(next(), 0, (1ll << 62), &v)) { std::fprintf(stderr, "error: bad --seed\n"); return 2; }
      o.seed = static_cast<uint64_t>(v);
    } else if (a == "--layers") {
      if (!parse_int(next(), 1, 1 << 20, &layers)) { std::fprintf(stderr, "error: bad --layers\n"); return 2; }
    } else if (a == "--rope-base") {
      rope_base = std::strtof(next(), nullptr);
      if (!(rope_base > 1.f)) { std::fprintf(stderr, "error: --rope-base must be > 1\n"); return 2; }
    } else if (a == "-t" || a == "--threads") {
      if (!parse_int(next(), 1, 4096, &v)) { std::fprintf(stderr, "error: bad -t\n"); return 2; }
      o.n_threads = static_cast<int>(v);
    } else if (a == "--list") {
      for (const model_shape& s : model_shapes())
        std::printf("%-15s vocab %6d ctx %6d embd %5d ff %5d layers %2d heads %2d/%d rope %.0f%s %.2fB params\n",
                    s.name.c_str(), s.n_vocab, s.n_ctx, s.n_embd, s.n_ff, s.n_layer, s.n_head, s.n_head_kv,
                    s.rope_base, s.tied ? " tied" : "", static_cast<double>(s.n_params()) * 1e-9);
      return 0;
    } else if (a == "-h" || a == "--help") {
      usage();
      return 0;
    } else {
      std::fprintf(stderr, "error: unknown argument '%s'\n", a.c_str());
      usage();
      return 2;
    }
  }
  if (out.empty() || type_name.empty()) {
    std::fprintf(stderr, "error: -o and --type are required\n");
    usage();
    return 2;
  }
  auto ft = model_ftype_from_name(type_name);
  if (!ft) { std::fprintf(stderr, "error: %s\n", ft.err().message.c_str()); return 2; }
  o.ftype = *ft;
  if (have_shape) {
    auto s = model_shape_find(shape_name);
    if (!s) { std::fprintf(stderr, "error: %s\n", s.err().message.c_str()); return 2; }
    o.shape = *s;
  } else {
    o.shape.name = "custom";
    o.shape.n_ctx = 2048;
  }
  for (const auto& [flag, val] : overrides) *dim_field(o.shape, flag) = val;
  if (!have_shape && o.shape.n_head_kv == 0) o.shape.n_head_kv = o.shape.n_head;
  if (layers > 0) o.shape.n_layer = static_cast<int32_t>(layers);
  if (rope_base > 0.f) o.shape.rope_base = rope_base;

  if (vocab == "bpe") {
    o.vocab_path.clear();
  } else if (!vocab.empty()) {
    o.vocab_path = vocab;
  } else if (o.shape.n_vocab == 32000) {
    o.vocab_path = default_spm_vocab();
    if (o.vocab_path.empty())
      std::fprintf(stderr, "note: llama-spm vocab not found (set LIME_TEST_MODELS); writing a generated BPE vocab\n");
  }
  auto st = model_gen_write_file(o, out);
  if (!st) { std::fprintf(stderr, "error: %s\n", st.err().message.c_str()); return 1; }
  std::printf("wrote %s: %s %s, %d layers, %llu tensors, %.3f B params, %.1f MiB in %.2f s (%.0f MiB/s), vocab %s\n",
              out.c_str(), o.shape.name.c_str(), model_ftype_name(o.ftype), o.shape.n_layer,
              static_cast<unsigned long long>(st->n_tensors), static_cast<double>(st->n_params) * 1e-9,
              static_cast<double>(st->file_bytes) / (1024.0 * 1024.0), st->seconds,
              static_cast<double>(st->file_bytes) / (1024.0 * 1024.0) / (st->seconds > 0 ? st->seconds : 1),
              o.vocab_path.empty() ? "generated-bpe" : o.vocab_path.c_str());
  return 0;
}
