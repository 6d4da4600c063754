// lime-bench: prints kernel and generation benchmarks (runtime/bench.h). `kernels` measures the roofline and
// matvec/matmul per type at real shapes; `generate` prints a llama-bench-style table for a model file; `offload`
// compares weight-streaming policies under memory budgets (runtime/bench_offload.h).
#include <cstdio>
#include <cstdlib>
#include <sstream>
#include <string>
#include <vector>

#include "runtime/bench.h"
#include "runtime/bench_offload.h"
#include "runtime/placement.h"

namespace {

void usage() {
  std::fprintf(stderr,
               "usage: lime-bench kernels [--types f32,q4_0,...] [--shapes stories110M,llama-3.2-1b] [--batches 16,64,512]\n"
               "                          [--matmuls ffn_up,ffn_down,attn_q,output]\n"
               "                          [-t THREADS] [--stream-mib N] [--max-gflop F] [--bw-mib N] [--backend cpu|cuda]\n"
               "       lime-bench generate -m MODEL.gguf [-t THREADS] [-p 128,512] [-n 128] [-r REPS] [-d 512,2048]\n"
               "                           [--bw-mib N] [--seqs 2,4,8] [--kv-type f32|f16]"
               " [--backend cpu|cuda|auto] [--device-budget SIZE]\n"
               "                           [--cuda-unified] [--fast-prefill]\n"
               "       lime-bench offload -m MODEL.gguf [--budgets 100%%,75%%,50%%,25%%|384M,...] [-t THREADS] [-n 16] [-r 3]\n"
               "                          [--io-threads 2] [--ring-depth 0] [--no-mmap] [--no-ablation]\n");
}

std::vector<std::string> split(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream ss(s);
  std::string item;
  while (std::getline(ss, item, ',')) if (!item.empty()) out.push_back(item);
  return out;
}

bool to_int(const std::string& s, long long lo, long long hi, long long* v) {
  char* end = nullptr;
  *v = std::strtoll(s.c_str(), &end, 10);
  return !s.empty() && !*end && *v >= lo && *v <= hi;
}

bool to_ints(const std::string& s, std::vector<int32_t>* out) {
  for (const std::string& p : split(s)) {
    long long v = 0;
    if (!to_int(p, 1, 1 << 20, &v)) return false;
    out->push_back(static_cast<int32_t>(v));
  }
  return !out->empty();
}

}  // namespace

