// lime-chat: interactive chat (or one turn with -p) with a GGUF model in this process.
// Parses flags, loads the model, and runs turns; answers go to stdout, stats and logs to stderr.
#include <editline/readline.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cinttypes>
#include <cstdio>
#include <iostream>
#include <string>

#include "apps/chat_options.h"
#include "runtime/chat.h"
#include "runtime/checksum.h"
#include "runtime/model.h"
#include "runtime/tokenizer.h"

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

int fail(const std::string& msg) {
  std::fprintf(stderr, "lime-chat: error: %s\n", msg.c_str());
  return 1;
}

void print_stats(const lime::generation_stats& st) {
  const int32_t n_eval = st.n_prompt - st.n_prompt_cached;
  std::fprintf(stderr, "[prompt: %d tokens (%d cached), %.1f tok/s | generated: %d tokens, %.1f tok/s | finish: %s]\n",
               st.n_prompt, st.n_prompt_cached, st.prompt_seconds > 0 ? n_eval / st.prompt_seconds : 0.0, st.n_generated,
               st.gen_seconds > 0 ? st.n_generated / st.gen_seconds : 0.0, lime::finish_reason_name(st.reason));
  if (st.reason == lime::finish_reason::context_full)
    std::fprintf(stderr, "lime-chat: the context is full; /reset starts a new conversation (or use a larger -c)\n");
}

bool stream_out(const std::string& piece) {
  std::fwrite(piece.data(), 1, piece.size(), stdout);
  std::fflush(stdout);
  return true;
}

// Runs one turn; returns false on an error (already printed).
bool run_turn(lime::chat_session& chat, const std::string& text, uint64_t* checksum, bool stats) {
  g_cancel.store(false);
  g_generating.store(true);
  auto r = chat.turn(text, stream_out, &g_cancel);
  g_generating.store(false);
  std::fputc('\n', stdout);
  std::fflush(stdout);
  if (!r.ok()) {
    std::fprintf(stderr, "lime-chat: error: %s\n", r.err().message.c_str());
    return false;
  }
  *checksum = r->checksum;
  if (stats) print_stats(*r);
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  lime::app::chat_cli_options o;
  std::string err;
  if (!lime::app::parse_chat_options(argc, argv, &o, &err)) return fail(err);
  if (o.help) {
    std::fputs(lime::app::chat_usage(), stdout);
    return 0;
  }
  auto m = lime::model::load(o.model_path);
  if (!m.ok()) return fail(m.err().message);
  auto voc = lime::vocab_load(m->file());
  if (!voc.ok()) return fail(voc.err().message);
  auto tok = lime::tokenizer::create(*voc);
  if (!tok.ok()) return fail(tok.err().message);
  auto sess = lime::session::create(*m, tok->get_vocab(), o.session);
  if (!sess.ok()) return fail(sess.err().message);
  lime::chat_session chat(**sess, *tok, o.chat);

  if (o.verbose) {
    std::fprintf(stderr, "model: %s\n", m->describe().c_str());
    std::fprintf(stderr, "context %d, threads %d, kv %s, seed %" PRIu64 "%s, template %s\n", (*sess)->n_ctx(), (*sess)->n_threads(),
                 lime::tensor_type_name(o.session.kv_type), o.chat.sampling.seed, o.has_seed ? "" : " (random)",
                 lime::chat_family_name(chat.family()));
  }
  if (o.session.kv_type != lime::tensor_type::f32)
    std::fprintf(stderr, "lime-chat: KV cache in %s (opt-in): logits are not bitwise equal to the f32 default\n",
                 lime::tensor_type_name(o.session.kv_type));
  if (!chat.fallback_reason().empty()) std::fprintf(stderr, "lime-chat: %s\n", chat.fallback_reason().c_str());

  struct sigaction sa {};
  sa.sa_handler = on_sigint;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, nullptr);

  uint64_t checksum = 0;
  int rc = 0;
  if (o.has_prompt) {
    if (!chat.template_mode()) stream_out(o.prompt);
    if (!run_turn(chat, o.prompt, &checksum, o.verbose)) rc = 1;
  } else {
    const bool tty = isatty(STDIN_FILENO);
    if (tty) {
      std::fprintf(stderr, "lime-chat: %s mode; /reset starts over, /quit leaves, Ctrl-C stops an answer\n",
                   chat.template_mode() ? lime::chat_family_name(chat.family()) : "plain-completion");
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
        chat.reset();
        std::fprintf(stderr, "(conversation reset)\n");
        continue;
      }
      if (line.empty() && chat.template_mode()) continue;
      run_turn(chat, line, &checksum, true);
    }
  }
  if (o.print_checksum) std::fprintf(stderr, "checksum: %s\n", lime::checksum_hex(checksum).c_str());
  return rc;
}
