// lime-bench kernels: matvec and matmul throughput of cpu::matmul (the dispatcher's best variant) per weight type
// at real model shapes, split over a thread pool by rows, against the measured roofline (bench_roofline.cpp).
#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>

#include "kernels/cpu/matmul.h"
#include "kernels/cpu/quants.h"
#include "runtime/bench.h"
#include "runtime/model_gen.h"

namespace lime {
namespace {


// rows x k weights of type t into dst, with model_gen's values, quantized in parallel.
bool make_weights(tensor_type t, int64_t k, int64_t rows, thread_pool& pool, uint8_t* dst) {
  const size_t row_bytes = tensor_row_bytes(t, k);
  const uint64_t stream = model_gen_stream(7, std::string("bench.") + tensor_type_name(t));
  std::atomic<bool> ok{true};
  pool.parallel_for(rows, [&](int64_t b, int64_t e, int) {
    std::vector<float> row(static_cast<size_t>(k));
    for (int64_t r = b; r < e; ++r) {
      model_gen_values(stream, static_cast<uint64_t>(r), k, model_gen_std, 0.f, row.data());
      uint8_t* out = dst + static_cast<size_t>(r) * row_bytes;
      if (!model_gen_quantize_fast(t, row.data(), out, k) && cpu::quantize_row(t, row.data(), out, k) != kstatus::ok)
        ok = false;
    }
  });
  return ok.load();
}

// y[n_cols, rows] = x[n_cols, k] * W^T, output rows split over the pool, with x packed once for every thread
// first where the kernels take it (as the forward pass does; the packing is part of the time). x_lanes: scratch.
bool run_matmul(thread_pool& pool, tensor_type t, const uint8_t* w, int64_t rows, int64_t k, const float* x,
                int64_t n_cols, float* y, std::vector<float>& x_lanes) {
  const int64_t lanes = cpu::matmul_lanes_floats(k, n_cols);
  if (lanes > 0) {
    if (x_lanes.size() < static_cast<size_t>(lanes)) x_lanes.resize(static_cast<size_t>(lanes));
    pool.parallel_for((n_cols + 15) / 16, [&](int64_t p0, int64_t p1, int) {
      cpu::matmul_pack_lanes(x, k, n_cols, p0, p1, x_lanes.data());
    });
  }
  std::atomic<bool> ok{true};
  pool.parallel_for(rows, [&](int64_t b, int64_t e, int) {
    cpu::matmul_args a{t, w, rows, k, x, n_cols, y, b, e, lanes > 0 ? x_lanes.data() : nullptr};
    if (cpu::matmul(a) != kstatus::ok) ok = false;
  });
  return ok.load();
}

struct row_out {
  std::string op, type, shape;
  int threads = 1;
  double ms = 0, gbs = 0, gflops = 0, pct = 0;
  double fma_pct = -1;     // matmul and attention: GFLOP/s as a % of the FMA peak measured first
  double fma_paired = -1;  // the same against the peak probed around each run (bench_paired_runs); -1: none
};

void print_header(FILE* out) {
  std::fprintf(out, "\n| op                | type | shape                                      | threads |        ms |    GB/s |  GFLOP/s | %% of roofline | %% of FMA peak | paired |\n");
  std::fprintf(out, "| ----------------- | ---- | ------------------------------------------ | ------: | --------: | ------: | -------: | ------------: | ------------: | -----: |\n");
}

void print_row(const row_out& r, FILE* out) {
  char fma[32] = "-", paired[32] = "-";
  if (r.fma_pct >= 0) std::snprintf(fma, sizeof(fma), "%.1f%%", r.fma_pct);
  if (r.fma_paired >= 0) std::snprintf(paired, sizeof(paired), "%.1f%%", r.fma_paired);
  std::fprintf(out, "| %-17s | %-4s | %-42s | %7d | %9.3f | %7.2f | %8.2f | %12.1f%% | %13s | %6s |\n", r.op.c_str(),
               r.type.c_str(), r.shape.c_str(), r.threads, r.ms, r.gbs, r.gflops, r.pct, fma, paired);
  std::fflush(out);
}

// Matvec over copies of the matrix laid end to end (at least stream_bytes in all), so every call streams its
// weights from memory as a real forward pass does; best sweep as bench_paired_runs times it (2 to 5, 0.3 s).
row_out bench_matvec(thread_pool& pool, tensor_type t, const bench_matrix& m, const uint8_t* w, uint64_t stride,
                     int64_t copies, const float* x, float* y, double bw) {
  const uint64_t bytes = tensor_row_bytes(t, m.k) * static_cast<uint64_t>(m.rows);
  std::vector<float> x_lanes;  // one column: never packed
  // As in the forward pass (forward.cpp), idle workers poll between the calls of a sweep instead of sleeping after
  // a few microseconds: a futex wake-up per call costs tens of microseconds on a VM, as much as a 768x768 matvec.
  thread_pool::busy_scope busy(pool);
  const double sweep = bench_paired_runs([&] {
    for (int64_t c = 0; c < copies; ++c)
      run_matmul(pool, t, w + static_cast<uint64_t>(c) * stride, m.rows, m.k, x, 1, y, x_lanes);
  }, nullptr, 0.0, 0.3, nullptr);  // bandwidth bound: no FMA pairing
  const double best = sweep / static_cast<double>(copies);
  row_out r;
  r.op = "matvec";
  r.threads = pool.n_threads();
  r.ms = best * 1e3;
  r.gbs = static_cast<double>(bytes) / best * 1e-9;
  r.gflops = 2.0 * static_cast<double>(m.k) * static_cast<double>(m.rows) / best * 1e-9;
  r.pct = 100.0 * r.gbs / bw;
  return r;
}

}  // namespace

std::vector<bench_matrix> bench_shape_matrices(const model_shape& s) {
  return {{"attn_q", s.n_embd, s.n_embd},
          {"ffn_up", s.n_embd, s.n_ff},
          {"ffn_down", s.n_ff, s.n_embd},
          {"output", s.n_embd, s.n_vocab}};
}

status bench_kernels(const bench_kernels_options& opts, FILE* out) {
  bench_kernels_options o = opts;
  if (o.types.empty()) {
    o.types = {tensor_type::f32, tensor_type::f16, tensor_type::bf16, tensor_type::q8_0,
               tensor_type::q4_0, tensor_type::q4_k, tensor_type::q6_k};
  }
  if (o.shapes.empty()) o.shapes = {"stories110M", "llama-3.2-1b"};
  if (o.batches.empty()) o.batches = {16, 64, 512};
  if (o.matmuls.empty()) o.matmuls = {"ffn_up"};
  for (const std::string& name : o.matmuls) {
    const std::vector<bench_matrix> known = bench_shape_matrices(model_shape{});
    if (std::none_of(known.begin(), known.end(), [&](const bench_matrix& m) { return m.name == name; }))
      return make_error(errc::invalid_argument, "unknown matrix '" + name + "' (attn_q, ffn_up, ffn_down, output)");
  }
  std::vector<model_shape> shapes;
  for (const std::string& n : o.shapes) {
    LIME_TRY(model_shape s, model_shape_find(n));
    shapes.push_back(s);
  }
  for (tensor_type t : o.types) {
    if (!tensor_type_traits(t).computable)
      return make_error(errc::invalid_argument, std::string("type ") + tensor_type_name(t) + " has no kernel");
  }
  const machine_roofline roof = bench_measure_roofline(o.n_threads, o.bw_buffer_bytes);
  bench_print_roofline(roof, out);
  thread_pool one(1), all(roof.n_threads);
  // Probes of 10-20 ms around each compute-bound run (matmul, prompt attention), on the pool the run uses.
  const int64_t fma_iters = bench_fma_iters(roof.isa, 0.01);
  const std::function<double()> fma_probe = [&] { return bench_fma_probe(all, roof.isa, fma_iters); };
  print_header(out);

  for (const model_shape& s : shapes) {
    const std::vector<bench_matrix> mats = bench_shape_matrices(s);
    for (tensor_type t : o.types) {
      const int64_t be = tensor_type_traits(t).block_elems;
      for (const bench_matrix& m : mats) {
        const std::string shape = s.name + " " + m.name + " " + std::to_string(m.rows) + "x" + std::to_string(m.k);
        if (m.k % be != 0) {
          std::fprintf(out, "| matvec            | %-4s | %-42s | skipped: k %% %lld != 0 |\n", tensor_type_name(t), shape.c_str(),
                       static_cast<long long>(be));
          continue;
        }
        const uint64_t bytes = tensor_row_bytes(t, m.k) * static_cast<uint64_t>(m.rows);
        const uint64_t stride = (bytes + 63) / 64 * 64;
        const int64_t copies = std::max<int64_t>(1, static_cast<int64_t>((o.stream_bytes + bytes - 1) / bytes));
        std::vector<uint8_t> w(stride * static_cast<uint64_t>(copies));
        if (!make_weights(t, m.k, m.rows, all, w.data()))
          return make_error(errc::internal, std::string("cannot quantize bench weights to ") + tensor_type_name(t));
        for (int64_t c = 1; c < copies; ++c) std::memcpy(w.data() + static_cast<uint64_t>(c) * stride, w.data(), bytes);
        const int32_t max_batch = *std::max_element(o.batches.begin(), o.batches.end());
        std::vector<float> x(static_cast<size_t>(std::max<int32_t>(max_batch, 1) * m.k));
        model_gen_values(model_gen_stream(3, "bench.x"), 0, static_cast<int64_t>(x.size()), 1.0f, 0.f, x.data());
        std::vector<float> y(static_cast<size_t>(m.rows) * static_cast<size_t>(std::max<int32_t>(max_batch, 1)));

        for (thread_pool* p : {&one, &all}) {
          if (p == &all && all.n_threads() == 1) break;
          row_out r = bench_matvec(*p, t, m, w.data(), stride, copies, x.data(), y.data(),
                                   p == &one ? roof.bw_1t : roof.bw_all);
          r.type = tensor_type_name(t);
          r.shape = shape;
          print_row(r, out);
        }
        if (std::find(o.matmuls.begin(), o.matmuls.end(), m.name) == o.matmuls.end()) continue;
        // matmul: compute bound at large batches; a leading subset of rows keeps one call under max_gflop.
        for (int32_t b : o.batches) {
          const double flop_per_row = 2.0 * static_cast<double>(m.k) * b;
          int64_t rows = std::min<int64_t>(m.rows, std::max<int64_t>(64, static_cast<int64_t>(o.max_gflop * 1e9 / flop_per_row)));
          rows = std::max<int64_t>(1, rows / 16 * 16);
          const double flops = flop_per_row * static_cast<double>(rows);
          const double wbytes = static_cast<double>(tensor_row_bytes(t, m.k)) * static_cast<double>(rows);
          std::vector<float> x_lanes;
          double paired = -1;
          const double best = bench_paired_runs(
              [&] {
                thread_pool::busy_scope busy(all);  // packing, then the rows: no sleep between them (as bench_matvec)
                run_matmul(all, t, w.data(), rows, m.k, x.data(), b, y.data(), x_lanes);
              },
              fma_probe,
              flops * 1e-9, 0.5, &paired);
          row_out r;
          r.op = "matmul b" + std::to_string(b);
          r.type = tensor_type_name(t);
          r.shape = rows == m.rows ? shape : shape + " [" + std::to_string(rows) + " rows]";
          r.threads = all.n_threads();
          r.ms = best * 1e3;
          r.gbs = wbytes / best * 1e-9;
          r.gflops = flops / best * 1e-9;
          const double bound = std::max(wbytes / (roof.bw_all * 1e9), flops / (roof.fma_all * 1e9));
          r.pct = 100.0 * bound / best;
          r.fma_pct = 100.0 * r.gflops / roof.fma_all;
          r.fma_paired = paired < 0 ? -1.0 : 100.0 * paired;
          print_row(r, out);
        }
      }
    }
    for (thread_pool* p : {&one, &all}) {
      if (p == &all && all.n_threads() == 1) break;
      for (const bench_attention_row& a : bench_attention(s, *p, roof, 512, 4096, fma_iters)) {
        row_out r;
        r.op = a.op;
        r.type = "f32";
        r.shape = s.name + " " + std::to_string(s.n_head) + "/" + std::to_string(s.n_head_kv) + " heads x " +
                  std::to_string(s.head_dim());
        r.threads = a.threads;
        r.ms = a.ms;
        r.gbs = a.gbs;
        r.gflops = a.gflops;
        r.pct = a.roof_pct;
        r.fma_pct = a.fma_pct;
        r.fma_paired = a.fma_paired;
        print_row(r, out);
      }
    }
  }
  return {};
}

}  // namespace lime
