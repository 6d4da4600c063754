// Reference RMS normalization of one row, sum of squares in the canonical order.
#include "kernels/cpu/rmsnorm.h"

#include <cmath>

#include "kernels/cpu/canonical.h"

namespace lime::cpu {

void rmsnorm_ref(const float* x, const float* w, float* y, int64_t n, float eps) {
  if (n <= 0) return;
  const float mean = dot_canonical(x, x, n) / static_cast<float>(n);
  const float scale = 1.0f / std::sqrt(mean + eps);
  for (int64_t i = 0; i < n; ++i) {
    const float v = x[i] * scale;
    y[i] = w ? v * w[i] : v;
  }
}

}  // namespace lime::cpu
