// Command-line values shared by lime-node and lime-chat --connect: HOST:PORT and the cluster secret file.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "actors/cluster_config.h"
#include "runtime/result.h"

namespace lime::app {

// "HOST:PORT" (HOST may be "[::1]" or empty for any interface when listening; PORT 0..65535).
result<host_port> parse_host_port(const std::string& text);
// The secret is the file's bytes with one trailing newline removed. Errors: io_error, invalid_argument (empty file).
result<std::vector<uint8_t>> read_secret_file(const std::string& path);

}  // namespace lime::app
