// lime-bench generate: prompt processing (ppN) and generation (tgN) throughput of a model through session, printed
// as llama-bench's markdown table so the two can be read side by side, plus the tg bandwidth roofline (CPU: paired
// probes; GPU: the device's copy rates); with --seqs, batched decode rows (tgN xB, bench_generate_batched.cpp).
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <memory>

#include "kernels/cpu/cpu_tuning.h"
#include "runtime/bench.h"
#include "runtime/model.h"
#include "runtime/sampler.h"
#include "runtime/session.h"
#include "runtime/vocab.h"

namespace lime {
namespace {

struct test_result {
  std::string name;          // "pp512", "tg128"
  std::vector<double> ts;     // tokens/s of each run
  std::vector<double> probe;  // CPU: the peak around each run (pp: FMA GFLOP/s, tg: read GB/s), see paired_line
};

double stddev(const std::vector<double>& v) {
  if (v.size() < 2) return 0.0;
  double mean = 0;
  for (double x : v) mean += x;
  mean /= static_cast<double>(v.size());
  double ss = 0;
  for (double x : v) ss += (x - mean) * (x - mean);
  return std::sqrt(ss / static_cast<double>(v.size() - 1));
}

// The GPU's two copy rates, the rooflines of its decode rows: device to device (bytes read + written) and
// page-locked host to device (streamed weights), 256 MiB each, best of 5, timed around copy + synchronize through the
// backend interface on a second backend of the same device (the session's may have too small a budget).
struct device_links {
  double d2d_gbs = 0, h2d_gbs = 0;
};

result<device_links> measure_device_links(const backend_options& session_opts) {
  backend_options o = session_opts;
  o.device_budget = 0;
  o.unified = false;
  LIME_TRY(std::shared_ptr<backend> be, make_backend(o));
  const uint64_t bytes = 256ull << 20;
  struct held {
    backend& be;
    void *a = nullptr, *b = nullptr, *h = nullptr;
    stream_handle s = nullptr;
    ~held() {
      be.free(a);
      be.free(b);
      be.free_host(h);
      be.stream_destroy(s);
    }
  } m{*be};
  LIME_TRY(m.a, be->alloc(bytes));
  LIME_TRY(m.b, be->alloc(bytes));
  LIME_TRY(m.h, be->alloc_host(bytes));
  LIME_TRY(m.s, be->stream_create());
  std::memset(m.h, 1, bytes);
  auto best_seconds = [&](void* dst, const void* src, copy_kind kind) -> result<double> {
    double best = 1e30;
    for (int i = 0; i < 6; ++i) {  // the first one warms up
      const auto t0 = std::chrono::steady_clock::now();
      LIME_TRY_VOID(be->copy_async(dst, src, bytes, kind, m.s));
      LIME_TRY_VOID(be->synchronize(m.s));
      const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      if (i > 0) best = std::min(best, s);
    }
    return best;
  };
  device_links l;
  LIME_TRY(double h2d, best_seconds(m.a, m.h, copy_kind::host_to_device));
  LIME_TRY(double d2d, best_seconds(m.b, m.a, copy_kind::device_to_device));
  l.h2d_gbs = static_cast<double>(bytes) / h2d * 1e-9;
  l.d2d_gbs = 2.0 * static_cast<double>(bytes) / d2d * 1e-9;
  return l;
}

// Bytes of weights one decoded token reads: every layer's weights, the final norm and the head, plus one embedding
// row. The roofline of the tg rows, CPU and GPU alike.
uint64_t weight_bytes_per_token(const model& m) {
  const weight_view& e = m.tok_embd();
  return m.weight_bytes() - (m.tied_embeddings() ? 0 : e.n_bytes) + e.n_bytes / static_cast<uint64_t>(e.n_rows);
}

// "llama 1B Q4_K - Medium" in llama-bench's style: architecture, size class from the parameter count, file type.
std::string model_label(const model& m, uint64_t n_params) {
  const gguf_file& f = m.file();
  const uint32_t ft = f.get_or<uint32_t>("general.file_type", 0xffffffffu);
  const char* names[][2] = {{"0", "all F32"}, {"1", "F16"}, {"2", "Q4_0"}, {"3", "Q4_1"}, {"7", "Q8_0"},
                            {"8", "Q5_0"}, {"9", "Q5_1"}, {"15", "Q4_K - Medium"}, {"17", "Q5_K - Medium"},
                            {"18", "Q6_K"}, {"32", "BF16"}};
  std::string type = "?";
  for (const auto& n : names)
    if (std::to_string(ft) == n[0]) type = n[1];
  char size[32];
  const double p = static_cast<double>(n_params);
  if (p < 1e9) std::snprintf(size, sizeof(size), "%.0fM", p * 1e-6);
  else std::snprintf(size, sizeof(size), "%.0fB", p * 1e-9);
  return m.hparams().arch + " " + size + " " + type;
}

// Each run's rate (units of work per token x tokens/s) over the peak probed around it, median over the runs, with
// the probes' range: ", paired with probes around each run: 61.2% (median of 3; probes 170.1-236.4 GFLOP/s)".
std::string paired_line(const test_result& r, double work_per_token, const char* unit) {
  if (r.probe.size() != r.ts.size() || r.probe.empty()) return "";
  std::vector<double> ratio;
  for (size_t i = 0; i < r.ts.size(); ++i) ratio.push_back(r.ts[i] * work_per_token / r.probe[i]);
  const auto [lo, hi] = std::minmax_element(r.probe.begin(), r.probe.end());
  char buf[160];
  std::snprintf(buf, sizeof(buf), "; paired with probes around each run: %.1f%% (median of %zu; probes %.1f-%.1f %s)",
                100.0 * bench_median(ratio), ratio.size(), *lo, *hi, unit);
  return buf;
}

uint64_t count_params(const gguf_file& f) {
  uint64_t n = 0;
  for (const gguf_tensor_info& t : f.tensors()) n += static_cast<uint64_t>(t.n_elements());
  return n;
}

}  // namespace

status bench_generate(const bench_generate_options& opts, FILE* out) {
  bench_generate_options o = opts;
  if (o.n_prompt.empty()) o.n_prompt = {128, 512};
  if (o.reps < 1) o.reps = 1;
  LIME_TRY(model m, model::load(o.model_path));
  const model_hparams& hp = m.hparams();
  vocab voc;
  if (auto v = vocab_load(m.file()); v.ok()) voc = std::move(v.value());  // only for end-of-generation ids

  session_config cfg;
  cfg.n_threads = o.n_threads;
  int32_t need = o.n_gen + 1;
  for (int32_t p : o.n_prompt) need = std::max(need, p);
  for (int32_t d : o.depths) need = std::max(need, d + o.n_gen + 1);
  cfg.n_ctx = need;
  cfg.kv_type = o.kv_type;
  cfg.n_batch = 512;
  cfg.backend = o.backend;
  LIME_TRY(std::unique_ptr<session> s, session::create(m, voc, cfg));
  const bool on_cuda = s->device().kind() == backend_kind::cuda;

  // Prompt ids drawn uniformly from the vocabulary (speed does not depend on which tokens they are).
  auto prompt_of = [&](int32_t n, uint64_t run) {
    std::vector<int32_t> p(static_cast<size_t>(n));
    for (int32_t i = 0; i < n; ++i)
      p[static_cast<size_t>(i)] = static_cast<int32_t>(rng_uniform(o.seed + run, static_cast<uint64_t>(i)) * static_cast<float>(hp.n_vocab)) % hp.n_vocab;
    return p;
  };

  // Warm-up (not counted): pages the weights in and sizes the scratch buffers.
  s->reset();
  {
    auto warm = s->eval_logits(prompt_of(std::min<int32_t>(16, need), 999));
    if (!warm) return warm.err();
  }

  // Paired probes (CPU): on a shared machine the FMA peak and the read bandwidth move by a third within seconds,
  // so each timed run is also compared with the peak measured just before and just after it (their mean). The
  // bandwidth probe streams the whole buffer, so a tg run starts with its weights out of the caches: its first
  // token reads them from memory (about 0.5 % of tg128 for stories110M, whose weights otherwise stay in L3).
  const cpu::isa isa = cpu::isa_best();
  std::unique_ptr<thread_pool> probe_pool;
  std::unique_ptr<bench_buffer> bw_buf;
  int64_t fma_iters = 0;
  if (!on_cuda) {
    probe_pool = std::make_unique<thread_pool>(s->n_threads());
    bw_buf = std::make_unique<bench_buffer>(o.bw_buffer_bytes);
    fma_iters = bench_fma_iters(isa, 0.02);  // 20-40 ms a probe
  }
  auto fma_probe = [&] { return bench_fma_probe(*probe_pool, isa, fma_iters); };
  auto bw_probe = [&] { return bench_read_bandwidth(*probe_pool, isa, bw_buf->data(), bw_buf->size(), 1); };

  std::vector<test_result> results;
  for (int32_t p : o.n_prompt) {
    test_result r{"pp" + std::to_string(p), {}, {}};
    for (int32_t rep = 0; rep < o.reps; ++rep) {
      s->reset();  // fresh KV: nothing to reuse
      const std::vector<int32_t> prompt = prompt_of(p, static_cast<uint64_t>(rep));
      sampling_params sp;
      sp.temperature = 0.f;
      const double before = on_cuda ? 0.0 : fma_probe();
      LIME_TRY(generation_stats st, s->generate(prompt, sp, 0, nullptr, nullptr, true));
      r.ts.push_back(static_cast<double>(p) / st.prompt_seconds);
      if (!on_cuda) r.probe.push_back(0.5 * (before + fma_probe()));
    }
    results.push_back(r);
  }
  // tg at depth 0 (the last of these rows is the one the roofline line reads) and at each depth of o.depths.
  std::vector<int32_t> tg_depths;
  if (o.n_gen > 0) {
    tg_depths = o.depths;
    tg_depths.push_back(0);
  }
  for (int32_t d : tg_depths) {
    test_result r{"tg" + std::to_string(o.n_gen) + (d > 0 ? " @ d" + std::to_string(d) : ""), {}, {}};
    for (int32_t rep = 0; rep < o.reps; ++rep) {
      s->reset();
      sampling_params sp;
      sp.temperature = 0.f;
      // The context first (not timed), then one more prompt token and n_gen - 1 decodes: n_gen forward passes of
      // one token each, as llama-bench's tg.
      std::vector<int32_t> prompt = prompt_of(d + 1, 100 + static_cast<uint64_t>(rep));
      if (d > 0) {
        LIME_TRY_VOID(s->generate(std::vector<int32_t>(prompt.begin(), prompt.begin() + d), sp, 0, nullptr, nullptr, true));
      }
      const double before = on_cuda ? 0.0 : bw_probe();
      LIME_TRY(generation_stats st, s->generate(prompt, sp, o.n_gen, nullptr, nullptr, true));
      if (st.n_prompt_cached != d) {
        const std::string got = std::to_string(st.n_prompt_cached) + " of " + std::to_string(d);
        return make_error(errc::internal, "bench: the depth's context was not reused (" + got + " tokens)");
      }
      r.ts.push_back(static_cast<double>(o.n_gen) / (st.prompt_seconds + st.gen_seconds));
      if (!on_cuda) r.probe.push_back(0.5 * (before + bw_probe()));
    }
    results.push_back(r);
  }
  // Batched decode (CPU): the same number of forward passes, each carrying one token of every sequence, on the
  // probes' pool (the session's own thread count).
  const size_t n_single = results.size();
  if (!on_cuda && o.n_gen > 0) {
    for (int32_t b : o.n_seqs) {
      test_result r{"tg" + std::to_string(o.n_gen) + " x" + std::to_string(b), {}, {}};
      for (int32_t rep = 0; rep < o.reps; ++rep) {
        LIME_TRY(double ts, bench_batched_decode(m, *probe_pool, b, o.n_gen, o.seed + 200 + static_cast<uint64_t>(rep)));
        r.ts.push_back(ts);
      }
      results.push_back(r);
    }
  }

  const uint64_t n_params = count_params(m.file());
  uint64_t size = 0;
  for (const gguf_tensor_info& t : m.file().tensors()) size += t.n_bytes;
  const std::string label = model_label(m, n_params);
  std::fprintf(out, "model: %s\ncpu: %s\nkernel isa: %s; staged matvec rows: %s; KV cache: %s\n",
               m.describe().c_str(), cpu::cpu_description().c_str(), cpu::isa_name(cpu::isa_best()),
               cpu::row_order_name(cpu::staged_row_order()), tensor_type_name(s->kv().config().type));
  // Speed does not depend on the positions' meaning, so depths past the trained context still run, but say so.
  if (need > hp.n_ctx_train) {
    std::fprintf(out, "note: the deepest test runs %d positions, past the model's context length of %d\n", need,
                 hp.n_ctx_train);
  }
  std::fprintf(out, "\n");
  std::fprintf(out, "| model                          |       size |     params | backend    | threads |            test |                  t/s |\n");
  std::fprintf(out, "| ------------------------------ | ---------: | ---------: | ---------- | ------: | --------------: | -------------------: |\n");
  for (const test_result& r : results) {
    char sz[32], pr[32], ts[48];
    std::snprintf(sz, sizeof(sz), "%.2f MiB", static_cast<double>(size) / (1024.0 * 1024.0));
    if (n_params < 1000000000ull) std::snprintf(pr, sizeof(pr), "%.2f M", static_cast<double>(n_params) * 1e-6);
    else std::snprintf(pr, sizeof(pr), "%.2f B", static_cast<double>(n_params) * 1e-9);
    std::snprintf(ts, sizeof(ts), "%.2f ± %.2f", bench_median(r.ts), stddev(r.ts));
    // "±" is two bytes in one column: one more byte of width keeps the column aligned.
    std::fprintf(out, "| %-30s | %10s | %10s | %-10s | %7d | %15s | %21s |\n", label.c_str(), sz, pr, on_cuda ? "CUDA" : "CPU",
                 s->n_threads(), r.name.c_str(), ts);
  }

  if (on_cuda) {
    std::fprintf(out, "\nbackend: %s; device memory peak %.2f MiB\nweights: %s\n", s->device().describe().c_str(),
                 static_cast<double>(s->device().peak()) / (1024.0 * 1024.0), s->engine().describe_weights().c_str());
    auto links = measure_device_links(o.backend);
    if (!links) return links.err();
    const double pass = static_cast<double>(weight_bytes_per_token(m));
    const double streamed = static_cast<double>(s->engine().streamed_bytes_per_pass());
    std::fprintf(out, "device copies: device-to-device %.0f GB/s (read + write), page-locked host-to-device %.1f GB/s\n",
                 links->d2d_gbs, links->h2d_gbs);
    for (size_t i = 0; i < n_single; ++i) {
      const test_result& r = results[i];
      if (r.name.rfind("tg", 0) != 0) continue;
      const double ts = bench_median(r.ts);
      std::fprintf(out, "%s: %.1f MiB of weights per token x %.2f t/s = %.0f GB/s, %.1f%% of the device-to-device copy",
                   r.name.c_str(), pass / 1048576.0, ts, pass * ts * 1e-9, 100.0 * pass * ts * 1e-9 / links->d2d_gbs);
      if (streamed > 0)
        std::fprintf(out, "; %.1f MiB streamed per token = %.1f GB/s, %.1f%% of the host-to-device copy",
                     streamed / 1048576.0, streamed * ts * 1e-9, 100.0 * streamed * ts * 1e-9 / links->h2d_gbs);
      std::fprintf(out, "\n");
    }
    return {};
  }
  const machine_roofline roof = bench_measure_roofline(s->n_threads(), *bw_buf);
  // Prompt processing against the FMA peak: flops per prompt token of the layer matmuls (2 per weight) and of
  // attention (q.k and the weighted sum of V: 4 * head_dim per head and visible position, on average (p + 1) / 2
  // positions in a p-token prompt). The head runs for the last token only and is left out.
  uint64_t n_layer_weights = 0;
  for (int32_t l = 0; l < hp.n_layer; ++l) {
    const layer_weights& lw = m.layer(l);
    for (const weight_view* w : {&lw.wq, &lw.wk, &lw.wv, &lw.wo, &lw.w_gate, &lw.w_up, &lw.w_down})
      n_layer_weights += static_cast<uint64_t>(w->n_rows) * static_cast<uint64_t>(w->k);
  }
  const double mm = 2.0 * static_cast<double>(n_layer_weights);
  for (size_t i = 0; i < o.n_prompt.size(); ++i) {
    const double p = o.n_prompt[i];
    const double att = 4.0 * hp.head_dim * hp.n_head * hp.n_layer * (p + 1) / 2;
    const double ts = bench_median(results[i].ts), gflops = ts * (mm + att) * 1e-9;
    std::fprintf(out, "\npp%d: %.1f MFLOP of layer matmuls + %.1f MFLOP of attention per token; %.2f t/s = %.1f GFLOP/s = "
                 "%.1f%% of the FMA peak (%.1f GFLOP/s, %d threads; matmuls alone %.1f%%)%s",
                 o.n_prompt[i], mm * 1e-6, att * 1e-6, ts, gflops, 100.0 * gflops / roof.fma_all, roof.fma_all,
                 roof.n_threads, 100.0 * ts * mm * 1e-9 / roof.fma_all,
                 paired_line(results[i], (mm + att) * 1e-9, "GFLOP/s").c_str());
  }
  if (!o.n_prompt.empty()) std::fprintf(out, "\n");
  if (o.n_gen > 0) {
    const uint64_t per_token = weight_bytes_per_token(m);
    const double roof_ts = roof.bw_all * 1e9 / static_cast<double>(per_token);
    const test_result& single = results[n_single - 1];
    const double tg = bench_median(single.ts);
    std::fprintf(out, "\ntg: %.2f MiB of weights read per token; read bandwidth %.1f GB/s (%d threads) -> roofline %.2f t/s; "
                 "measured %.2f t/s = %.1f%% of roofline%s\n",
                 static_cast<double>(per_token) / (1024.0 * 1024.0), roof.bw_all, roof.n_threads, roof_ts, tg, 100.0 * tg / roof_ts,
                 paired_line(single, static_cast<double>(per_token) * 1e-9, "GB/s").c_str());
    // Depth rows: token i of n_gen attends d + i + 1 positions, each position's K and V rows of every layer read.
    const double kv_elem = s->kv().config().type == tensor_type::f16 ? 2.0 : 4.0;
    const double kv_row_bytes = 2.0 * hp.n_layer * static_cast<double>(hp.n_embd_kv()) * kv_elem;
    for (size_t i = 0; i < o.depths.size(); ++i) {
      const test_result& r = results[n_single - 1 - o.depths.size() + i];
      const double kv = kv_row_bytes * (o.depths[i] + (o.n_gen + 1) / 2.0), bytes = static_cast<double>(per_token) + kv;
      const double roof_d = roof.bw_all * 1e9 / bytes, ts = bench_median(r.ts);
      std::fprintf(out, "%s: %.2f MiB of weights + %.2f MiB of KV cache read per token (on average) -> roofline %.2f t/s; "
                   "measured %.2f t/s = %.1f%% of roofline%s\n",
                   r.name.c_str(), static_cast<double>(per_token) / (1024.0 * 1024.0), kv / (1024.0 * 1024.0), roof_d, ts,
                   100.0 * ts / roof_d, paired_line(r, bytes * 1e-9, "GB/s").c_str());
    }
    for (size_t i = n_single; i < results.size(); ++i) {
      const double ts = bench_median(results[i].ts);
      const int32_t b = o.n_seqs[i - n_single];
      std::fprintf(out, "%s: %d sequences decoded together: %.2f t/s in all, %.2f t/s each; in all %.2fx the tg row\n",
                   results[i].name.c_str(), b, ts, ts / b, ts / tg);
    }
  }
  return {};
}

}  // namespace lime