int main(int argc, char** argv) {
  using namespace lime;
  if (argc < 2) { usage(); return 2; }
  const std::string cmd = argv[1];
  bench_kernels_options ko;
  bench_generate_options go;
  bench_offload_options oo;
  std::string backend = "cpu";  // kernels only
  if (cmd == "generate") go.backend.kind = backend_default();  // cuda when built with it and a device is present
  for (int i = 2; i < argc; ++i) {
    const std::string a = argv[i];
    if (cmd == "offload" && (a == "--no-mmap" || a == "--no-ablation")) {  // flags without a value
      (a == "--no-mmap" ? oo.mmap_baseline : oo.ablation) = false;
      continue;
    }
    if (cmd == "generate" && (a == "--cuda-unified" || a == "--fast-prefill")) {
      (a == "--cuda-unified" ? go.backend.unified : go.backend.fast_prefill) = true;
      continue;
    }
    if (i + 1 >= argc) { std::fprintf(stderr, "error: %s needs a value\n", a.c_str()); return 2; }
    const std::string v = argv[++i];
    long long n = 0;
    bool ok = true;
    if (a == "-t" || a == "--threads") {
      ok = to_int(v, 1, 4096, &n);
      ko.n_threads = go.n_threads = oo.n_threads = static_cast<int>(n);
    } else if (a == "--bw-mib") {
      ok = to_int(v, 16, 1 << 20, &n);
      ko.bw_buffer_bytes = go.bw_buffer_bytes = static_cast<uint64_t>(n) << 20;
    } else if (cmd == "kernels" && a == "--types") {
      for (const std::string& t : split(v)) {
        tensor_type tt;
        if (!tensor_type_from_name(t.c_str(), &tt)) { std::fprintf(stderr, "error: unknown type '%s'\n", t.c_str()); return 2; }
        ko.types.push_back(tt);
      }
    } else if (cmd == "kernels" && a == "--shapes") {
      ko.shapes = split(v);
    } else if (cmd == "kernels" && a == "--matmuls") {
      ko.matmuls = split(v);
    } else if (cmd == "kernels" && a == "--batches") {
      ok = to_ints(v, &ko.batches);
    } else if (cmd == "kernels" && a == "--stream-mib") {
      ok = to_int(v, 1, 1 << 20, &n);
      ko.stream_bytes = static_cast<uint64_t>(n) << 20;
    } else if (cmd == "kernels" && a == "--backend") {
      backend = v;
      ok = v == "cpu" || v == "cuda";
    } else if (cmd == "kernels" && a == "--max-gflop") {
      ko.max_gflop = std::strtod(v.c_str(), nullptr);
      ok = ko.max_gflop > 0;
    } else if (cmd == "generate" && (a == "-m" || a == "--model")) {
      go.model_path = v;
    } else if (cmd == "generate" && (a == "-p" || a == "--n-prompt")) {
      ok = to_ints(v, &go.n_prompt);
    } else if (cmd == "generate" && (a == "-n" || a == "--n-gen")) {
      ok = to_int(v, 0, 1 << 20, &n);
      go.n_gen = static_cast<int32_t>(n);
    } else if (cmd == "generate" && (a == "-r" || a == "--repetitions")) {
      ok = to_int(v, 1, 1000, &n);
      go.reps = static_cast<int32_t>(n);
    } else if (cmd == "generate" && (a == "-d" || a == "--n-depth")) {
      ok = to_ints(v, &go.depths);  // each >= 1: depth 0 is the plain tg row
    } else if (cmd == "generate" && a == "--seqs") {
      ok = to_ints(v, &go.n_seqs);
      for (int32_t b : go.n_seqs) ok = ok && b >= 1 && b <= 256;
    } else if (cmd == "generate" && a == "--kv-type") {
      ok = v == "f32" || v == "f16";
      go.kv_type = v == "f16" ? tensor_type::f16 : tensor_type::f32;
    } else if (cmd == "generate" && a == "--backend") {
      auto k = backend_kind_from_name(v);
      ok = k.ok();
      if (ok) go.backend.kind = k.value();
    } else if (cmd == "generate" && a == "--device-budget") {
      auto b = parse_size(v);
      ok = b.ok() && b.value() > 0;
      if (ok) go.backend.device_budget = b.value();
    } else if (cmd == "offload" && (a == "-m" || a == "--model")) {
      oo.model_path = v;
    } else if (cmd == "offload" && a == "--budgets") {
      oo.budgets = split(v);
    } else if (cmd == "offload" && (a == "-n" || a == "--n-gen")) {
      ok = to_int(v, 1, 1 << 20, &n);
      oo.n_gen = static_cast<int32_t>(n);
    } else if (cmd == "offload" && (a == "-r" || a == "--repetitions")) {
      ok = to_int(v, 1, 1000, &n);
      oo.reps = static_cast<int32_t>(n);
    } else if (cmd == "offload" && a == "--io-threads") {
      ok = to_int(v, 1, 64, &n);
      oo.io_threads = static_cast<int32_t>(n);
    } else if (cmd == "offload" && a == "--ring-depth") {
      ok = to_int(v, 0, 64, &n);
      oo.ring_depth = static_cast<int32_t>(n);
    } else {
      std::fprintf(stderr, "error: unknown argument '%s' for '%s'\n", a.c_str(), cmd.c_str());
      usage();
      return 2;
    }
    if (!ok) { std::fprintf(stderr, "error: bad value '%s' for %s\n", v.c_str(), a.c_str()); return 2; }
  }
  if (go.backend.kind != backend_kind::cuda && (go.backend.device_budget > 0 || go.backend.unified || go.backend.fast_prefill)) {
    std::fprintf(stderr, "error: --device-budget, --cuda-unified and --fast-prefill are for --backend cuda\n");
    return 2;
  }
  status st;
  if (cmd == "kernels" && backend == "cuda") {
#if defined(LIME_HAVE_CUDA)
    st = bench_kernels_cuda(ko, stdout);
#else
    std::fprintf(stderr, "error: this lime-bench was built without CUDA (configure with -DLIME_CUDA=ON)\n");
    return 2;
#endif
  } else if (cmd == "kernels") {
    st = bench_kernels(ko, stdout);
  } else if (cmd == "generate") {
    if (go.model_path.empty()) { std::fprintf(stderr, "error: -m MODEL is required\n"); return 2; }
    st = bench_generate(go, stdout);
  } else if (cmd == "offload") {
    if (oo.model_path.empty()) { std::fprintf(stderr, "error: -m MODEL is required\n"); return 2; }
    st = bench_offload(oo, stdout);
  } else {
    usage();
    return 2;
  }
  if (!st) { std::fprintf(stderr, "error: %s\n", st.err().message.c_str()); return 1; }
  return 0;
}
