// The --connect back end: a client-role network actor and a blocking receive loop per turn.
#include "apps/chat_remote.h"

#include <unistd.h>

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/after.hpp>
#include <caf/exit_reason.hpp>
#include <caf/scoped_actor.hpp>
#include <spdlog/spdlog.h>

#include <cinttypes>
#include <cstdio>

#include "actors/network_actor.h"
#include "apps/chat_loop.h"
#include "apps/net_args.h"
#include "runtime/checksum.h"
#include "runtime/placement.h"

namespace lime::app {
namespace {

using namespace std::chrono_literals;

finish_reason reason_of(const std::string& s) {
  if (s == "eog") return finish_reason::end_of_generation;
  if (s == "context") return finish_reason::context_full;
  if (s == "cancelled") return finish_reason::cancelled;
  return finish_reason::length;
}

class remote_backend : public chat_backend {
 public:
  remote_backend(caf::scoped_actor& self, caf::actor net, std::string head, const chat_cli_options& o,
                 msg::cluster_status st)
      : self_(self), net_(std::move(net)), head_(std::move(head)), o_(o), status_(std::move(st)) {
    reset();
  }
  bool template_mode() const override { return !o_.chat.raw && status_.chat_mode != "plain"; }
  std::string mode_name() const override { return template_mode() ? status_.chat_mode : "plain-completion"; }
  void reset() override {
    turns_.clear();
    checksum_ = 0;
    if (template_mode() && !o_.chat.system_prompt.empty()) turns_.push_back({"system", o_.chat.system_prompt});
  }

  bool turn(const std::string& text, uint64_t* checksum, bool stats) override {
    if (lost_) return chat_fail("the connection to the head is gone") == 0;
    msg::generation_request req;
    req.request_id = ++next_id_;
    req.messages = turns_;
    req.messages.push_back({"user", text});
    req.params = o_.chat.sampling;
    req.n_predict = o_.chat.n_predict;
    req.raw = o_.chat.raw;
    req.ignore_eos = o_.chat.ignore_eos;
    req.want_checksum = true;
    req.checksum_init = checksum_;
    self_->send(net_, net_send_atom_v, head_, make_frame_ptr(req));
    std::string answer;
    bool done = false, ok = false, cancel_sent = false;
    while (!done) {
      self_->receive(
          [&](const std::string&, const frame_ptr& f) {
            if (auto* ts = std::get_if<msg::token_stream>(&f->content)) {
              if (ts->request_id != req.request_id) return;
              answer += ts->text;
              if (!ts->text.empty()) chat_stream_out(ts->text);
            } else if (auto* d = std::get_if<msg::generation_done>(&f->content)) {
              if (d->request_id != req.request_id) return;
              generation_stats st;
              st.n_prompt = d->n_prompt;
              st.n_generated = d->n_generated;
              st.prompt_seconds = d->prompt_seconds;
              st.gen_seconds = d->gen_seconds;
              st.checksum = d->checksum;
              st.reason = reason_of(d->finish_reason);
              checksum_ = d->checksum;
              if (stats) chat_print_stats(st);
              done = ok = true;
            } else if (auto* e = std::get_if<msg::error_report>(&f->content)) {
              if (e->request_id != req.request_id && e->request_id != 0) return;
              chat_fail(e->message);
              done = true;
            }
          },
          [&](const peer_down_msg& m) {
            if (m.peer != head_) return;
            lost_ = true;
            chat_fail("lost the connection to the cluster's head (" + m.reason + ")");
            done = true;
          },
          [&](const peer_up_msg&) {}, [&](const peer_refused_msg&) {},
          caf::after(50ms) >> [&] {
            if (!cancel_sent && chat_cancel_flag()->load()) {
              cancel_sent = true;
              self_->send(net_, net_send_atom_v, head_, make_frame_ptr(msg::cancel_request{req.request_id}));
            }
          });
    }
    if (!ok) return false;
    turns_.push_back({"user", text});
    turns_.push_back({"assistant", answer});
    *checksum = checksum_;
    return true;
  }

  bool lost() const { return lost_; }

