// lime-node: one per device. Loads the model, listens, starts the node actor (and, on the head, the supervisor and
// scheduler), prints "listening: HOST:PORT", and runs until SIGTERM/SIGINT, then shuts down cleanly.
#include <signal.h>
#include <unistd.h>

#include <caf/actor_system.hpp>
#include <caf/actor_system_config.hpp>
#include <caf/exit_reason.hpp>
#include <caf/scoped_actor.hpp>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <cinttypes>
#include <cstdio>

#include "actors/network_actor.h"
#include "actors/node.h"
#include "apps/net_args.h"
#include "apps/node_options.h"
#include "runtime/device_profile.h"
#include "runtime/model_id.h"
#include "runtime/placement.h"

namespace {

int fail(const std::string& msg) {
  std::fprintf(stderr, "lime-node: error: %s\n", msg.c_str());
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  auto parsed = lime::app::parse_node_options(argc, argv);
  if (!parsed.ok()) return fail(parsed.err().message);
  lime::app::node_cli_options o = std::move(parsed).value();
  if (o.help) {
    std::fputs(lime::app::node_usage(), stdout);
    return 0;
  }
  spdlog::set_default_logger(spdlog::stderr_color_mt("lime"));
  spdlog::set_level(spdlog::level::from_str(o.log_level));

  auto m = lime::model::load(o.model_path);
  if (!m.ok()) return fail(m.err().message);
  auto voc = lime::vocab_load(m->file());
  if (!voc.ok()) return fail(voc.err().message);
  auto tok = lime::tokenizer::create(*voc);
  if (!tok.ok()) return fail(tok.err().message);
  std::shared_ptr<lime::backend> device;  // nullptr: layer groups run the CPU forward pass
  if (o.backend.kind == lime::backend_kind::cuda) {
    auto dev = lime::make_backend(o.backend);
    if (!dev.ok()) return fail(dev.err().message);
    device = std::move(dev).value();
    spdlog::info("backend: {}", device->describe());
    if (device->fast_prefill())
      spdlog::warn("--fast-prefill: prompt batches of {}+ tokens multiply through cuBLAS in fp16; this node's logits are "
                   "NOT bitwise those of the CPU path and depend on the batch", lime::k_fast_prefill_rows);
  }
  o.node.model_id = lime::model_content_id(m->file());
  if (o.verify_model) {
    auto h = lime::model_full_hash(o.model_path);
    if (!h.ok()) return fail(h.err().message);
    o.node.model_id = *h;
  }
  {
    const lime::device_profile prof = lime::measure_device_profile(o.model_path, o.node.n_threads);
    o.node.compute_rate = prof.compute_flops;
    o.node.storage_read_rate = prof.storage_bytes_s;
    spdlog::info("profile: {:.1f} GFLOP/s fp32 on {} thread(s), model storage {:.0f} MB/s{}", prof.compute_flops / 1e9,
                 o.node.n_threads > 0 ? o.node.n_threads : 0, prof.storage_bytes_s / 1e6,
                 prof.direct_io ? " (O_DIRECT)" : " (buffered)");
  }
  if (!o.secret_file.empty()) {
    auto secret = lime::app::read_secret_file(o.secret_file);
    if (!secret.ok()) return fail(secret.err().message);
    o.node.secret = std::move(secret).value();
  }

  // SIGTERM/SIGINT are taken by sigwait below: block them before any thread starts so every thread inherits it.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  caf::actor_system_config cfg;
  lime::lime_init_caf(cfg);
  cfg.set("scheduler.max-threads", 2);
  caf::actor_system sys{cfg};
  lime::network_config nc;
  nc.secret = o.node.secret;
  nc.heartbeat_interval = o.node.heartbeat_interval;
  nc.heartbeat_timeout = o.node.heartbeat_timeout;
  caf::actor net, node;
  int rc = 0;
  {
    caf::scoped_actor self{sys};
    if (o.node.name.empty()) {  // unique enough: hostname and pid
      char host[256] = {0};
      gethostname(host, sizeof(host) - 1);
      o.node.name = std::string(host) + "-" + std::to_string(getpid());
    }
    nc.name = o.node.name;
    net = lime::spawn_network(sys, nc);
    self->request(net, std::chrono::seconds(10), lime::net_listen_atom_v, o.node.listen.host, o.node.listen.port)
        .receive([&](uint16_t port) { o.node.listen.port = port; },
                 [&](const caf::error& e) { rc = fail("cannot listen on " + o.node.listen.str() + ": " + caf::to_string(e)); });
    if (rc == 0) {
      lime::node_context ctx{&*m, &tok->get_vocab(), &*tok, device};
      spdlog::info("node {}: {} (model id {:016x}), budget {}{}", o.node.name, m->describe(), o.node.model_id,
                   o.node.mem_budget ? lime::format_size(o.node.mem_budget) : std::string("unlimited"),
                   o.node.head ? ", head" : "");
      if (!o.faults.rules.empty()) {
        spdlog::warn("node {}: fault injection on ({} rules, seed {})", o.node.name, o.faults.rules.size(), o.faults.seed);
        self->request(net, std::chrono::seconds(5), lime::net_faults_atom_v, o.faults).receive([] {}, [](const caf::error&) {});
      }
      node = lime::spawn_node(sys, o.node, ctx, net);
      std::printf("listening: %s:%u\n", o.node.listen.host.empty() ? "0.0.0.0" : o.node.listen.host.c_str(), o.node.listen.port);
      std::fflush(stdout);
      int sig = 0;
      sigwait(&stop_signals, &sig);
      spdlog::info("node {}: {} received, shutting down", o.node.name, sig == SIGTERM ? "SIGTERM" : "SIGINT");
      self->send_exit(node, caf::exit_reason::user_shutdown);
    }
    if (net) self->send_exit(net, caf::exit_reason::user_shutdown);
  }
  return rc;
}
