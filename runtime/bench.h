// Benchmarks that print figures a reader can compare (they assert nothing): the machine's measured roofline
// (streaming read bandwidth, fp32 FMA peak), matvec/matmul per weight type at real model shapes, and
// llama-bench-style prompt/generation throughput of a model file. Used by apps/lime_bench.cpp.
#pragma once
#include <cstdint>
#include <cstdio>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "kernels/cpu/isa.h"
#include "kernels/tensor_type.h"
#include "runtime/backend.h"
#include "runtime/result.h"
#include "runtime/thread_pool.h"

namespace lime {

class model;

// --- roofline (bench_roofline.cpp)

double bench_now_s();  // a steady clock in seconds, for the benchmarks' timings

// The sum of buf[0, n) as uint64 words (n % 64 == 0) by variant `i`'s read loop (the generic loop where `i` has
// none; `i` must be available on this CPU): what bench_read_bandwidth times. Every variant gives the same sum.
uint64_t bench_read_sum(cpu::isa i, const uint8_t* p, uint64_t n);

// Streaming read bandwidth in GB/s (1e9 bytes/s): `pool` reads buf[0, n) split in n_threads() contiguous parts
// (each summed with integer adds of variant `i`'s widest vectors), best of `reps` runs. buf should be much larger
// than the last-level cache.
double bench_read_bandwidth(thread_pool& pool, cpu::isa i, const uint8_t* buf, uint64_t n, int reps);

// fp32 FMA peak in GFLOP/s (an FMA counts 2 flops): every thread of `pool` runs a register-only loop of independent
// FMA chains with the widest vectors of variant `i` (ref: 4-wide SSE-style mul + add, which is what a
// baseline build can issue), best of `reps` runs.
double bench_fma_peak(thread_pool& pool, cpu::isa i, int reps);
// The pieces of bench_fma_peak, for probes paired with other timed runs: the loop length (iterations) that takes
// more than `seconds` on one thread (doubling from 2^16), and the GFLOP/s of one run of that loop on every thread.
int64_t bench_fma_iters(cpu::isa i, double seconds);
double bench_fma_probe(thread_pool& pool, cpu::isa i, int64_t iters);
// The median of v (the mean of the middle two when even; 0 when empty).
double bench_median(std::vector<double> v);
// Times fn as the kernel rows do: at least 2 runs, up to 5 while under `budget_s` of run time in all; returns the
// best run in seconds. With a probe (a peak measured in its own units, e.g. bench_fma_probe), probe() also runs just
// before and just after each run, and *paired gets the median over runs of (work / run seconds) / (mean of its two
// probes): the run against the peak of its own moment, which on a shared host can move by a third within seconds.
// Without one, *paired is -1. paired may be null (best time only).
double bench_paired_runs(const std::function<void()>& fn, const std::function<double()>& probe, double work,
                         double budget_s, double* paired);

struct machine_roofline {
  int n_threads = 1;
  cpu::isa isa = cpu::isa::ref;  // cpu::isa_best(): the variant the kernels use
  double bw_1t = 0, bw_all = 0;    // GB/s
  double fma_1t = 0, fma_all = 0;  // GFLOP/s with `isa`
  uint64_t buffer_bytes = 0;
};
// Memory for the bandwidth runs: `bytes` rounded down to whole 4 KiB pages, every page written once when made
// (so no run pays for page faults).
class bench_buffer {
 public:
  explicit bench_buffer(uint64_t bytes);
  const uint8_t* data() const { return data_; }  // 4096-byte aligned
  uint64_t size() const { return n_; }

