// lime-bench kernels --backend cuda: device-to-device copy bandwidth, then cuda::matvec GB/s per weight type at real
// model shapes against it, and cuda::matmul (plus the cuBLAS matmul_fast) GFLOP/s at prefill batches. Built only
// with LIME_HAVE_CUDA (runtime/CMakeLists.txt: lime_bench_cuda). Timing by cudaEvents; prints, asserts nothing.
#include <cuda_runtime.h>

#include <algorithm>
#include <string>
#include <vector>

#include "kernels/cuda/ops.h"
#include "runtime/bench.h"
#include "runtime/model_gen.h"

namespace lime {
namespace {


status cuda_err(cudaError_t e, const char* what) {
  if (e == cudaSuccess) return {};
  return make_error(errc::internal, std::string(what) + ": " + cudaGetErrorString(e));
}

status kernel_err(const cuda::cuda_status& s, const char* what) {
  if (s.ok()) return {};
  return make_error(errc::internal, std::string(what) + ": " + s.message);
}

// One device allocation, freed on scope exit.
struct dev_mem {
  void* p = nullptr;
  ~dev_mem() {
    if (p) cudaFree(p);
  }
  status alloc(size_t bytes, const char* what) { return cuda_err(cudaMalloc(&p, bytes), what); }
};

// Best time in seconds of `reps` runs of f (each a sequence of launches on the default stream), by events.
template <class F>
result<double> time_best(int reps, F&& f) {
  cudaEvent_t e0, e1;
  LIME_TRY_VOID(cuda_err(cudaEventCreate(&e0), "cudaEventCreate"));
  LIME_TRY_VOID(cuda_err(cudaEventCreate(&e1), "cudaEventCreate"));
  double best = 1e30;
  status st;
  for (int r = 0; r < reps && st; ++r) {
    cudaEventRecord(e0);
    st = f();
    cudaEventRecord(e1);
    if (st) st = cuda_err(cudaEventSynchronize(e1), "kernel run");
    float ms = 0;
    cudaEventElapsedTime(&ms, e0, e1);
    best = std::min(best, static_cast<double>(ms) * 1e-3);
  }
  cudaEventDestroy(e0);
  cudaEventDestroy(e1);
  if (!st) return st.err();
  return best;
}

void print_row(FILE* out, const std::string& op, const char* type, const std::string& shape, double s, double bytes,
               double flops, double bw) {
  const double gbs = bytes / s * 1e-9;
  std::fprintf(out, "| %-12s | %-4s | %-42s | %9.4f | %8.1f | %9.1f | %8.1f%% |\n", op.c_str(), type, shape.c_str(),
               s * 1e3, gbs, flops / s * 1e-9, 100.0 * gbs / bw);
  std::fflush(out);
}

}  // namespace

status bench_kernels_cuda(const bench_kernels_options& opts, FILE* out) {
  if (cuda::device_count() == 0) {
    std::fprintf(out, "no CUDA device\n");
    return {};
  }
  bench_kernels_options o = opts;
  if (o.types.empty()) {
    o.types = {tensor_type::f32,  tensor_type::f16,  tensor_type::bf16, tensor_type::q8_0, tensor_type::q4_0,
               tensor_type::q4_1, tensor_type::q5_0, tensor_type::q5_1, tensor_type::q4_k, tensor_type::q5_k,
               tensor_type::q6_k};
  }
  if (o.shapes.empty()) o.shapes = {"stories110M", "llama-3.2-1b", "llama-3-8b"};
  if (o.batches.empty()) o.batches = {16, 64, 512};
  std::vector<model_shape> shapes;
  for (const std::string& n : o.shapes) {
    LIME_TRY(model_shape s, model_shape_find(n));
    shapes.push_back(s);
  }
  for (tensor_type t : o.types) {
    if (!tensor_type_traits(t).computable)
      return make_error(errc::invalid_argument, std::string("type ") + tensor_type_name(t) + " has no kernel");
  }
  cudaDeviceProp prop{};
  LIME_TRY_VOID(cuda_err(cudaGetDeviceProperties(&prop, 0), "cudaGetDeviceProperties"));
  std::fprintf(out, "device: %s (sm_%d%d, %d SMs, %.1f GiB)\n", prop.name, prop.major, prop.minor,
               prop.multiProcessorCount, static_cast<double>(prop.totalGlobalMem) / (1ull << 30));

  // --- roofline: device-to-device copy (each byte read once and written once)
  double bw = 0;
  {
    const uint64_t bytes = o.bw_buffer_bytes;
    dev_mem a, b;
    LIME_TRY_VOID(a.alloc(bytes, "cudaMalloc (bandwidth buffer)"));
    LIME_TRY_VOID(b.alloc(bytes, "cudaMalloc (bandwidth buffer)"));
    LIME_TRY_VOID(cuda_err(cudaMemset(a.p, 1, bytes), "cudaMemset"));
    LIME_TRY(double s, time_best(5, [&] { return cuda_err(cudaMemcpy(b.p, a.p, bytes, cudaMemcpyDeviceToDevice), "D2D copy"); }));
    bw = 2.0 * static_cast<double>(bytes) / s * 1e-9;
    std::fprintf(out, "device-to-device copy: %.1f MiB in %.3f ms = %.1f GB/s (read + write)\n",
                 static_cast<double>(bytes) / (1 << 20), s * 1e3, bw);
  }
  void* handle = nullptr;
  LIME_TRY_VOID(kernel_err(cuda::blas_create(&handle), "cuBLAS"));
  struct handle_guard {
    void* h;
    ~handle_guard() { cuda::blas_destroy(h); }
  } guard{handle};

  std::fprintf(out, "\nWeights are a fixed byte pattern (decode speed does not depend on the values); matvec streams\n"
                    "copies of the matrix filling --stream-mib so it never sits in L2.\n");
  std::fprintf(out, "\n| op           | type | shape                                      |        ms |     GB/s |   GFLOP/s | %% of D2D |\n");
  std::fprintf(out, "| ------------ | ---- | ------------------------------------------ | --------: | -------: | --------: | -------: |\n");
  const int32_t max_batch = *std::max_element(o.batches.begin(), o.batches.end());
  for (const model_shape& s : shapes) {
    for (tensor_type t : o.types) {
      const int64_t be = tensor_type_traits(t).block_elems;
      for (const bench_matrix& m : bench_shape_matrices(s)) {
        const std::string shape = s.name + " " + m.name + " " + std::to_string(m.rows) + "x" + std::to_string(m.k);
        if (m.k % be != 0) {
          std::fprintf(out, "| matvec       | %-4s | %-42s | skipped: k %% %lld != 0 |\n", tensor_type_name(t),
                       shape.c_str(), static_cast<long long>(be));
          continue;
        }
        const uint64_t bytes = tensor_row_bytes(t, m.k) * static_cast<uint64_t>(m.rows);
        const uint64_t stride = (bytes + 255) / 256 * 256;
        const int64_t copies = std::max<int64_t>(1, static_cast<int64_t>((o.stream_bytes + bytes - 1) / bytes));
        dev_mem w, x, y;
        LIME_TRY_VOID(w.alloc(stride * static_cast<uint64_t>(copies), "cudaMalloc (weights)"));
        LIME_TRY_VOID(cuda_err(cudaMemset(w.p, 0x3c, stride * static_cast<uint64_t>(copies)), "cudaMemset"));
        std::vector<float> xh(static_cast<size_t>(max_batch) * static_cast<size_t>(m.k));
        model_gen_values(model_gen_stream(3, "bench.x"), 0, static_cast<int64_t>(xh.size()), 1.0f, 0.f, xh.data());
        LIME_TRY_VOID(x.alloc(xh.size() * sizeof(float), "cudaMalloc (x)"));
        LIME_TRY_VOID(cuda_err(cudaMemcpy(x.p, xh.data(), xh.size() * sizeof(float), cudaMemcpyHostToDevice), "upload x"));
        LIME_TRY_VOID(y.alloc(static_cast<size_t>(m.rows) * static_cast<size_t>(max_batch) * sizeof(float), "cudaMalloc (y)"));
        auto args = [&](int64_t c, int64_t n_cols) {
          return cuda::matmul_args{t, static_cast<uint8_t*>(w.p) + static_cast<uint64_t>(c) * stride, m.rows, m.k,
                                   static_cast<float*>(x.p), n_cols, static_cast<float*>(y.p)};
        };
        LIME_TRY_VOID(kernel_err(cuda::matmul(args(0, 1), nullptr), "matvec"));  // warm-up
        LIME_TRY(double per_sweep, time_best(5, [&]() -> status {
                   for (int64_t c = 0; c < copies; ++c) LIME_TRY_VOID(kernel_err(cuda::matmul(args(c, 1), nullptr), "matvec"));
                   return {};
                 }));
        const double flops1 = 2.0 * static_cast<double>(m.k) * static_cast<double>(m.rows);
        print_row(out, "matvec", tensor_type_name(t), shape, per_sweep / static_cast<double>(copies),
                  static_cast<double>(bytes), flops1, bw);
        if (m.name != "ffn_up") continue;

        // Prefill: the batch-invariant kernel, then cuBLAS (not batch-invariant) for comparison.
        dev_mem scratch;
        const size_t scratch_bytes = cuda::matmul_fast_scratch_bytes(m.k, max_batch, std::min<int64_t>(m.rows, 4096));
        LIME_TRY_VOID(scratch.alloc(scratch_bytes, "cudaMalloc (matmul_fast scratch)"));
        for (int32_t b : o.batches) {
          const double flops = flops1 * b;
          LIME_TRY_VOID(kernel_err(cuda::matmul(args(0, b), nullptr), "matmul"));
          LIME_TRY(double sm, time_best(3, [&] { return kernel_err(cuda::matmul(args(0, b), nullptr), "matmul"); }));
          print_row(out, "matmul b" + std::to_string(b), tensor_type_name(t), shape, sm, static_cast<double>(bytes),
                    flops, bw);
          LIME_TRY_VOID(kernel_err(cuda::matmul_fast(args(0, b), handle, scratch.p, scratch_bytes, nullptr), "matmul_fast"));
          LIME_TRY(double sf, time_best(3, [&] {
                     return kernel_err(cuda::matmul_fast(args(0, b), handle, scratch.p, scratch_bytes, nullptr), "matmul_fast");
                   }));
          print_row(out, "cublas b" + std::to_string(b), tensor_type_name(t), shape, sf, static_cast<double>(bytes), flops,
                    bw);
        }
      }
    }
  }
  return {};
}

}  // namespace lime
