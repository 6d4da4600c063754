// dequantize_row / quantize_row: argument checks and dispatch by tensor type to the per-format code in
// quants_legacy.cpp and quants_k.cpp; the plain types (f32, f16, bf16) are converted here.
#include <cstring>

#include "kernels/cpu/quants.h"
#include "kernels/cpu/quants_detail.h"

namespace lime::cpu {
namespace {

// Common checks, in this order: the type has kernels here, pointers are set, n is whole blocks.
kstatus check_row(tensor_type t, const void* a, const void* b, int64_t n, int64_t* n_blocks) {
  const tensor_type_info& info = tensor_type_traits(t);
  if (!info.computable) return kstatus::unsupported_type;
  if (a == nullptr || b == nullptr) return kstatus::bad_argument;
  if (n < 0 || n % info.block_elems != 0) return kstatus::bad_shape;
  *n_blocks = n / info.block_elems;
  return kstatus::ok;
}

}  // namespace

kstatus dequantize_row(tensor_type t, const void* src, float* dst, int64_t n) {
  int64_t nb = 0;
  const kstatus st = check_row(t, src, dst, n, &nb);
  if (st != kstatus::ok) return st;
  namespace qd = quants_detail;
  switch (t) {
    case tensor_type::f32:
      std::memmove(dst, src, static_cast<size_t>(n) * sizeof(float));
      return kstatus::ok;
    case tensor_type::f16:
    case tensor_type::bf16: {
      const auto* p = static_cast<const unsigned char*>(src);
      for (int64_t i = 0; i < n; ++i) {
        uint16_t h;
        std::memcpy(&h, p + 2 * i, sizeof h);
        dst[i] = t == tensor_type::f16 ? fp16_to_fp32(h) : bf16_to_fp32(h);
      }
      return kstatus::ok;
    }
    case tensor_type::q4_0: qd::dequantize_q4_0(src, dst, nb); return kstatus::ok;
    case tensor_type::q4_1: qd::dequantize_q4_1(src, dst, nb); return kstatus::ok;
    case tensor_type::q5_0: qd::dequantize_q5_0(src, dst, nb); return kstatus::ok;
    case tensor_type::q5_1: qd::dequantize_q5_1(src, dst, nb); return kstatus::ok;
    case tensor_type::q8_0: qd::dequantize_q8_0(src, dst, nb); return kstatus::ok;
    case tensor_type::q4_k: qd::dequantize_q4_k(src, dst, nb); return kstatus::ok;
    case tensor_type::q5_k: qd::dequantize_q5_k(src, dst, nb); return kstatus::ok;
    case tensor_type::q6_k: qd::dequantize_q6_k(src, dst, nb); return kstatus::ok;
    default: return kstatus::unsupported_type;  // computable in the table but not handled here
  }
}

kstatus quantize_row(tensor_type t, const float* src, void* dst, int64_t n) {
  int64_t nb = 0;
  const kstatus st = check_row(t, src, dst, n, &nb);
  if (st != kstatus::ok) return st;
  namespace qd = quants_detail;
  switch (t) {
    case tensor_type::f32:
      std::memmove(dst, src, static_cast<size_t>(n) * sizeof(float));
      return kstatus::ok;
    case tensor_type::f16:
    case tensor_type::bf16: {
      auto* p = static_cast<unsigned char*>(dst);
      for (int64_t i = 0; i < n; ++i) {
        const uint16_t h = t == tensor_type::f16 ? fp32_to_fp16(src[i]) : fp32_to_bf16(src[i]);
        std::memcpy(p + 2 * i, &h, sizeof h);
      }
      return kstatus::ok;
    }
    case tensor_type::q4_0: qd::quantize_q4_0(src, dst, nb); return kstatus::ok;
    case tensor_type::q4_1: qd::quantize_q4_1(src, dst, nb); return kstatus::ok;
    case tensor_type::q5_0: qd::quantize_q5_0(src, dst, nb); return kstatus::ok;
    case tensor_type::q5_1: qd::quantize_q5_1(src, dst, nb); return kstatus::ok;
    case tensor_type::q8_0: qd::quantize_q8_0(src, dst, nb); return kstatus::ok;
    case tensor_type::q4_k: qd::quantize_q4_k(src, dst, nb); return kstatus::ok;
    case tensor_type::q5_k: qd::quantize_q5_k(src, dst, nb); return kstatus::ok;
    case tensor_type::q6_k: qd::quantize_q6_k(src, dst, nb); return kstatus::ok;
    default: return kstatus::unsupported_type;
  }
}

}  // namespace lime::cpu