 private:
  std::unique_ptr<uint8_t[]> p_;  // n_ + 4096 bytes
  uint8_t* data_ = nullptr;
  uint64_t n_ = 0;
};
// Measures both with 1 thread and with n_threads (buffer_bytes of memory, first touched outside the timing).
machine_roofline bench_measure_roofline(int n_threads, uint64_t buffer_bytes);
machine_roofline bench_measure_roofline(int n_threads, const bench_buffer& buf);
void bench_print_roofline(const machine_roofline& r, FILE* out);

// --- kernels (bench_kernels.cpp; the CUDA variant in bench_kernels_cuda.cpp)

struct model_shape;  // runtime/model_gen.h

// One benchmarked weight matrix: rows outputs x k inputs.
struct bench_matrix {
  std::string name;  // "ffn_up"
  int64_t k;         // inputs
  int64_t rows;      // outputs
};
// The matrices of one layer that matter for speed (the others share their shapes), plus the output head.
std::vector<bench_matrix> bench_shape_matrices(const model_shape& s);

struct bench_kernels_options {
  std::vector<tensor_type> types;       // empty: f32 f16 bf16 q8_0 q4_0 q4_k q6_k
  std::vector<std::string> shapes;      // model_shapes() names; empty: stories110M, llama-3.2-1b
  std::vector<int32_t> batches;         // matmul batch sizes; empty: 16, 64, 512
  std::vector<std::string> matmuls;     // matrices timed as matmuls (attn_q ffn_up ffn_down output); empty: ffn_up
  int n_threads = 0;                    // 0: all online CPUs
  uint64_t stream_bytes = 512ull << 20; // matvec weights cycle through copies filling this much memory
  double max_gflop = 4.0;               // matmul: computes a leading subset of rows when a call would exceed it
  uint64_t bw_buffer_bytes = 1ull << 30;
};
// Prints the roofline, then `op | type | shape | threads | ms | GB/s | GFLOP/s | % of roofline | % of FMA peak |
// paired` rows: matvec of each shape's attn_q, ffn_up, ffn_down and output matrices (1 thread and all threads;
// roofline = measured bandwidth of that many threads), and matmul of the `matmuls` matrices at each batch (all
// threads, the activations packed once for all of them first where the kernels take that, as in the forward pass;
// roofline time = max(bytes / bandwidth, flops / FMA peak)), then the attention rows. `% of FMA peak` is the best
// run against the peak measured first; `paired` (matmul, prompt attention) the median run against FMA probes taken
// just before and after it on the same threads (bench_paired_runs).
// Errors: invalid_argument (unknown shape or matrix name, a type lime cannot compute or a shape its blocks do not
// divide).
status bench_kernels(const bench_kernels_options& o, FILE* out);
// Attention rows of bench_kernels (bench_attention.cpp): cpu::attention at shape s's heads over an f32 paged KV
// cache on `pool`: a prompt of n_prompt tokens in runs of 16 x heads (as the forward pass calls it; GFLOP/s against
// the FMA peak) and one decoded token over n_ctx positions, heads split (GB/s of K and V against the bandwidth).
// fma_iters > 0: the prompt row is also paired with FMA probes of that length on `pool` (bench_paired_runs).
struct bench_attention_row {
  std::string op;
  int threads = 1;
  double ms = 0, gbs = 0, gflops = 0, roof_pct = 0, fma_pct = 0;
  double fma_paired = -1;  // % of the FMA peak probed around each run; -1: not paired
};
std::vector<bench_attention_row> bench_attention(const model_shape& s, thread_pool& pool, const machine_roofline& roof,
                                                 int32_t n_prompt, int32_t n_ctx, int64_t fma_iters = 0);

// The same on the GPU (bench_kernels_cuda.cpp, in builds with LIME_HAVE_CUDA only): device-to-device copy bandwidth
// (bw_buffer_bytes), then `op | type | shape | ms | GB/s | GFLOP/s | % of D2D` rows: cuda::matvec of each shape's
// matrices (weights cycling through stream_bytes of copies), cuda::matmul and cuBLAS matmul_fast of ffn_up at each
// batch. Defaults: every computable type; stories110M, llama-3.2-1b, llama-3-8b. No device: prints "no CUDA device"
// and succeeds. max_gflop and n_threads are unused.
status bench_kernels_cuda(const bench_kernels_options& o, FILE* out);

// --- generation (bench_generate.cpp)

struct bench_generate_options {
  std::string model_path;
  int n_threads = 0;                 // 0: all online CPUs
  std::vector<int32_t> n_prompt;     // empty: 128, 512
  int32_t n_gen = 128;               // 0: no tg test
  int32_t reps = 3;
  uint64_t seed = 1;                 // prompt token ids are drawn from it
  uint64_t bw_buffer_bytes = 1ull << 30;
  backend_options backend;           // cpu (default) or cuda (runtime/backend.h)
  std::vector<int32_t> n_seqs;       // batched decode: sequences decoded together (CPU; empty: none)
  std::vector<int32_t> depths;       // tg also after this many context tokens (llama-bench's -d; empty: none)
  tensor_type kv_type = tensor_type::f32;  // the KV cache's type (session_config::kv_type; f16 is not bitwise f32)
};
// Prints llama-bench's markdown table (model | size | params | backend | threads | test | t/s) with the median of
// `reps` runs ± the standard deviation, each run on a fresh KV cache; then (CPU) each pp figure as a % of the
// measured FMA peak (flops of the layer matmuls and of attention per prompt token), the weight bytes read per
// generated token and the tg figure as a % of the bandwidth roofline (with cuda the device and its weight plan instead).
// A tg row at depth d ("tg128 @ d1024") decodes after d prompt tokens (evaluated first, not timed); its roofline
// counts the KV cache read per token too (every earlier position's K and V in every layer, at the KV type's size).
// Depths past the model's context length still run (a note says so). Errors: those of model::load and session.
status bench_generate(const bench_generate_options& o, FILE* out);

// Batched decode (bench_generate_batched.cpp): n_seqs sequences, each from its own token drawn with seed, decoded
// together for n_gen forward passes of one token per sequence (greedy), on a fresh KV cache and the given pool;
// the aggregate tokens/s (n_seqs x n_gen over the whole loop). Errors: invalid_argument, the forward pass's.
result<double> bench_batched_decode(const model& m, thread_pool& pool, int32_t n_seqs, int32_t n_gen, uint64_t seed);

}  // namespace lime
