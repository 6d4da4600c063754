// lime-chat: interactive chat (or one turn with -p) with a GGUF model in this process.
// Parses flags, loads the model, and runs turns; answers go to stdout, stats and logs to stderr.
#include <cinttypes>
#include <cstdio>
#include <string>

#include "apps/chat_loop.h"
#include "apps/chat_options.h"
#include "apps/chat_remote.h"
#include "runtime/chat.h"
#include "runtime/model.h"
#include "runtime/tokenizer.h"

namespace {

// A model in this process.
class local_backend : public lime::app::chat_backend {
 public:
  explicit local_backend(lime::chat_session& chat) : chat_(chat) {}
  bool template_mode() const override { return chat_.template_mode(); }
  std::string mode_name() const override {
    return chat_.template_mode() ? lime::chat_family_name(chat_.family()) : "plain-completion";
  }
  bool turn(const std::string& text, uint64_t* checksum, bool stats) override {
    auto r = chat_.turn(text, lime::app::chat_stream_out, lime::app::chat_cancel_flag());
    if (!r.ok()) {
      lime::app::chat_fail(r.err().message);
      return false;
    }
    *checksum = r->checksum;
    if (stats) lime::app::chat_print_stats(*r);
    return true;
  }
  void reset() override { chat_.reset(); }

 private:
  lime::chat_session& chat_;
};

int fail(const std::string& msg) { return lime::app::chat_fail(msg); }

}  // namespace

int main(int argc, char** argv) {
  lime::app::chat_cli_options o;
  std::string err;
  if (!lime::app::parse_chat_options(argc, argv, &o, &err)) return fail(err);
  if (o.help) {
    std::fputs(lime::app::chat_usage(), stdout);
    return 0;
  }
  if (!o.connect.empty()) return lime::app::run_remote_chat(o);
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

  local_backend backend(chat);
  return lime::app::run_chat(o, backend);
}
