// Run-time choice for attention, swiglu and rmsnorm: the best variant isa_best() names, else the reference. Every
// variant is bitwise equal to the reference, so the choice never changes a result.
#include <cstdint>

#include "kernels/cpu/attention.h"
#include "kernels/cpu/isa.h"
#include "kernels/cpu/rmsnorm.h"
#include "kernels/cpu/swiglu.h"
#if LIME_ARCH_X86
#include "kernels/cpu/x86/ops_x86.h"
#elif LIME_ARCH_ARM64
#include "kernels/cpu/arm/ops_neon.h"
#endif

namespace lime::cpu {

kstatus attention(const attention_args& a) {
#if LIME_ARCH_X86
  switch (isa_best()) {
    case isa::avx512: return attention_avx512(a);
    case isa::avx2: return attention_avx2(a);
    default: break;
  }
#elif LIME_ARCH_ARM64
  if (isa_best() == isa::neon) return attention_neon(a);
#endif
  return attention_ref(a);
}

void swiglu(const float* gate, const float* up, float* out, int64_t n) {
#if LIME_ARCH_X86
  switch (isa_best()) {
    case isa::avx512: return swiglu_avx512(gate, up, out, n);
    case isa::avx2: return swiglu_avx2(gate, up, out, n);
    default: break;
  }
#elif LIME_ARCH_ARM64
  if (isa_best() == isa::neon) return swiglu_neon(gate, up, out, n);
#endif
  swiglu_ref(gate, up, out, n);
}

void rmsnorm(const float* x, const float* w, float* y, int64_t n, float eps) {
#if LIME_ARCH_X86
  switch (isa_best()) {
    case isa::avx512: return rmsnorm_avx512(x, w, y, n, eps);
    case isa::avx2: return rmsnorm_avx2(x, w, y, n, eps);
    default: break;
  }
#elif LIME_ARCH_ARM64
  if (isa_best() == isa::neon) return rmsnorm_neon(x, w, y, n, eps);
#endif
  rmsnorm_ref(x, w, y, n, eps);
}

}  // namespace lime::cpu
