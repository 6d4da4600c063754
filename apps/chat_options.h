// Command-line options of lime-chat (llama.cpp's flag names and defaults where they exist).
#pragma once
#include <cstdint>
#include <string>

#include "runtime/chat.h"
#include "runtime/session.h"

namespace lime::app {

struct chat_cli_options {
  std::string model_path;
  std::string prompt;
  bool has_prompt = false;  // -p given: one turn, then exit
  bool has_seed = false;
  bool verbose = false;
  bool print_checksum = false;
  bool help = false;
  std::string connect;      // HOST:PORT of a cluster's head ("" = a model in this process)
  std::string secret_file;  // cluster secret for --connect
  bool status = false;      // --status: print the cluster and exit
  chat_options chat;
  session_config session;
};

// Parses argv; on a bad flag returns false with *err set to a one-line message.
bool parse_chat_options(int argc, char** argv, chat_cli_options* out, std::string* err);
const char* chat_usage();

}  // namespace lime::app
