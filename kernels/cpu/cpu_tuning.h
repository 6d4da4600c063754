// Speed choices that depend on the CPU model rather than on its instruction set (isa.h picks that). None changes a
// bit of any result: each picks between schedules that the kernel tests hold bitwise equal to matmul_ref.
#pragma once

#include <string>

namespace lime::cpu {

// The CPU, in one line for benchmark headers, so that figures say which machine gave them: vendor, family and model
// from cpuid with the core generation where amd_core_name knows it, and the brand string, e.g. "AuthenticAMD family
// 25 model 17 (Zen 4): AMD EPYC". On other architectures: "no cpuid (not x86)".
std::string cpu_description();
// The core generation of an AMD family / model (cpuid's displayed values: base plus extended), or nullptr when
// unknown: Zen / Zen 2 (family 23), Zen 3 and Zen 4 (25, by model range), Zen 5 (26).
const char* amd_core_name(int family, int model);

// Row order of the staged K-quant matvecs (matmul_kquants_avx2.cpp: one-column q4_k, q5_k and q6_k on AVX2; the
// AVX-512 q5_k and q6_k matvec, matvec_kpipe_avx512.cpp, always takes row streams):
//   streams:  for_row_streams (matvec_x86.h); each row prefetches its successor in its stream.
//   adjacent: R adjacent rows a pass; each pass prefetches the next R rows.
// Measured with the weights streamed from DRAM, same bits:
//   - on a Sapphire Rapids Xeon, streams (then made the order of every x86 matvec) took Llama-3.2-1B Q4_K_M decode
//     at 2 threads from 16.0-16.5 to 20.8-21.4 tokens/s;
//   - on a Zen 5 EPYC (1 thread), streams left stories110M's q6_k output matrix (32000x768) at 9.2-9.9 GB/s
//     against 21.2-22.4 adjacent, and stories110M Q4_0 decode at 168-175 tokens/s against 249-259 adjacent;
//   - on a Zen 4 EPYC (1 thread, AVX-512), streams ran every q6_k matrix of stories110M and Llama-3.2-1B 1.1-1.6x
//     faster than adjacent (the 1B output matrix 10.5 against 6.7 GB/s), q5_k about the same, and stories110M
//     Q4_K_M decode 5-9 % faster (123-124 against 114-118 tokens/s at 1 thread).
enum class row_order { streams = 0, adjacent = 1 };
const char* row_order_name(row_order o);

// The order in use: the last set_staged_row_order, else LIME_STAGED_ROWS (streams or adjacent; other values are
// ignored), else adjacent on AMD CPUs of family 26 (Zen 5) or later and streams on every other.
row_order staged_row_order();
// For tests and benchmarks: every later staged matvec takes order o (thread safe; calls under way keep theirs).
void set_staged_row_order(row_order o);

}  // namespace lime::cpu
