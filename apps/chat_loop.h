// The chat front end shared by lime-chat's two back ends (a model in this process, or a cluster's head): the -p
// single turn, the interactive loop with libedit, Ctrl-C handling, the stats line and the checksum line.
#pragma once
#include <atomic>
#include <cstdint>
#include <string>

#include "apps/chat_options.h"
#include "runtime/session.h"

namespace lime::app {

class chat_backend {
 public:
  virtual ~chat_backend() = default;
  virtual bool template_mode() const = 0;
  virtual std::string mode_name() const = 0;  // "plain-completion" or the template family
  // One turn: streams the answer with chat_stream_out, polls chat_cancelled(); on success sets *checksum (the chain
  // since the last reset) and returns true; on an error prints "lime-chat: error: ..." and returns false.
  virtual bool turn(const std::string& text, uint64_t* checksum, bool stats) = 0;
  virtual void reset() = 0;
};

// Runs -p or the interactive loop; returns the process exit code.
int run_chat(const chat_cli_options& o, chat_backend& backend);

bool chat_stream_out(const std::string& piece);
void chat_print_stats(const generation_stats& st);
const std::atomic<bool>* chat_cancel_flag();  // set by Ctrl-C while a turn runs
int chat_fail(const std::string& msg);        // prints "lime-chat: error: msg", returns 1

}  // namespace lime::app
