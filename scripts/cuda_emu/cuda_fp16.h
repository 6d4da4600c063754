// scripts/cuda-emu only: __half and __float2half_rn (round to nearest even, via cpu::fp32_to_fp16).
#pragma once
#include "kernels/cpu/quants.h"
struct __half { uint16_t x; };
inline __half __float2half_rn(float f) { return __half{lime::cpu::fp32_to_fp16(f)}; }
