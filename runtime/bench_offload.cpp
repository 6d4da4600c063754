// lime-bench offload: per budget, generation tokens/s with the weight store under each policy (cold page cache,
// one untimed warm-up token), the plain-mmap baseline, the measured O_DIRECT bandwidth and the storage bound.
#include "runtime/bench_offload.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <memory>

#include "runtime/forward.h"
#include "runtime/model.h"
#include "runtime/weight_store.h"

namespace lime {

namespace {

using clock_type = std::chrono::steady_clock;

double seconds_since(clock_type::time_point t0) {
  return std::chrono::duration<double>(clock_type::now() - t0).count();
}

double mib(double b) { return b / (1024.0 * 1024.0); }

void drop_cache(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return;
  (void)::fdatasync(fd);
  (void)::posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
  ::close(fd);
}

struct bandwidth {
  double gbps = 0;
  io_mode mode = io_mode::direct;
  std::string note;
  uint64_t bytes = 0;
};

// Cold sequential read of the file's first `probe` bytes with the store's reader settings, into a 64 MiB buffer
// that the requests cycle through (the bytes are discarded).
result<bandwidth> measure_bandwidth(const std::string& path, int32_t io_threads, uint64_t probe) {
  direct_reader_config rc;
  rc.n_threads = io_threads;
  LIME_TRY(std::unique_ptr<direct_reader> r, direct_reader::open(path, rc));
  const uint64_t buf_bytes = 64ull << 20, step = 8ull << 20;
  const uint64_t n = std::min<uint64_t>(probe, r->file_size() / rc.align * rc.align);
  void* buf = ::mmap(nullptr, buf_bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (buf == MAP_FAILED) return make_error(errc::out_of_memory, "bench: cannot map the bandwidth buffer");
  std::memset(buf, 0, buf_bytes);  // fault the pages in outside the timing
  std::vector<read_request> reqs;
  for (uint64_t off = 0; off < n; off += step) {
    const uint64_t len = std::min(step, n - off);
    reqs.push_back(read_request{off, len, len, static_cast<uint8_t*>(buf) + off % buf_bytes});
  }
  // Best of three cold reads: the disk is shared, and the best run is the closest to what the device can do.
  double best = 0;
  for (int rep = 0; rep < 3; ++rep) {
    drop_cache(path);
    const auto t0 = clock_type::now();
    const status st = r->submit(reqs)->wait();
    const double s = seconds_since(t0);
    if (!st.ok()) {
      ::munmap(buf, buf_bytes);
      return st.err();
    }
    best = std::max(best, static_cast<double>(n) / s * 1e-9);
  }
  ::munmap(buf, buf_bytes);
  bandwidth b;
  b.gbps = best;
  b.mode = r->mode();
  b.note = r->mode_note();
  b.bytes = n;
  return b;
}

struct run_row {
  std::string budget, policy, resident = "-", ring = "-", note;
  double tps = 0, read_per_token = 0, wait_ms = -1, compute_ms = -1, setup_s = 0;
  bool ran = false;
};

run_row run_store(const model& m, const std::string& path, const bench_offload_options& o, uint64_t budget,
                  weight_policy pol, bool preserve, double bw_gbps) {
  run_row row;
  row.policy = std::string(weight_policy_name(pol)) + (preserve ? "" : " (no preserve)");
  weight_store_config c;
  c.budget = budget;
  c.policy = pol;
  c.ring_depth = o.ring_depth;
  c.io_threads = o.io_threads;
  c.storage_gbps = bw_gbps;
  c.preserve = preserve;
  drop_cache(path);
  const auto t0 = clock_type::now();
  auto store = weight_store::create(m, path, c);
  if (!store) {
    row.note = store.err().code == errc::out_of_memory ? "below this policy's minimum" : store.err().message;
    return row;
  }
  weight_store& s = **store;
  double warm = 0;
  // Setup: create (resident loads) + one warm-up token that fills the ring. The timed call below starts with its
  // own untimed token, whose reads are inside the counters' window: they are divided by passes, not tokens.
  auto w = bench_offload_decode(m, &s, o.n_threads, 0, &warm);
  if (!w) {
    row.note = w.err().message;
    return row;
  }
  row.setup_s = seconds_since(t0);
  const weight_store_stats a = s.stats();
  auto secs = bench_offload_decode(m, &s, o.n_threads, o.n_gen, nullptr);
  if (!secs) {
    row.note = secs.err().message;
    return row;
  }
  const weight_store_stats b = s.stats();
  const double n = static_cast<double>(o.n_gen);
  row.ran = true;
  row.tps = n / secs.value();
  // The decode helper's own warm-up token is inside [a, b): count n + 1 passes of reads and waits.
  const double passes = static_cast<double>(b.n_passes - a.n_passes);
  row.read_per_token = static_cast<double>((b.bytes_streamed - a.bytes_streamed) + (b.bytes_rows - a.bytes_rows)) / passes;
  row.wait_ms = (b.wait_seconds - a.wait_seconds) * 1e3 / passes;
  row.compute_ms = (b.hold_seconds - a.hold_seconds) * 1e3 / passes;
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%.1f M", mib(static_cast<double>(b.resident_bytes)));
  row.resident = buf;
  std::snprintf(buf, sizeof(buf), "%d x %.1f M", b.ring_depth, mib(static_cast<double>(b.slot_bytes)));
  row.ring = buf;
  return row;
}

std::string fmt(const char* f, double v) {
  char b[48];
  std::snprintf(b, sizeof(b), f, v);
  return b;
}

// The storage bound is printed where a run reads at least 1% of the weights per token (else storage is not what
// limits it).
void print_row(FILE* out, const run_row& r, double bw_gbps, uint64_t weight_bytes) {
  const std::string dash = "-";
  std::string tps = dash, read = dash, bound = dash, pct = dash;
  if (r.ran) {
    tps = fmt("%.2f", r.tps);
    read = fmt("%.1f", mib(r.read_per_token));
    if (r.read_per_token >= 0.01 * static_cast<double>(weight_bytes)) {
      const double b = bw_gbps * 1e9 / r.read_per_token;
      bound = fmt("%.2f", b);
      pct = fmt("%.0f%%", 100.0 * r.tps / b);
    }
  }
  std::fprintf(out, "| %7s | %-24s | %8s | %10s | %10s | %7s | %9s | %7s | %9s | %9s | %7s | %s\n", r.budget.c_str(),
               r.policy.c_str(), r.resident.c_str(), r.ring.c_str(), read.c_str(), tps.c_str(), bound.c_str(), pct.c_str(),
               r.ran && r.wait_ms >= 0 ? fmt("%.1f", r.wait_ms).c_str() : "-",
               r.ran && r.compute_ms >= 0 ? fmt("%.1f", r.compute_ms).c_str() : "-", r.setup_s > 0 ? fmt("%.2f", r.setup_s).c_str() : "-",
               r.note.c_str());
}

}  // namespace

result<double> bench_offload_decode(const model& m, weight_source* src, int n_threads, int32_t n_gen, double* warmup_s,
                                    const decode_hooks* hooks) {
  const model_hparams& hp = m.hparams();
  thread_pool pool(n_threads > 0 ? n_threads : default_thread_count());
  kv_cache_config kc;
  kc.n_layer = hp.n_layer;
  kc.row_elems = hp.n_embd_kv();
  kc.block_size = 32;
  kc.max_blocks = (n_gen + 2 + 31) / 32 + 1;
  LIME_TRY(kv_cache kv, kv_cache::create(kc));
  forward_pass fwd(m, {0, hp.n_layer}, kv, pool, src);
  micro_batch b;
  forward_output out;
  int32_t tok = 1 % hp.n_vocab;
  auto step = [&](int32_t pos) -> status {
    b.clear();
    b.add(tok, pos, 0, true);
    LIME_TRY_VOID(fwd.run(b, out));
    tok = static_cast<int32_t>(std::max_element(out.logits.begin(), out.logits.end()) - out.logits.begin());
    return {};
  };
  if (hooks && hooks->before_warmup) hooks->before_warmup();
  auto t0 = clock_type::now();
  LIME_TRY_VOID(step(0));  // warm-up: first-touch costs and a full ring
  if (warmup_s) *warmup_s = seconds_since(t0);
  if (hooks && hooks->after_warmup) hooks->after_warmup();
  t0 = clock_type::now();
  for (int32_t i = 1; i <= n_gen; ++i) LIME_TRY_VOID(step(i));
  return seconds_since(t0);
}

result<uint64_t> parse_budget(const std::string& s, uint64_t whole) {
  if (s.empty()) return make_error(errc::invalid_argument, "empty budget");
  char* end = nullptr;
  const double v = std::strtod(s.c_str(), &end);
  if (end == s.c_str() || !(v > 0)) return make_error(errc::invalid_argument, "bad budget '" + s + "'");
  const std::string unit(end);
  double mult = 1;
  if (unit == "%") return static_cast<uint64_t>(v / 100.0 * static_cast<double>(whole));
  if (unit == "K" || unit == "k" || unit == "KiB") mult = 1024.0;
  else if (unit == "M" || unit == "m" || unit == "MiB") mult = 1024.0 * 1024.0;
  else if (unit == "G" || unit == "g" || unit == "GiB") mult = 1024.0 * 1024.0 * 1024.0;
  else if (!unit.empty()) return make_error(errc::invalid_argument, "bad budget unit in '" + s + "' (%, K, M, G)");
  return static_cast<uint64_t>(v * mult);
}

status bench_offload(const bench_offload_options& opts, FILE* out) {
  bench_offload_options o = opts;
  if (o.budgets.empty()) o.budgets = {"100%", "75%", "50%", "25%"};
  if (o.n_gen < 1) o.n_gen = 1;
  if (o.reps < 1) o.reps = 1;
  LIME_TRY(model m, model::load(o.model_path));
  const uint64_t wb = m.weight_bytes();
  std::vector<uint64_t> budgets;
  for (const std::string& b : o.budgets) {
    LIME_TRY(uint64_t v, parse_budget(b, wb));
    budgets.push_back(v);
  }
  LIME_TRY(bandwidth bw, measure_bandwidth(o.model_path, o.io_threads, o.bw_probe_bytes));
  const int threads = o.n_threads > 0 ? o.n_threads : default_thread_count();
  std::fprintf(out, "model: %s\nweights: %.1f MiB; threads %d; %d timed tokens per run after 1 warm-up token; cold page cache before each run; "
                    "median of %d interleaved runs\n",
               m.describe().c_str(), mib(static_cast<double>(wb)), threads, o.n_gen, o.reps);
  std::fprintf(out, "storage: %s cold read %.2f GB/s (best of 3 reads of %.0f MiB, %d I/O threads)%s%s\n\n", io_mode_name(bw.mode), bw.gbps,
               mib(static_cast<double>(bw.bytes)), o.io_threads, bw.note.empty() ? "" : "; ", bw.note.c_str());
  std::fprintf(out, "| budget  | policy                   | resident | ring       | read MiB/t | t/s     | bound t/s | %% bound | wait ms/t | comp ms/t | setup s | t/s range\n");
  std::fprintf(out, "| ------: | ------------------------ | -------: | ---------: | ---------: | ------: | --------: | ------: | --------: | --------: | ------: | ---------\n");
  std::vector<std::string> summary;
  for (size_t i = 0; i < budgets.size(); ++i) {
    char label[32];
    std::snprintf(label, sizeof(label), "%s", o.budgets[i].c_str());
    // Every configuration runs `reps` times, interleaved and in a rotated order (the shared disk and CPUs drift);
    // the row shown is the run with the median t/s, with the range of all runs.
    std::vector<std::function<run_row()>> configs;
    configs.push_back([&] { return run_store(m, o.model_path, o, budgets[i], weight_policy::lime, true, bw.gbps); });
    if (o.ablation) configs.push_back([&] { return run_store(m, o.model_path, o, budgets[i], weight_policy::lime, false, bw.gbps); });
    configs.push_back([&] { return run_store(m, o.model_path, o, budgets[i], weight_policy::synchronous, true, bw.gbps); });
    configs.push_back([&] { return run_store(m, o.model_path, o, budgets[i], weight_policy::whole_layer, true, bw.gbps); });
    if (o.mmap_baseline) {
      configs.push_back([&] {
        run_row r;
        r.policy = "mmap (cgroup cap)";
        const mmap_run mr = bench_offload_mmap(o.model_path, budgets[i], threads, o.n_gen);
        r.ran = mr.ran;
        r.note = mr.note;
        r.tps = mr.tokens_per_s;
        r.read_per_token = mr.read_bytes_per_token;
        return r;
      });
    }
    std::vector<std::vector<run_row>> runs(configs.size());
    for (int32_t rep = 0; rep < o.reps; ++rep)
      for (size_t k = 0; k < configs.size(); ++k) {
        const size_t c = (k + static_cast<size_t>(rep)) % configs.size();
        runs[c].push_back(configs[c]());
      }
    std::vector<run_row> rows;
    for (std::vector<run_row>& rr : runs) {
      std::sort(rr.begin(), rr.end(), [](const run_row& a, const run_row& b) { return a.tps < b.tps; });
      run_row r = rr[rr.size() / 2];
      if (r.ran && rr.size() > 1) r.note = fmt("%.2f", rr.front().tps) + ".." + fmt("%.2f", rr.back().tps) + (r.note.empty() ? "" : "; " + r.note);
      rows.push_back(r);
    }
    for (run_row& r : rows) {
      r.budget = label;
      print_row(out, r, bw.gbps, wb);
    }
    std::fflush(out);
    const run_row& lime_row = rows[0];
    std::string line = std::string(label) + ":";
    for (size_t k = 1; k < rows.size(); ++k)
      if (lime_row.ran && rows[k].ran && rows[k].tps > 0) {
        char s[96];
        std::snprintf(s, sizeof(s), " %.2fx %s,", lime_row.tps / rows[k].tps, rows[k].policy.c_str());
        line += s;
      }
    if (line.back() == ',') line.pop_back();
    summary.push_back(line);
  }
  std::fprintf(out, "\nlime's speed relative to the others (t/s ratio):\n");
  for (const std::string& s : summary) std::fprintf(out, "  %s\n", s.c_str());
  std::fprintf(out, "\nread = bytes read from storage per token (ring + embedding rows; mmap: the child's /proc read_bytes);\n"
                    "bound t/s = storage bandwidth / read (shown where a run reads >= 1%% of the weights per token);\n"
                    "wait = compute thread blocked on reads; comp = layers held by the compute thread (compute time), per token;\n"
                    "setup = weight store creation (resident loads) + one warm-up token.\n"
                    "mmap: lime's mapped-file forward pass in a child process whose memory cgroup is capped at its usage before the\n"
                    "first token + the budget, so the page cache holding the weights gets only the budget (as llama.cpp's mmap would).\n");
  return {};
}

}  // namespace lime
