// Status values returned by kernels (no exceptions, no logging in kernels/).
#pragma once

namespace lime {

enum class kstatus : int {
  ok = 0,
  unsupported_type,  // the tensor type has no kernel here
  bad_shape,         // a dimension is negative, zero where it must not be, or not a multiple of the block size
  bad_argument,      // a null pointer or an inconsistent parameter
};

const char* kstatus_name(kstatus s);

}  // namespace lime
