// lime-node's flags.
#include "apps/node_options.h"

#include <cstdlib>
#include <cstring>

#include "apps/net_args.h"
#include "runtime/placement.h"

namespace lime::app {
namespace {

bool to_int(const char* s, int64_t lo, int64_t hi, int64_t* out) {
  char* end = nullptr;
  errno = 0;
  const long long v = std::strtoll(s, &end, 10);
  if (errno || end == s || *end || v < lo || v > hi) return false;
  *out = v;
  return true;
}

// KIND:ACTION:PROB[:DELAY_MS], e.g. micro_batch:drop:0.05 or *:delay:0.1:50.
result<fault_rule> parse_fault(const std::string& text) {
  std::vector<std::string> parts;
  size_t start = 0;
  for (;;) {
    const size_t colon = text.find(':', start);
    parts.push_back(text.substr(start, colon == std::string::npos ? std::string::npos : colon - start));
    if (colon == std::string::npos) break;
    start = colon + 1;
  }
  auto bad = [&](const std::string& why) { return make_error(errc::invalid_argument, "--fault '" + text + "': " + why); };
  if (parts.size() < 3 || parts.size() > 4) return bad("expected KIND:ACTION:PROB[:DELAY_MS]");
  fault_rule r;
  r.kind = parts[0];
  static const char* const actions[] = {"drop", "delay", "duplicate", "corrupt", "disconnect"};
  bool found = false;
  for (int a = 0; a < 5; ++a)
    if (parts[1] == actions[a]) {
      r.action = static_cast<fault_action>(a);
      found = true;
    }
  if (!found) return bad("action must be drop, delay, duplicate, corrupt or disconnect");
  char* end = nullptr;
  r.probability = std::strtod(parts[2].c_str(), &end);
  if (end == parts[2].c_str() || *end || !(r.probability >= 0 && r.probability <= 1)) return bad("probability must be in [0, 1]");
  if (parts.size() == 4) {
    int64_t ms = 0;
    if (!to_int(parts[3].c_str(), 0, 600000, &ms)) return bad("delay must be 0..600000 ms");
    r.delay_ms = static_cast<uint32_t>(ms);
  }
  return r;
}

}  // namespace

const char* node_usage() {
  return "usage: lime-node --listen HOST:PORT -m MODEL [options]          (a worker)\n"
         "       lime-node --head --listen HOST:PORT -m MODEL --peers HOST:PORT,...   (the head; it runs layers too)\n"
         "       lime-node --cluster FILE --name NAME                      (from a TOML cluster file)\n"
         "  --listen HOST:PORT          where peers and clients connect (port 0: a free one; prints 'listening: HOST:PORT')\n"
         "  -m, --model PATH            GGUF model file (every node must serve the same file)\n"
         "  --name NAME                 this node's name (default: HOSTNAME-PID)\n"
         "  --mem-budget SIZE           memory for weights + KV + activations on this node (512M, 2G, bytes; default:\n"
         "                              no limit); weights that do not fit are streamed from the model file\n"
         "  --join HOST:PORT            a worker dials the head itself (it need not be in the head's --peers)\n"
         "  --head                      this node is the head: scheduler, supervisor, client requests\n"
         "  --peers HOST:PORT,...       head: workers to dial and wait for before the first placement\n"
         "  --placement NAME=LO-HI,...  head: a fixed placement (default: layers in proportion to memory budgets)\n"
         "  --cluster-secret-file F     the cluster secret (HMAC); every node and client needs the same\n"
         "  --verify-model              identify the model by a hash of the whole file (all nodes must use it)\n"
         "  -t, --threads N             compute threads per layer group (default: all CPUs)\n"
         "  -c, --ctx-size N            head: context per sequence (default: the model's, capped at 4096)\n"
         "  --parallel N                head: sequences in the pipeline at once (default 8; more wait)\n"
         "  -b, --batch-size N          head: rows per micro-batch (default 512); every node sizes its activations\n"
         "                              by it (and by --parallel): give workers with a budget the head's values\n"
         "  --peer-wait-ms N            head: how long to wait for --peers before placing (default 10000)\n"
         "  --batch-timeout-ms N        head: a micro-batch not back by then is replayed (default 30000)\n"
         "  --heartbeat-ms N            heartbeat interval (default 200)\n"
         "  --heartbeat-timeout-ms N    silence after which a peer is lost (default 1000)\n"
         "  --crash-after-batches N     test hook: exit abruptly after running N micro-batches\n"
         "  --fault KIND:ACTION:P[:MS]  test hook: inject faults on outgoing frames (drop, delay, duplicate, corrupt,\n"
         "                              disconnect; KIND a frame kind such as micro_batch, or *); repeatable\n"
         "  --fault-seed N              seed of the fault rolls (default 1)\n"
         "  --log-level LEVEL           trace, debug, info (default), warn, error\n"
         "  --backend cpu|cuda|auto     where layer groups compute (default auto: cuda when a device is present and\n"
         "                              no --mem-budget is given, else cpu)\n"
         "  --device-budget SIZE        cuda: device memory for weights + KV + activations (default: free - 256M)\n"
         "  --cuda-unified              cuda: kernels read weights in place from registered host memory (automatic on\n"
         "                              integrated GPUs; forces it on a discrete GPU for testing)\n"
         "  --fast-prefill              cuda: prompt batches of 16+ tokens through cuBLAS in fp16: faster, but NOT\n"
         "                              bitwise the CPU path's logits and not batch-invariant (decode stays exact)\n";
}

result<node_cli_options> parse_node_options(int argc, char** argv) {
  node_cli_options o;
  std::string backend_name = "auto";
  // A cluster file first (later flags override it): it needs --name, which may come after it.
  for (int i = 1; i + 1 < argc; ++i) {
    if (std::strcmp(argv[i], "--name") == 0) o.node.name = argv[i + 1];
    if (std::strcmp(argv[i], "--cluster") == 0) o.cluster_file = argv[i + 1];
  }
  if (!o.cluster_file.empty()) {
    if (o.node.name.empty()) return make_error(errc::invalid_argument, "--cluster needs --name NAME");
    LIME_TRY_VOID(apply_cluster_file(o.cluster_file, &o));
  }
  for (int i = 1; i < argc; ++i) {
    const std::string f = argv[i];
    auto value = [&]() -> result<std::string> {
      if (i + 1 >= argc) return make_error(errc::invalid_argument, "flag " + f + " needs a value");
      return std::string(argv[++i]);
    };
    auto int_value = [&](int64_t lo, int64_t hi) -> result<int64_t> {
      LIME_TRY(std::string v, value());
      int64_t n = 0;
      if (!to_int(v.c_str(), lo, hi, &n))
        return make_error(errc::invalid_argument, "bad value '" + v + "' for " + f + " (" + std::to_string(lo) + ".." + std::to_string(hi) + ")");
      return n;
    };
    if (f == "-h" || f == "--help") o.help = true;
    else if (f == "--head") o.node.head = true;
    else if (f == "--verify-model") o.verify_model = true;
    else if (f == "--cuda-unified") o.backend.unified = true;
    else if (f == "--fast-prefill") o.backend.fast_prefill = true;
    else if (f == "--backend") {
      LIME_TRY(backend_name, value());
      LIME_TRY_VOID(backend_kind_from_name(backend_name));
    } else if (f == "--device-budget") {
      LIME_TRY(std::string v, value());
      LIME_TRY(o.backend.device_budget, parse_size(v));
    }
    else if (f == "--name") { LIME_TRY(o.node.name, value()); }
    else if (f == "--cluster") { LIME_TRY(o.cluster_file, value()); }
    else if (f == "-m" || f == "--model") { LIME_TRY(o.model_path, value()); }
    else if (f == "--cluster-secret-file") { LIME_TRY(o.secret_file, value()); }
    else if (f == "--placement") { LIME_TRY(o.node.placement, value()); }
    else if (f == "--log-level") { LIME_TRY(o.log_level, value()); }
    else if (f == "--listen") { LIME_TRY(std::string v, value());
      LIME_TRY(o.node.listen, parse_host_port(v)); }
    else if (f == "--join") { LIME_TRY(std::string v, value());
      LIME_TRY(o.node.join, parse_host_port(v)); }
    else if (f == "--mem-budget") { LIME_TRY(std::string v, value());
      LIME_TRY(o.node.mem_budget, parse_size(v)); }
    else if (f == "--peers") {
      LIME_TRY(std::string v, value());
      o.node.peers.clear();
      size_t start = 0;
      while (start <= v.size()) {
        const size_t comma = v.find(',', start);
        const std::string item = v.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
        if (!item.empty()) { LIME_TRY(host_port hp, parse_host_port(item)); o.node.peers.push_back(hp); }
        if (comma == std::string::npos) break;
        start = comma + 1;
      }
    }
    else if (f == "-t" || f == "--threads") { LIME_TRY(int64_t n, int_value(1, 1024)); o.node.n_threads = static_cast<int32_t>(n); }
    else if (f == "-c" || f == "--ctx-size") { LIME_TRY(int64_t n, int_value(0, 1 << 24)); o.node.n_ctx = static_cast<int32_t>(n); }
    else if (f == "--parallel") { LIME_TRY(int64_t n, int_value(1, 4096)); o.node.max_active = static_cast<int32_t>(n); }
    else if (f == "-b" || f == "--batch-size") { LIME_TRY(int64_t n, int_value(1, 1 << 16)); o.node.max_batch_tokens = static_cast<int32_t>(n); }
    else if (f == "--peer-wait-ms") { LIME_TRY(int64_t n, int_value(0, 1 << 30)); o.node.peer_wait = std::chrono::milliseconds(n); }
    else if (f == "--batch-timeout-ms") { LIME_TRY(int64_t n, int_value(1, 1 << 30)); o.node.batch_timeout = std::chrono::milliseconds(n); }
    else if (f == "--heartbeat-ms") { LIME_TRY(int64_t n, int_value(1, 1 << 30)); o.node.heartbeat_interval = std::chrono::milliseconds(n); }
    else if (f == "--heartbeat-timeout-ms") { LIME_TRY(int64_t n, int_value(1, 1 << 30)); o.node.heartbeat_timeout = std::chrono::milliseconds(n); }
    else if (f == "--fault") {
      LIME_TRY(std::string v, value());
      LIME_TRY(fault_rule r, parse_fault(v));
      o.faults.rules.push_back(r);
    }
    else if (f == "--fault-seed") { LIME_TRY(int64_t n, int_value(0, INT64_MAX)); o.faults.seed = static_cast<uint64_t>(n); }
    else if (f == "--crash-after-batches") { LIME_TRY(int64_t n, int_value(0, INT64_MAX)); o.node.crash_after_batches = n; }
    else return make_error(errc::invalid_argument, "unknown flag '" + f + "' (see --help)");
  }
  if (o.help) return o;
  // auto with a memory budget stays on the CPU: the CUDA runtime's host memory is outside the budget's accounting.
  const bool wants_device = o.backend.device_budget > 0 || o.backend.unified || o.backend.fast_prefill;
  o.backend.kind = backend_name == "auto" && o.node.mem_budget > 0 && !wants_device
                       ? backend_kind::cpu
                       : backend_kind_from_name(backend_name).value();
  if (o.backend.kind != backend_kind::cuda && wants_device)
    return make_error(errc::invalid_argument,
                      "--device-budget, --cuda-unified and --fast-prefill are for the cuda backend (none is used)");
  if (o.model_path.empty()) return make_error(errc::invalid_argument, "no model given: use -m PATH to a GGUF file");
  if (!o.node.head && !o.node.peers.empty()) return make_error(errc::invalid_argument, "--peers is for the head (add --head)");
  if (o.node.head && o.node.join.port != 0) return make_error(errc::invalid_argument, "the head does not --join");
  return o;
}

}  // namespace lime::app
