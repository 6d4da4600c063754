// Reference softmax of one row in place: sequential max, exp_f32, canonical sum, one division per element.
#include "kernels/cpu/softmax.h"

#include "kernels/cpu/canonical.h"
#include "kernels/cpu/math.h"

namespace lime::cpu {

void softmax_ref(float* x, int64_t n) {
  if (n <= 0) return;
  float m = x[0];
  for (int64_t i = 1; i < n; ++i) {
    if (x[i] > m) m = x[i];
  }
  // A row of only -inf entries has no defined softmax: -inf - -inf is NaN, and so is every output.
  for (int64_t i = 0; i < n; ++i) x[i] = exp_f32(x[i] - m);
  const float sum = sum_canonical(x, n);
  for (int64_t i = 0; i < n; ++i) x[i] = x[i] / sum;
}

}  // namespace lime::cpu
