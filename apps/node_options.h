// Command-line options of lime-node, and the TOML cluster file that describes the same for scripted deployments.
#pragma once
#include <string>

#include "actors/cluster_config.h"
#include "actors/network_types.h"
#include "runtime/backend.h"
#include "runtime/result.h"

namespace lime::app {

struct node_cli_options {
  node_config node;
  std::string model_path;
  std::string secret_file;
  std::string cluster_file;
  bool verify_model = false;
  std::string log_level = "info";
  bool help = false;
  fault_config faults;  // test hook: --fault KIND:ACTION:PROB[:DELAY_MS] (repeatable), --fault-seed N
  backend_options backend;  // --backend cpu|cuda|auto, --device-budget SIZE, --cuda-unified (runtime/backend.h)
};

// Parses argv (a --cluster file is read in place, flags after it override it). Errors: a one-line message.
result<node_cli_options> parse_node_options(int argc, char** argv);
const char* node_usage();

// Fills o from the cluster file's entry for o->node.name (and the head/peers/join relations it implies).
// Format:
//   model = "path.gguf"            # optional (else -m)
//   secret_file = "secret"         # optional
//   [[node]]                       # one per node; the one with head = true is the head
//   name = "head"  listen = "127.0.0.1:7000"  head = true  mem_budget = "512M"  threads = 1  placement = "..."
result<void> apply_cluster_file(const std::string& path, node_cli_options* o);

}  // namespace lime::app
