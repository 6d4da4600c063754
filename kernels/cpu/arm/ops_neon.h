// Internal entry points of the NEON (aarch64) attention, swiglu, rmsnorm and vector exp/silu
// (kernels/cpu/arm/ops_neon.cpp): the shared bodies of kernels/cpu/ops_body.h and ops_attention.h over 16 lanes of
// four float32x4 registers. Each is bitwise equal to its reference; kernels/cpu/ops_dispatch.cpp picks them.
#pragma once
#include <cstdint>

#include "kernels/cpu/attention.h"
#include "kernels/status.h"

namespace lime::cpu {

kstatus attention_neon(const attention_args& a);  // as attention_ref (kernels/cpu/attention.h)
void swiglu_neon(const float* gate, const float* up, float* out, int64_t n);  // as swiglu_ref
void rmsnorm_neon(const float* x, const float* w, float* y, int64_t n, float eps);  // as rmsnorm_ref
void exp_f32_neon(const float* x, float* y, int64_t n);   // y[i] = exp_f32(x[i]); y may alias x
void silu_f32_neon(const float* x, float* y, int64_t n);  // y[i] = silu_f32(x[i]); y may alias x

}  // namespace lime::cpu
