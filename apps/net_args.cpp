// HOST:PORT parsing and the cluster secret file.
#include "apps/net_args.h"

#include <fstream>
#include <iterator>

namespace lime::app {

result<host_port> parse_host_port(const std::string& text) {
  const size_t colon = text.rfind(':');
  if (colon == std::string::npos) return make_error(errc::invalid_argument, "'" + text + "' is not HOST:PORT");
  std::string host = text.substr(0, colon);
  const std::string port = text.substr(colon + 1);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  if (port.empty() || port.size() > 5 || port.find_first_not_of("0123456789") != std::string::npos)
    return make_error(errc::invalid_argument, "'" + text + "' has no valid port");
  const unsigned long p = std::stoul(port);
  if (p > 65535) return make_error(errc::invalid_argument, "port " + port + " is out of range");
  return host_port{host, static_cast<uint16_t>(p)};
}

result<std::vector<uint8_t>> read_secret_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return make_error(errc::io_error, "cannot read the cluster secret file '" + path + "'");
  std::vector<uint8_t> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (!bytes.empty() && bytes.back() == '\n') bytes.pop_back();
  if (bytes.empty()) return make_error(errc::invalid_argument, "the cluster secret file '" + path + "' is empty");
  return bytes;
}

}  // namespace lime::app
