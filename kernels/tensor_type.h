// Tensor element types with GGML's numbering (as stored in GGUF files) and their block geometry.
// Owns only static facts about types; no allocation.
#pragma once
#include <cstddef>
#include <cstdint>

namespace lime {

enum class tensor_type : uint32_t {
  f32 = 0, f16 = 1, q4_0 = 2, q4_1 = 3, q5_0 = 6, q5_1 = 7, q8_0 = 8, q8_1 = 9,
  q2_k = 10, q3_k = 11, q4_k = 12, q5_k = 13, q6_k = 14, q8_k = 15,
  iq2_xxs = 16, iq2_xs = 17, iq3_xxs = 18, iq1_s = 19, iq4_nl = 20, iq3_s = 21, iq2_s = 22, iq4_xs = 23,
  i8 = 24, i16 = 25, i32 = 26, i64 = 27, f64 = 28, iq1_m = 29, bf16 = 30,
  tq1_0 = 34, tq2_0 = 35, mxfp4 = 39,
};

struct tensor_type_info {
  const char* name;     // "f32", "q4_k", ... (lower case)
  int32_t block_elems;  // elements per block (1 for plain types)
  int32_t block_bytes;  // bytes per block
  bool computable;      // lime has dequantize + matmul kernels for it
};

// Facts about a raw type id from a file; nullptr when the id is unknown (never existed or was removed from GGML).
const tensor_type_info* tensor_type_lookup(uint32_t raw_id);
// Same for a valid enum value (never nullptr for the enumerators above).
const tensor_type_info& tensor_type_traits(tensor_type t);
const char* tensor_type_name(tensor_type t);
// Parses "f32", "q4_k", "Q4_K" ...; returns false when unknown.
bool tensor_type_from_name(const char* name, tensor_type* out);

// Bytes of a row of n_elems elements; n_elems must be a multiple of block_elems (returns 0 otherwise).
size_t tensor_row_bytes(tensor_type t, int64_t n_elems);

}  // namespace lime
