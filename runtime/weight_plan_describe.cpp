// weight_plan's small pieces: policy names, the page size and the one-line description of a plan.
#include <unistd.h>

#include <cstdio>

#include "runtime/weight_plan.h"

namespace lime {
namespace {

std::string mib(uint64_t b) {
  char s[32];
  std::snprintf(s, sizeof(s), "%.1f MiB", static_cast<double>(b) / (1024.0 * 1024.0));
  return s;
}

}  // namespace

uint64_t page_bytes() {
  static const uint64_t p = [] {
    const long v = ::sysconf(_SC_PAGESIZE);
    return v > 0 ? static_cast<uint64_t>(v) : 4096u;
  }();
  return p;
}

const char* weight_policy_name(weight_policy p) {
  switch (p) {
    case weight_policy::lime: return "lime";
    case weight_policy::whole_layer: return "whole-layer";
    case weight_policy::synchronous: return "sync";
    case weight_policy::resident: return "resident";
  }
  return "?";
}

result<weight_policy> weight_policy_from_name(const std::string& s) {
  for (weight_policy p : {weight_policy::lime, weight_policy::whole_layer, weight_policy::synchronous, weight_policy::resident})
    if (s == weight_policy_name(p)) return p;
  return make_error(errc::invalid_argument, "weight policy '" + s + "' is unknown (lime, whole-layer, sync, resident)");
}

std::string weight_plan::describe() const {
  size_t streamed_layers = 0, n_layers = 0;
  for (const plan_unit& u : units)
    if (u.kind == unit_kind::layer) ++n_layers, streamed_layers += u.streamed() ? 1 : 0;
  std::string s = std::string(weight_policy_name(policy)) + ": resident " + mib(resident_bytes) + " of " + mib(weight_bytes) +
                  ", ring " + std::to_string(ring_depth) + " x " + mib(slot_bytes) + ", streams " + mib(streamed_per_pass) +
                  "/pass (" + std::to_string(streamed_layers) + "/" + std::to_string(n_layers) + " layers";
  if (head_begin >= 0) s += ", head rows " + std::to_string(units[static_cast<size_t>(head_begin)].n_rows) + " resident";
  s += embd_rows_streamed ? ", embedding rows on demand)" : ")";
  return s + ", accounted " + mib(total_alloc);
}

}  // namespace lime
