// lime-chat --connect: the chat front end against a cluster's head (the head renders, tokenizes and generates;
// this process only sends the conversation's text and prints the streamed answer), and --status.
#pragma once
#include "apps/chat_options.h"

namespace lime::app {

int run_remote_chat(const chat_cli_options& o);

}  // namespace lime::app
