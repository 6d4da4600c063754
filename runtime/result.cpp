// Names of error codes.
#include "runtime/result.h"

namespace lime {

const char* errc_name(errc c) {
  switch (c) {
    case errc::io_error: return "io error";
    case errc::bad_format: return "bad format";
    case errc::unsupported: return "unsupported";
    case errc::missing: return "missing";
    case errc::invalid_argument: return "invalid argument";
    case errc::out_of_memory: return "out of memory";
    case errc::context_full: return "context full";
    case errc::cancelled: return "cancelled";
    case errc::internal: return "internal error";
    case errc::unavailable: return "unavailable";
  }
  return "unknown error";
}

}  // namespace lime
