// Reference embedding lookup: copies (f32) or dequantizes (other computable types) selected table rows to fp32.
// Checks every id before writing anything.
#include "kernels/cpu/get_rows.h"

#include <cstddef>
#include <cstring>

#include "kernels/cpu/quants.h"

namespace lime::cpu {

kstatus get_rows_ref(tensor_type t, const void* table, int64_t n_rows, int64_t n_embd, const int32_t* ids,
                     int64_t n_ids, float* out) {
  const tensor_type_info& info = tensor_type_traits(t);
  if (!info.computable) return kstatus::unsupported_type;
  if (n_rows < 0 || n_embd < 0 || n_ids < 0 || n_embd % info.block_elems != 0) return kstatus::bad_shape;
  if (n_ids > 0 && (!table || !ids || !out)) return kstatus::bad_argument;
  for (int64_t i = 0; i < n_ids; ++i) {
    if (ids[i] < 0 || ids[i] >= n_rows) return kstatus::bad_argument;
  }
  const size_t row_bytes = tensor_row_bytes(t, n_embd);
  for (int64_t i = 0; i < n_ids; ++i) {
    const uint8_t* row = static_cast<const uint8_t*>(table) + static_cast<size_t>(ids[i]) * row_bytes;
    float* dst = out + i * n_embd;
    if (t == tensor_type::f32) {
      std::memcpy(dst, row, row_bytes);
    } else {
      kstatus st = dequantize_row(t, row, dst, n_embd);
      if (st != kstatus::ok) return st;
    }
  }
  return kstatus::ok;
}

}  // namespace lime::cpu
