// lime-chat: interactive chat (or one turn with -p) with a GGUF model in this process.
// Parses flags, loads the model, and runs turns; answers go to stdout, stats and logs to stderr.
#include <cinttypes>
#include <cstdio>
#include <string>

#include "apps/chat_loop.h"
#include "apps/chat_options.h"
#include "apps/chat_remote.h"
#include "runtime/chat.h"
#include "runtime/mem_budget.h"
#include "runtime/model.h"
#include "runtime/placement.h"
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

std::string mib(uint64_t b) { return lime::format_size(b); }

// --verbose with --mem-budget: how the budget was split and what the weight store keeps and streams.
void print_budget_plan(const lime::session& s) {
  const lime::mem_budget_split* b = s.budget();
  const lime::weight_store* w = s.weights();
  if (!b || !w) return;
  const lime::weight_store_stats st = w->stats();
  std::fprintf(stderr, "memory: %s\n", b->describe().c_str());
  std::fprintf(stderr, "weights: %s resident of %s, %s streamed per token, ring %d x %s, row buffer %s, I/O %s%s%s, policy %s\n",
               mib(st.resident_bytes).c_str(), mib(st.weight_bytes).c_str(), mib(st.streamed_per_pass).c_str(), st.ring_depth,
               mib(st.slot_bytes).c_str(), mib(st.row_buffer_bytes).c_str(), lime::io_mode_name(st.mode),
               st.mode_note.empty() ? "" : ": ", st.mode_note.c_str(), lime::weight_policy_name(st.policy));
  std::fprintf(stderr, "weights: %s held (%s locked%s%s)\n", mib(st.accounted).c_str(), mib(st.locked_bytes).c_str(),
               st.lock_note.empty() ? "" : ": ", st.lock_note.c_str());
}

// --verbose at exit: the store's counters and the process's peak resident set.
void print_exit_stats(const lime::session& s) {
  if (const lime::weight_store* w = s.weights()) {
    const lime::weight_store_stats st = w->stats();
    std::fprintf(stderr,
                 "weights: %" PRIu64 " passes, streamed %s (+%s embedding rows, %s loaded resident) in %" PRIu64
                 " reads, %.3f s reading, compute waited %.3f s (%" PRIu64 " waits), peak held %s of %s\n",
                 st.n_passes, mib(st.bytes_streamed).c_str(), mib(st.bytes_rows).c_str(), mib(st.bytes_loaded).c_str(), st.n_reads,
                 st.read_seconds, st.wait_seconds, st.n_waits, mib(st.peak_accounted).c_str(), mib(st.budget).c_str());
  }
  const lime::process_memory pm = lime::process_memory_read();
  std::fprintf(stderr, "memory: peak RSS %s (now %s: anonymous %s, file %s)%s%s\n", mib(pm.peak_rss).c_str(), mib(pm.rss).c_str(),
               mib(pm.rss_anon).c_str(), mib(pm.rss_file).c_str(), s.budget() ? ", budget " : "",
               s.budget() ? mib(s.budget()->budget).c_str() : "");
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
    std::fprintf(stderr, "backend: %s\n", (*sess)->device().describe().c_str());
  }
  if (o.session.kv_type != lime::tensor_type::f32)
    std::fprintf(stderr, "lime-chat: KV cache in %s (opt-in): logits are not bitwise equal to the f32 default\n",
                 lime::tensor_type_name(o.session.kv_type));
  if ((*sess)->device().fast_prefill())
    std::fprintf(stderr, "lime-chat: --fast-prefill (opt-in): prompt batches of %d+ tokens multiply through cuBLAS in fp16; "
                         "logits are not bitwise equal to the CPU path and depend on the batch\n",
                 lime::k_fast_prefill_rows);
  if (!chat.fallback_reason().empty()) std::fprintf(stderr, "lime-chat: %s\n", chat.fallback_reason().c_str());

  if (o.verbose) print_budget_plan(**sess);

  local_backend backend(chat);
  const int rc = lime::app::run_chat(o, backend);
  if (o.verbose) print_exit_stats(**sess);
  return rc;
}