 private:
  caf::scoped_actor& self_;
  caf::actor net_;
  std::string head_;
  const chat_cli_options& o_;
  msg::cluster_status status_;
  std::vector<msg::chat_turn> turns_;
  uint64_t checksum_ = 0;
  uint64_t next_id_ = 0;
  bool lost_ = false;
};

void print_status(const msg::cluster_status& s) {
  std::printf("cluster: %s, placement epoch %" PRIu64 ", model %016" PRIx64 ", context %d, chat %s\n", s.state.c_str(),
              s.epoch, s.model_id, s.n_ctx, s.chat_mode.c_str());
  if (!s.message.empty()) std::printf("  %s\n", s.message.c_str());
  std::printf("requests: %u active, %u queued; %" PRIu64 " sequences replayed; %" PRIu64 " frames of older epochs dropped\n",
              s.requests_active, s.requests_queued, s.replays, s.stale_dropped);
  std::printf("%-12s %-22s %-6s %-10s %-12s %-12s %-14s %-22s %-12s %-10s %s\n", "node", "address", "alive", "layers",
              "budget", "weights", "streamed/tok", "kv used/limit", "link in", "rtt", "rss/peak");
  for (const auto& n : s.nodes) {
    const std::string kv = format_size(n.kv_bytes_used) + "/" + format_size(n.kv_bytes_limit);
    const std::string bw = n.bandwidth_in > 0 ? format_size(static_cast<uint64_t>(n.bandwidth_in)) + "/s" : "-";
    const std::string rtt = n.rtt_nanos >= 0 ? std::to_string(n.rtt_nanos / 1000) + " us" : "-";
    // weights: what the node holds in memory (all of its layers' weights unless it streams some: then the resident
    // part, and streamed/tok the bytes it reads per token).
    const std::string streamed = n.weight_bytes_streamed > 0 ? format_size(n.weight_bytes_streamed) : "-";
    // rss/peak: the node process's resident set and its peak at its last report (what the budget bounds).
    const std::string rss = n.peak_rss ? format_size(n.rss) + "/" + format_size(n.peak_rss) : "-";
    std::printf("%-12s %-22s %-6s %-10s %-12s %-12s %-14s %-22s %-12s %-10s %s\n", n.name.c_str(), n.address.c_str(),
                n.alive ? "yes" : "no", n.groups.empty() ? "-" : n.groups.c_str(),
                n.mem_budget ? format_size(n.mem_budget).c_str() : "unlimited", format_size(n.weight_bytes).c_str(),
                streamed.c_str(), kv.c_str(), bw.c_str(), rtt.c_str(), rss.c_str());
  }
}

// The reason inside a CAF error's text (`system_error(..., ("refused: bad mac"))` -> `refused: bad mac`), with a
// hint for the cases a user can fix.
std::string readable(const caf::error& e) {
  std::string text = caf::to_string(e);
  const size_t a = text.find("(\""), b = text.rfind("\")");
  if (a != std::string::npos && b != std::string::npos && b > a + 2) text = text.substr(a + 2, b - a - 2);
  if (text.find("bad mac") != std::string::npos) text += " (the cluster secret differs: check --cluster-secret-file)";
  return text;
}

// Connects and asks the head for its status. Returns 0 and fills *head / *st, or prints the error and returns 1.
int connect_head(caf::scoped_actor& self, caf::actor net, const host_port& hp, std::string* head, msg::cluster_status* st) {
  int rc = 0;
  self->request(net, 15s, net_connect_atom_v, std::string(), hp.host, hp.port)
      .receive([&](const std::string& name) { *head = name; },
               [&](const caf::error& e) { rc = chat_fail("cannot connect to " + hp.str() + ": " + readable(e)); });
  if (rc) return rc;
  self->send(net, net_send_atom_v, *head, make_frame_ptr(msg::status_request{}));
  bool got = false, failed = false;
  const auto deadline = std::chrono::steady_clock::now() + 15s;
  while (!got && !failed && std::chrono::steady_clock::now() < deadline) {
    self->receive(
        [&](const std::string&, const frame_ptr& f) {
          if (auto* cs = std::get_if<msg::cluster_status>(&f->content)) {
            *st = *cs;
            got = true;
          } else if (auto* e = std::get_if<msg::error_report>(&f->content)) {
            failed = true;
            chat_fail(e->message);
          }
        },
        [&](const peer_down_msg& m) {
          failed = true;
          chat_fail("the head closed the connection (" + m.reason + ")");
        },
        [&](const peer_up_msg&) {}, [&](const peer_refused_msg&) {}, caf::after(100ms) >> [] {});
  }
  if (!got) return failed ? 1 : chat_fail("the head at " + hp.str() + " did not answer a status request");
  return 0;
}

}  // namespace

int run_remote_chat(const chat_cli_options& o) {
  auto hp = parse_host_port(o.connect);
  if (!hp.ok()) return chat_fail(hp.err().message);
  network_config nc;
  nc.name = "client-" + std::to_string(getpid());
  nc.role = msg::peer_role::client;
  if (!o.secret_file.empty()) {
    auto secret = read_secret_file(o.secret_file);
    if (!secret.ok()) return chat_fail(secret.err().message);
    nc.secret = std::move(secret).value();
  }
  spdlog::set_level(o.verbose ? spdlog::level::info : spdlog::level::err);  // the client reports errors itself
  caf::actor_system_config cfg;
  lime_init_caf(cfg);
  cfg.set("scheduler.max-threads", 2);
  caf::actor_system sys{cfg};
  int rc = 0;
  {
    caf::scoped_actor self{sys};
    caf::actor net = spawn_network(sys, nc);
    self->send(net, net_sink_atom_v, caf::actor_cast<caf::actor>(self));
    std::string head;
    msg::cluster_status st;
    rc = connect_head(self, net, *hp, &head, &st);
    if (rc == 0 && o.status) {
      print_status(st);
    } else if (rc == 0) {
      if (o.verbose) std::fprintf(stderr, "connected to %s (%s): %s, context %d\n", head.c_str(), hp->str().c_str(), st.state.c_str(), st.n_ctx);
      remote_backend backend(self, net, head, o, st);
      rc = run_chat(o, backend);
      if (backend.lost() && rc == 0) rc = 1;
    }
    self->send_exit(net, caf::exit_reason::user_shutdown);
  }
  return rc;
}

}  // namespace lime::app
