// Reference (de)quantization of one row for each supported tensor type, from each format's block layout,
// and fp16/bf16 conversions. The dequantized fp32 values defined here are the weights' exact values for
// every kernel (SIMD and CUDA variants must produce the same fp32 value for each element).
#pragma once
#include <cstdint>

#include "kernels/status.h"
#include "kernels/tensor_type.h"

namespace lime::cpu {

float fp16_to_fp32(uint16_t h);  // exact (every f16 is representable)
uint16_t fp32_to_fp16(float f);  // round to nearest even, overflow to inf, NaN kept
float bf16_to_fp32(uint16_t h);  // exact
uint16_t fp32_to_bf16(float f);  // round to nearest even, NaN kept quiet

// n elements (a multiple of the type's block_elems) of packed blocks -> fp32.
// Supported: every type whose tensor_type_info::computable is true.
kstatus dequantize_row(tensor_type t, const void* src, float* dst, int64_t n);

// fp32 -> n elements of packed blocks (n a multiple of block_elems). A simple, deterministic quantizer
// per type (round to nearest; K-quants choose block scales by min/max search), good enough for
// generated models and round-trip tests; not tuned like llama.cpp's importance-weighted quantizers.
kstatus quantize_row(tensor_type t, const float* src, void* dst, int64_t n);

}  // namespace lime::cpu
