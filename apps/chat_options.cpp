// Flag parsing for lime-chat: strict numbers, ranges checked, one-line errors.
#include "apps/chat_options.h"

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <map>

#include "runtime/placement.h"
#include "runtime/sampler.h"

namespace lime::app {
namespace {

bool to_int(const char* s, int64_t lo, int64_t hi, int64_t* out) {
  char* end = nullptr;
  errno = 0;
  long long v = std::strtoll(s, &end, 10);
  if (errno != 0 || end == s || *end != '\0' || v < lo || v > hi) return false;
  *out = v;
  return true;
}

bool to_float(const char* s, float* out) {
  char* end = nullptr;
  errno = 0;
  float v = std::strtof(s, &end);
  if (errno != 0 || end == s || *end != '\0' || v != v) return false;
  *out = v;
  return true;
}

}  // namespace

const char* chat_usage() {
  return "usage: lime-chat -m MODEL [options]\n"
         "  -m, --model PATH        GGUF model file\n"
         "  -p, --prompt TEXT       run one turn and exit (plain models: prints prompt + completion)\n"
         "  -n, --n-predict N       tokens to generate per answer (-1: until end or context full; default -1)\n"
         "  -c, --ctx-size N        context length (0: the model's, capped at 4096; default 0)\n"
         "  -t, --threads N         threads (default: all CPUs)\n"
         "  -b, --batch-size N      prompt tokens per forward pass (default 512)\n"
         "  -s, --seed N            random seed (default -1: random, shown with --verbose)\n"
         "  --temp T                temperature (default 0.8; 0 = greedy)\n"
         "  --top-k N               top-k (default 40; 0 = off)\n"
         "  --top-p P               top-p (default 0.95; 1 = off)\n"
         "  --min-p P               min-p (default 0.05; 0 = off)\n"
         "  --repeat-penalty F      repetition penalty (default 1.0 = off)\n"
         "  --repeat-last-n N       tokens the penalty looks back (default 64; -1 = all)\n"
         "  -sys, --system TEXT     system prompt (chat-template models)\n"
         "  --raw                   ignore the chat template: plain completion\n"
         "  --ignore-eos            keep generating past end-of-generation tokens\n"
         "  --kv-type f32|f16       KV cache type (default f32; f16 is not bitwise equal to f32)\n"
         "  --mem-budget SIZE       hard memory limit of the process (e.g. 384M, 2G, bytes): weights beyond it are\n"
         "                          streamed from the file with O_DIRECT; same output (default: none, mmap)\n"
         "  --backend cpu|cuda|auto where the forward pass runs (default auto: cuda when built with CUDA and a device\n"
         "                          is present and no --mem-budget is given, else cpu); same output on either\n"
         "  --device-budget SIZE    cuda: device memory for weights + KV + activations (default: free memory - 256M);\n"
         "                          weights beyond it are streamed from host memory every token\n"
         "  --cuda-unified          cuda: kernels read the weights in place from registered host memory (automatic on\n"
         "                          integrated GPUs such as Jetson; this forces it on a discrete GPU for testing)\n"
         "  --fast-prefill          cuda: prompt batches of 16+ tokens through cuBLAS in fp16: faster, but the logits\n"
         "                          are NOT bitwise the CPU path's and depend on the batch (decode stays exact)\n"
         "  --print-checksum        print 'checksum: <hex>' of the logits chain on stderr at exit\n"
         "  --verbose               model, seed, template and timing details on stderr\n"
         "  --connect HOST:PORT     chat with a lime cluster's head instead of a model in this process\n"
         "  --cluster-secret-file F the cluster secret (with --connect)\n"
         "  --status                with --connect: print the cluster's nodes, layers, memory, links and requests\n"
         "interactive commands: /reset (new conversation), /quit; Ctrl-C stops the current answer\n";
}

bool parse_chat_options(int argc, char** argv, chat_cli_options* o, std::string* err) {
  sampling_params& sp = o->chat.sampling;
  int64_t seed = -1;
  std::string backend_name = "auto";
  int i = 1;
  auto value = [&](const char* flag) -> const char* {
    if (i + 1 >= argc) {
      *err = std::string("flag ") + flag + " needs a value";
      return nullptr;
    }
    return argv[++i];
  };
  for (; i < argc; ++i) {
    const std::string f = argv[i];
    const char* v = nullptr;
    int64_t n = 0;
    float x = 0;
    auto bad = [&](const char* what) {
      *err = "bad value '" + std::string(v ? v : "") + "' for " + f + " (" + what + ")";
      return false;
    };
    if (f == "-h" || f == "--help") { o->help = true; return true; }
    else if (f == "--raw") o->chat.raw = true;
    else if (f == "--verbose" || f == "-v") o->verbose = true;
    else if (f == "--print-checksum") o->print_checksum = true;
    else if (f == "--ignore-eos") o->chat.ignore_eos = true;
    else if (f == "-m" || f == "--model") { if (!(v = value(argv[i]))) return false; o->model_path = v; }
    else if (f == "-p" || f == "--prompt") { if (!(v = value(argv[i]))) return false; o->prompt = v; o->has_prompt = true; }
    else if (f == "-sys" || f == "--system") { if (!(v = value(argv[i]))) return false; o->chat.system_prompt = v; }
    else if (f == "-n" || f == "--n-predict") { if (!(v = value(argv[i]))) return false; if (!to_int(v, -1, INT32_MAX, &n)) return bad("an integer >= -1"); o->chat.n_predict = static_cast<int32_t>(n); }
    else if (f == "-c" || f == "--ctx-size") { if (!(v = value(argv[i]))) return false; if (!to_int(v, 0, 1 << 24, &n)) return bad("0 or a positive integer"); o->session.n_ctx = static_cast<int32_t>(n); }
    else if (f == "-t" || f == "--threads") { if (!(v = value(argv[i]))) return false; if (!to_int(v, 1, 1024, &n)) return bad("1..1024"); o->session.n_threads = static_cast<int32_t>(n); }
    else if (f == "-b" || f == "--batch-size") { if (!(v = value(argv[i]))) return false; if (!to_int(v, 1, 1 << 20, &n)) return bad("a positive integer"); o->session.n_batch = static_cast<int32_t>(n); }
    else if (f == "-s" || f == "--seed") { if (!(v = value(argv[i]))) return false; if (!to_int(v, -1, INT64_MAX, &seed)) return bad("-1 or a non-negative integer"); }
    else if (f == "--temp") { if (!(v = value(argv[i]))) return false; if (!to_float(v, &x)) return bad("a number"); sp.temperature = x; }
    else if (f == "--top-k") { if (!(v = value(argv[i]))) return false; if (!to_int(v, 0, INT32_MAX, &n)) return bad("an integer >= 0"); sp.top_k = static_cast<int32_t>(n); }
    else if (f == "--top-p") { if (!(v = value(argv[i]))) return false; if (!to_float(v, &x) || x < 0) return bad("a number >= 0"); sp.top_p = x; }
    else if (f == "--min-p") { if (!(v = value(argv[i]))) return false; if (!to_float(v, &x) || x < 0) return bad("a number >= 0"); sp.min_p = x; }
    else if (f == "--repeat-penalty") { if (!(v = value(argv[i]))) return false; if (!to_float(v, &x) || x <= 0) return bad("a number > 0"); sp.repeat_penalty = x; }
    else if (f == "--repeat-last-n") { if (!(v = value(argv[i]))) return false; if (!to_int(v, -1, INT32_MAX, &n)) return bad("an integer >= -1"); sp.repeat_last_n = static_cast<int32_t>(n); }
    else if (f == "--connect") { if (!(v = value(argv[i]))) return false; o->connect = v; }
    else if (f == "--cluster-secret-file") { if (!(v = value(argv[i]))) return false; o->secret_file = v; }
    else if (f == "--status") o->status = true;
    else if (f == "--cuda-unified") o->session.backend.unified = true;
    else if (f == "--fast-prefill") o->session.backend.fast_prefill = true;
    else if (f == "--backend") {
      if (!(v = value(argv[i]))) return false;
      if (!backend_kind_from_name(v).ok()) return bad("cpu, cuda or auto");
      backend_name = v;
    } else if (f == "--device-budget") {
      if (!(v = value(argv[i]))) return false;
      auto size = parse_size(v);
      if (!size.ok() || size.value() == 0) return bad("a size like 6G or 512M, or a byte count");
      o->session.backend.device_budget = size.value();
    }
    else if (f == "--mem-budget") {
      if (!(v = value(argv[i]))) return false;
      auto size = parse_size(v);
      if (!size.ok() || size.value() == 0) return bad("a size like 384M or 2G, or a byte count");
      o->session.mem_budget = size.value();
    } else if (f == "--kv-type") {
      if (!(v = value(argv[i]))) return false;
      if (std::strcmp(v, "f32") == 0) o->session.kv_type = tensor_type::f32;
      else if (std::strcmp(v, "f16") == 0) o->session.kv_type = tensor_type::f16;
      else return bad("f32 or f16");
    } else {
      *err = "unknown flag '" + f + "' (see --help)";
      return false;
    }
  }
  if (o->status && o->connect.empty()) {
    *err = "--status needs --connect HOST:PORT";
    return false;
  }
  if (o->session.mem_budget > 0 && !o->connect.empty()) {
    *err = "--mem-budget limits a model in this process; a cluster's nodes take lime-node --mem-budget";
    return false;
  }
  if (o->model_path.empty() && o->connect.empty() && !o->help) {
    *err = "no model given: use -m PATH to a GGUF file (or --connect HOST:PORT to a cluster's head)";
    return false;
  }
  // auto with a host memory budget stays on the CPU: the CUDA runtime's own host memory (hundreds of MiB) is outside
  // what the budget accounts for. --backend cuda combines the two explicitly.
  const backend_options& bo = o->session.backend;
  const bool wants_device = bo.device_budget > 0 || bo.unified || bo.fast_prefill;
  o->session.backend.kind = backend_name == "auto" && o->session.mem_budget > 0 && !wants_device
                                ? backend_kind::cpu
                                : backend_kind_from_name(backend_name).value();
  if (bo.kind != backend_kind::cuda && wants_device) {
    *err = backend_name == "auto" ? "--device-budget, --cuda-unified and --fast-prefill need a CUDA device, and none is present"
                                  : "--device-budget, --cuda-unified and --fast-prefill are for --backend cuda";
    return false;
  }
  o->has_seed = seed >= 0;
  sp.seed = seed >= 0 ? static_cast<uint64_t>(seed) : seed_from_entropy();
  return true;
}

}  // namespace lime::app
