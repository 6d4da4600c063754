// The TOML cluster file: every node of a deployment in one file; each process picks its entry by --name.
#include <toml++/toml.h>

#include "apps/net_args.h"
#include "apps/node_options.h"
#include "runtime/placement.h"

namespace lime::app {

result<void> apply_cluster_file(const std::string& path, node_cli_options* o) {
  toml::table doc;
  try {
    doc = toml::parse_file(path);
  } catch (const toml::parse_error& e) {
    return make_error(errc::bad_format, "cluster file " + path + ": " + std::string(e.description()));
  }
  if (auto m = doc["model"].value<std::string>()) o->model_path = *m;
  if (auto s = doc["secret_file"].value<std::string>()) o->secret_file = *s;
  auto* nodes = doc["node"].as_array();
  if (!nodes || nodes->empty()) return make_error(errc::bad_format, "cluster file " + path + ": no [[node]] entries");
  host_port head_addr;
  std::vector<host_port> others;
  bool found = false, have_head = false;
  for (auto& entry : *nodes) {
    auto* t = entry.as_table();
    if (!t) return make_error(errc::bad_format, "cluster file " + path + ": [[node]] must be tables");
    auto name = (*t)["name"].value<std::string>();
    auto listen = (*t)["listen"].value<std::string>();
    if (!name || !listen) return make_error(errc::bad_format, "cluster file " + path + ": every node needs name and listen");
    LIME_TRY(host_port hp, parse_host_port(*listen));
    const bool is_head = (*t)["head"].value_or(false);
    if (is_head) {
      if (have_head) return make_error(errc::bad_format, "cluster file " + path + ": more than one head");
      have_head = true;
      head_addr = hp;
    }
    if (*name != o->node.name) {
      if (!is_head) others.push_back(hp);
      continue;
    }
    found = true;
    o->node.listen = hp;
    o->node.head = is_head;
    if (auto b = (*t)["mem_budget"].value<std::string>()) {
      LIME_TRY(o->node.mem_budget, parse_size(*b));
    } else if (auto bi = (*t)["mem_budget"].value<int64_t>()) {
      o->node.mem_budget = static_cast<uint64_t>(*bi);
    }
    if (auto th = (*t)["threads"].value<int64_t>()) o->node.n_threads = static_cast<int32_t>(*th);
    if (auto p = (*t)["placement"].value<std::string>()) o->node.placement = *p;
  }
  if (!found) return make_error(errc::invalid_argument, "cluster file " + path + " has no node named '" + o->node.name + "'");
  if (!have_head) return make_error(errc::bad_format, "cluster file " + path + ": no node has head = true");
  // The head dials every worker (and again whenever one is lost); workers wait to be dialed.
  if (o->node.head) o->node.peers = others;
  (void)head_addr;
  return {};
}

}  // namespace lime::app
