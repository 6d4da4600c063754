// Block geometry table for every GGML tensor type id.
#include "kernels/tensor_type.h"
#include "kernels/status.h"

#include <cctype>
#include <cstring>

namespace lime {
namespace {

struct entry {
  uint32_t id;
  tensor_type_info info;
};

// Sizes from GGML's block layouts (QK_K = 256).
const entry k_types[] = {
    {0, {"f32", 1, 4, true}},         {1, {"f16", 1, 2, true}},
    {2, {"q4_0", 32, 18, true}},      {3, {"q4_1", 32, 20, true}},
    {6, {"q5_0", 32, 22, true}},      {7, {"q5_1", 32, 24, true}},
    {8, {"q8_0", 32, 34, true}},      {9, {"q8_1", 32, 36, false}},
    {10, {"q2_k", 256, 84, false}},   {11, {"q3_k", 256, 110, false}},
    {12, {"q4_k", 256, 144, true}},   {13, {"q5_k", 256, 176, true}},
    {14, {"q6_k", 256, 210, true}},   {15, {"q8_k", 256, 292, false}},
    {16, {"iq2_xxs", 256, 66, false}}, {17, {"iq2_xs", 256, 74, false}},
    {18, {"iq3_xxs", 256, 98, false}}, {19, {"iq1_s", 256, 50, false}},
    {20, {"iq4_nl", 32, 18, false}},  {21, {"iq3_s", 256, 110, false}},
    {22, {"iq2_s", 256, 82, false}},  {23, {"iq4_xs", 256, 136, false}},
    {24, {"i8", 1, 1, false}},        {25, {"i16", 1, 2, false}},
    {26, {"i32", 1, 4, false}},       {27, {"i64", 1, 8, false}},
    {28, {"f64", 1, 8, false}},       {29, {"iq1_m", 256, 56, false}},
    {30, {"bf16", 1, 2, true}},       {34, {"tq1_0", 256, 54, false}},
    {35, {"tq2_0", 256, 66, false}},  {39, {"mxfp4", 32, 17, false}},
};

}  // namespace

const tensor_type_info* tensor_type_lookup(uint32_t raw_id) {
  for (const entry& e : k_types) {
    if (e.id == raw_id) return &e.info;
  }
  return nullptr;
}

const tensor_type_info& tensor_type_traits(tensor_type t) {
  const tensor_type_info* info = tensor_type_lookup(static_cast<uint32_t>(t));
  static const tensor_type_info unknown = {"unknown", 1, 0, false};
  return info ? *info : unknown;
}

const char* tensor_type_name(tensor_type t) { return tensor_type_traits(t).name; }

bool tensor_type_from_name(const char* name, tensor_type* out) {
  if (!name) return false;
  char lower[16] = {0};
  size_t n = std::strlen(name);
  if (n == 0 || n >= sizeof(lower)) return false;
  for (size_t i = 0; i < n; ++i) lower[i] = static_cast<char>(std::tolower(static_cast<unsigned char>(name[i])));
  for (const entry& e : k_types) {
    if (std::strcmp(e.info.name, lower) == 0) {
      *out = static_cast<tensor_type>(e.id);
      return true;
    }
  }
  return false;
}

size_t tensor_row_bytes(tensor_type t, int64_t n_elems) {
  const tensor_type_info& info = tensor_type_traits(t);
  if (n_elems < 0 || info.block_bytes == 0 || n_elems % info.block_elems != 0) return 0;
  return static_cast<size_t>(n_elems / info.block_elems) * static_cast<size_t>(info.block_bytes);
}

const char* kstatus_name(kstatus s) {
  switch (s) {
    case kstatus::ok: return "ok";
    case kstatus::unsupported_type: return "unsupported tensor type";
    case kstatus::bad_shape: return "bad shape";
    case kstatus::bad_argument: return "bad argument";
  }
  return "unknown status";
}

}  // namespace lime
