// Readers: Cap'n Proto -> plain frame bodies, checking every length, index and range a peer could lie about.
#include <cstring>
#include <string>

#include "messages/codec_body.h"

namespace lime::msg {
namespace {

constexpr uint32_t k_max_embd = 1u << 20;

error bad(const std::string& what) { return make_error(errc::bad_format, "frame: " + what); }

template <class List>
std::vector<int32_t> ints(List l) {
  std::vector<int32_t> v;
  v.reserve(l.size());
  for (auto x : l) v.push_back(x);
  return v;
}

std::string text(capnp::Text::Reader t) { return std::string(t.cStr(), t.size()); }

std::vector<uint8_t> data(capnp::Data::Reader d) { return std::vector<uint8_t>(d.begin(), d.end()); }

sampling_params params(wire::SamplingParams::Reader r) {
  sampling_params p;
  p.temperature = r.getTemperature();
  p.top_k = r.getTopK();
  p.top_p = r.getTopP();
  p.min_p = r.getMinP();
  p.repeat_penalty = r.getRepeatPenalty();
  p.repeat_last_n = r.getRepeatLastN();
  p.seed = r.getSeed();
  return p;
}

node_address address(wire::NodeAddress::Reader r) { return node_address{text(r.getName()), text(r.getHost()), r.getPort()}; }

result<body> read_micro_batch(wire::MicroBatch::Reader r) {
  micro_batch_msg m;
  m.batch_id = r.getBatchId();
  m.first_layer = r.getFirstLayer();
  if (m.first_layer < 0) return bad("micro-batch starts at a negative layer");
  micro_batch& b = m.batch;
  b.seq = ints(r.getSeqIds());
  b.pos = ints(r.getPositions());
  const size_t n = b.seq.size();
  if (n == 0) return bad("empty micro-batch");
  if (b.pos.size() != n) return bad("micro-batch positions and sequence ids differ in length");
  for (int32_t p : b.pos)
    if (p < 0) return bad("micro-batch has a negative position");
  const uint32_t n_embd = r.getNEmbd();
  capnp::Data::Reader act = r.getActivations();
  if (m.first_layer == 0) {
    b.tokens = ints(r.getTokens());
    if (b.tokens.size() != n) return bad("micro-batch at layer 0 needs one token per row");
    if (act.size() != 0) return bad("micro-batch at layer 0 carries activations");
  } else {
    if (n_embd == 0 || n_embd > k_max_embd) return bad("micro-batch row width " + std::to_string(n_embd) + " is out of range");
    if (act.size() != n * n_embd * sizeof(float)) return bad("micro-batch activations are not [rows, n_embd] fp32");
    b.embd.resize(n * n_embd);
    std::memcpy(b.embd.data(), act.begin(), act.size());
  }
  m.n_embd = static_cast<int32_t>(n_embd);
  b.want_logits.assign(n, 0);
  auto rows = r.getSampleRows();
  auto ss = r.getSampling();
  if (rows.size() != ss.size()) return bad("micro-batch has " + std::to_string(rows.size()) + " sampled rows but " + std::to_string(ss.size()) + " sampling entries");
  int64_t prev = -1;
  for (unsigned i = 0; i < rows.size(); ++i) {
    const int32_t row = rows[i];
    if (row <= prev || static_cast<size_t>(row) >= n) return bad("micro-batch sampled rows must be increasing row indices");
    prev = row;
    b.want_logits[static_cast<size_t>(row)] = 1;
    seq_sampling s;
    s.seq_id = ss[i].getSeqId();
    if (s.seq_id != b.seq[static_cast<size_t>(row)]) return bad("micro-batch sampling entry names another sequence than its row");
    s.params = params(ss[i].getParams());
    s.checksum = ss[i].getChecksum();
    s.history = ints(ss[i].getHistory());
    s.ignore_eog = ss[i].getIgnoreEog();
    m.sampling.push_back(std::move(s));
  }
  return body(std::move(m));
}

result<body> read_assignment(wire::Assignment::Reader r) {
  assignment a;
  for (auto g : r.getGroups()) {
    layer_group_msg lg{g.getLayerLo(), g.getLayerHi(), text(g.getNode())};
    if (lg.layer_lo < 0 || lg.layer_hi <= lg.layer_lo) return bad("assignment has an empty or negative layer range");
    if (!a.groups.empty() && a.groups.back().layer_hi != lg.layer_lo) return bad("assignment layer groups are not contiguous");
    a.groups.push_back(std::move(lg));
  }
  for (auto n : r.getNodes()) a.nodes.push_back(address(n));
  a.model_id = r.getModelId();
  a.head = text(r.getHead());
  return body(std::move(a));
}

result<body> read_generation_request(wire::GenerationRequest::Reader r) {
  generation_request g;
  g.request_id = r.getRequestId();
  for (auto m : r.getMessages()) g.messages.push_back(chat_turn{text(m.getRole()), text(m.getContent())});
  g.params = params(r.getParams());
  g.n_predict = r.getNPredict();
  if (g.n_predict < -1) return bad("generation request with n_predict < -1");
  g.raw = r.getRaw();
  g.ignore_eos = r.getIgnoreEos();
  g.want_checksum = r.getWantChecksum();
  g.checksum_init = r.getChecksumInit();
  return body(std::move(g));
}

result<body> read_cluster_status(wire::ClusterStatus::Reader r) {
  cluster_status c;
  c.epoch = r.getEpoch();
  c.state = text(r.getState());
  c.model_id = r.getModelId();
  c.requests_active = r.getRequestsActive();
  c.requests_queued = r.getRequestsQueued();
  c.message = text(r.getMessage());
  c.stale_dropped = r.getStaleDropped();
  c.replays = r.getReplays();
  c.chat_mode = text(r.getChatMode());
  c.n_ctx = r.getNCtx();
  for (auto n : r.getNodes()) {
    c.nodes.push_back(node_status{text(n.getName()), text(n.getAddress()), text(n.getGroups()), n.getMemBudget(),
                                  n.getWeightBytes(), n.getKvBytesUsed(), n.getKvBytesLimit(), n.getBandwidthIn(),
                                  n.getRttNanos(), n.getAlive(), n.getWeightBytesStreamed(), n.getRss(),
                                  n.getPeakRss()});
  }
  return body(std::move(c));
}

}  // namespace

result<body> decode_body(const wire::Frame::Reader& f) {
  auto r = f.getBody();
  switch (r.which()) {
    case wire::Frame::Body::HELLO: {
      auto h = r.getHello();
      return body(hello{text(h.getNodeName()), h.getRole() == wire::Hello::Role::CLIENT ? peer_role::client : peer_role::node, data(h.getNonce())});
    }
    case wire::Frame::Body::AUTH: return body(auth{data(r.getAuth().getMac())});
    case wire::Frame::Body::HEARTBEAT: return body(heartbeat{r.getHeartbeat().getSequence(), r.getHeartbeat().getSentNanos()});
    case wire::Frame::Body::MICRO_BATCH: return read_micro_batch(r.getMicroBatch());
    case wire::Frame::Body::SAMPLED_TOKENS: {
      sampled_tokens s;
      s.batch_id = r.getSampledTokens().getBatchId();
      for (auto t : r.getSampledTokens().getTokens()) {
        if (t.getPosition() < 0 || t.getToken() < 0) return bad("sampled token with a negative position or id");
        s.tokens.push_back(sampled_token{t.getSeqId(), t.getPosition(), t.getToken(), t.getChecksum()});
      }
      return body(std::move(s));
    }
    case wire::Frame::Body::PREFETCH_REQUEST: {
      auto p = r.getPrefetchRequest();
      return body(prefetch_request{p.getGroup(), p.getLayerLo(), p.getLayerHi()});
    }
    case wire::Frame::Body::PREFETCH_READY: {
      auto p = r.getPrefetchReady();
      return body(prefetch_ready{p.getGroup(), p.getOk(), text(p.getMessage())});
    }
    case wire::Frame::Body::MEMORY_PRESSURE: {
      auto p = r.getMemoryPressure();
      const auto level = static_cast<uint16_t>(p.getLevel());
      if (level > 2) return bad("memory pressure with an unknown level");
      return body(memory_pressure{text(p.getNode()), p.getKvBytesUsed(), p.getKvBytesLimit(), static_cast<pressure_level>(level),
                                  p.getWeightBytesResident(), p.getWeightBytesStreamed(), p.getRss(), p.getPeakRss()});
    }
    case wire::Frame::Body::ASSIGNMENT: return read_assignment(r.getAssignment());
    case wire::Frame::Body::PROFILE: {
      auto p = r.getProfile();
      return body(node_profile{text(p.getName()), p.getMemBudget(), p.getComputeRate(), p.getStorageReadRate(), address(p.getListen()), p.getModelId()});
    }
    case wire::Frame::Body::GENERATION_REQUEST: return read_generation_request(r.getGenerationRequest());
    case wire::Frame::Body::TOKEN_STREAM: {
      auto t = r.getTokenStream();
      return body(token_stream{t.getRequestId(), ints(t.getTokens()), text(t.getText())});
    }
    case wire::Frame::Body::GENERATION_DONE: {
      auto d = r.getGenerationDone();
      return body(generation_done{d.getRequestId(), text(d.getFinishReason()), d.getNPrompt(), d.getNGenerated(), d.getChecksum(), d.getPromptSeconds(), d.getGenSeconds()});
    }
    case wire::Frame::Body::CANCEL: return body(cancel_request{r.getCancel().getRequestId()});
    case wire::Frame::Body::ERROR: {
      auto e = r.getError();
      return body(error_report{e.getRequestId(), text(e.getCode()), text(e.getMessage())});
    }
    case wire::Frame::Body::SEQ_FREE: return body(seq_free{ints(r.getSeqFree())});
    case wire::Frame::Body::ASSIGNMENT_ACK: {
      auto a = r.getAssignmentAck();
      return body(assignment_ack{text(a.getNode()), a.getOk(), text(a.getMessage())});
    }
    case wire::Frame::Body::STATUS_REQUEST: return body(status_request{});
    case wire::Frame::Body::CLUSTER_STATUS: return read_cluster_status(r.getClusterStatus());
  }
  return bad("unknown body kind " + std::to_string(static_cast<unsigned>(r.which())));
}

}  // namespace lime::msg
