// RMS normalization of one row: y = (x * (1 / sqrt(mean(x^2) + eps))) * w.
#pragma once
#include <cstdint>

namespace lime::cpu {

// x, y: [n]; w: [n] (may be nullptr for no weight). x and y may alias.
// mean(x^2) = dot_canonical(x, x, n) / n; scale = 1.0f / std::sqrt(mean + eps); y[i] = (x[i] * scale) * w[i].
void rmsnorm_ref(const float* x, const float* w, float* y, int64_t n, float eps);

// The fastest variant this CPU runs; bitwise equal to rmsnorm_ref.
void rmsnorm(const float* x, const float* w, float* y, int64_t n, float eps);

}  // namespace lime::cpu
