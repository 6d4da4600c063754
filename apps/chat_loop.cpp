// lime-chat's front end: one turn with -p, or the interactive loop (libedit, /reset, /quit, Ctrl-C).
#include "apps/chat_loop.h"

#include <editline/readline.h>
#include <signal.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <iostream>

#include "runtime/checksum.h"

namespace lime::app {
namespace {

std::atomic<bool> g_cancel{false};
std::atomic<bool> g_generating{false};

void on_sigint(int) {
  if (g_generating.load()) {
    g_cancel.store(true);
  } else {
    // At the prompt: leave like Ctrl-D would.
    static const char msg[] = "\n";
    (void)!write(STDERR_FILENO, msg, sizeof(msg) - 1);
    _exit(130);
  }
}

bool run_turn(chat_backend& b, const std::string& text, uint64_t* checksum, bool stats) {
  g_cancel.store(false);
  g_generating.store(true);
  const bool ok = b.turn(text, checksum, stats);
  g_generating.store(false);
  std::fputc('\n', stdout);
  std::fflush(stdout);
  return ok;
}

}  // namespace

const std::atomic<bool>* chat_cancel_flag() { return &g_cancel; }

int chat_fail(const std::string& msg) {
  std::fprintf(stderr, "lime-chat: error: %s\n", msg.c_str());
  return 1;
}

bool chat_stream_out(const std::string& piece) {
  std::fwrite(piece.data(), 1, piece.size(), stdout);
  std::fflush(stdout);
  return true;
}

void chat_print_stats(const generation_stats& st) {
  const int32_t n_eval = st.n_prompt - st.n_prompt_cached;
  std::fprintf(stderr, "[prompt: %d tokens (%d cached), %.1f tok/s | generated: %d tokens, %.1f tok/s | finish: %s]\n",
               st.n_prompt, st.n_prompt_cached, st.prompt_seconds > 0 ? n_eval / st.prompt_seconds : 0.0, st.n_generated,
               st.gen_seconds > 0 ? st.n_generated / st.gen_seconds : 0.0, finish_reason_name(st.reason));
  if (st.reason == finish_reason::context_full)
    std::fprintf(stderr, "lime-chat: the context is full; /reset starts a new conversation (or use a larger -c)\n");
}

int run_chat(const chat_cli_options& o, chat_backend& backend) {
  struct sigaction sa {};
  sa.sa_handler = on_sigint;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, nullptr);

  uint64_t checksum = 0;
  int rc = 0;
  if (o.has_prompt) {
    if (!backend.template_mode()) chat_stream_out(o.prompt);
    if (!run_turn(backend, o.prompt, &checksum, o.verbose)) rc = 1;
  } else {
    const bool tty = isatty(STDIN_FILENO);
    if (tty) {
      std::fprintf(stderr, "lime-chat: %s mode; /reset starts over, /quit leaves, Ctrl-C stops an answer\n",
                   backend.mode_name().c_str());
      using_history();
    }
    for (;;) {
      std::string line;
      if (tty) {
        char* raw = readline("> ");
        if (!raw) break;
        line = raw;
        std::free(raw);
        if (!line.empty()) add_history(line.c_str());
      } else if (!std::getline(std::cin, line)) {
        break;
      }
      if (line == "/quit" || line == "/exit") break;
      if (line == "/reset") {
        backend.reset();
        checksum = 0;
        std::fprintf(stderr, "(conversation reset)\n");
        continue;
      }
      if (line.empty() && backend.template_mode()) continue;
      run_turn(backend, line, &checksum, true);
    }
  }
  if (o.print_checksum) std::fprintf(stderr, "checksum: %s\n", checksum_hex(checksum).c_str());
  return rc;
}

}  // namespace lime::app
