// A node's measured profile for the supervisor and the planner: fp32 FMA rate of its compute threads and the cold
// read rate of the storage that holds its model file. Quick probes (well under a second), not benchmarks.
#pragma once
#include <cstdint>
#include <string>

namespace lime {

struct device_profile {
  double compute_flops = 0;    // fp32 FLOP/s with the kernels' ISA on n_threads threads (an FMA counts 2)
  double storage_bytes_s = 0;  // bytes/s reading the model file cold (O_DIRECT when the file system allows)
  bool direct_io = false;      // the read rate was measured with O_DIRECT
};

// Reads at most probe_bytes of `path` (from its middle, page cache dropped first). A failed probe leaves 0.
device_profile measure_device_profile(const std::string& path, int n_threads, uint64_t probe_bytes = 32ull << 20);

}  // namespace lime
