// Embedding lookup: dequantizes selected rows of a table into fp32.
#pragma once
#include <cstdint>

#include "kernels/status.h"
#include "kernels/tensor_type.h"

namespace lime::cpu {

// table: [n_rows, n_embd] in type t; out: [n_ids, n_embd] fp32. Any id outside [0, n_rows) -> bad_argument
// (nothing written for it is guaranteed).
kstatus get_rows_ref(tensor_type t, const void* table, int64_t n_rows, int64_t n_embd, const int32_t* ids,
                     int64_t n_ids, float* out);

}  // namespace lime::cpu
