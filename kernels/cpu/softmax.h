// Softmax of one row in place: x[i] = exp(x[i] - max) / sum, with exp_f32 and the canonical sum.
#pragma once
#include <cstdint>

namespace lime::cpu {

// max: sequential from x[0]; e[i] = exp_f32(x[i] - max); sum = sum_canonical(e); x[i] = e[i] / sum.
// -inf entries become 0. n >= 1.
void softmax_ref(float* x, int64_t n);

}  // namespace lime::cpu
