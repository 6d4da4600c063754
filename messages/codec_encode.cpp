// Builders: plain frame bodies -> Cap'n Proto.
#include <cstring>

#include "messages/codec_body.h"

namespace lime::msg {
namespace {

template <class List, class Vec>
void fill_list(List list, const Vec& v) {
  for (size_t i = 0; i < v.size(); ++i) list.set(static_cast<unsigned>(i), v[i]);
}

void set_params(wire::SamplingParams::Builder b, const sampling_params& p) {
  b.setTemperature(p.temperature);
  b.setTopK(p.top_k);
  b.setTopP(p.top_p);
  b.setMinP(p.min_p);
  b.setRepeatPenalty(p.repeat_penalty);
  b.setRepeatLastN(p.repeat_last_n);
  b.setSeed(p.seed);
}

void set_address(wire::NodeAddress::Builder b, const node_address& a) {
  b.setName(a.name);
  b.setHost(a.host);
  b.setPort(a.port);
}

kj::ArrayPtr<const kj::byte> bytes_of(const void* p, size_t n) { return kj::arrayPtr(static_cast<const kj::byte*>(p), n); }

// The whole string as Text, NUL bytes included (byte tokens such as <0x00> stream a NUL; a std::string would
// otherwise convert through c_str() and stop at the first one).
capnp::Text::Reader as_text(const std::string& s) { return capnp::Text::Reader(s.data(), s.size()); }

}  // namespace

void encode_body(wire::Frame::Builder& b, const hello& v) {
  auto h = b.getBody().initHello();
  h.setNodeName(v.node_name);
  h.setRole(v.role == peer_role::client ? wire::Hello::Role::CLIENT : wire::Hello::Role::NODE);
  h.setNonce(bytes_of(v.nonce.data(), v.nonce.size()));
}

void encode_body(wire::Frame::Builder& b, const auth& v) { b.getBody().initAuth().setMac(bytes_of(v.mac.data(), v.mac.size())); }

void encode_body(wire::Frame::Builder& b, const heartbeat& v) {
  auto h = b.getBody().initHeartbeat();
  h.setSequence(v.sequence);
  h.setSentNanos(v.sent_nanos);
}

void encode_body(wire::Frame::Builder& b, const micro_batch_msg& v) {
  auto m = b.getBody().initMicroBatch();
  const micro_batch& mb = v.batch;
  const unsigned n = static_cast<unsigned>(mb.size());
  m.setBatchId(v.batch_id);
  m.setFirstLayer(v.first_layer);
  fill_list(m.initSeqIds(n), mb.seq);
  fill_list(m.initPositions(n), mb.pos);
  if (v.first_layer == 0) fill_list(m.initTokens(static_cast<unsigned>(mb.tokens.size())), mb.tokens);
  m.setNEmbd(static_cast<uint32_t>(v.n_embd));
  if (!mb.embd.empty()) m.setActivations(bytes_of(mb.embd.data(), mb.embd.size() * sizeof(float)));
  std::vector<int32_t> rows;
  for (size_t i = 0; i < mb.want_logits.size(); ++i)
    if (mb.want_logits[i]) rows.push_back(static_cast<int32_t>(i));
  fill_list(m.initSampleRows(static_cast<unsigned>(rows.size())), rows);
  auto ss = m.initSampling(static_cast<unsigned>(v.sampling.size()));
  for (size_t i = 0; i < v.sampling.size(); ++i) {
    auto s = ss[static_cast<unsigned>(i)];
    s.setSeqId(v.sampling[i].seq_id);
    set_params(s.initParams(), v.sampling[i].params);
    s.setChecksum(v.sampling[i].checksum);
    fill_list(s.initHistory(static_cast<unsigned>(v.sampling[i].history.size())), v.sampling[i].history);
    s.setIgnoreEog(v.sampling[i].ignore_eog);
  }
}

void encode_body(wire::Frame::Builder& b, const sampled_tokens& v) {
  auto s = b.getBody().initSampledTokens();
  s.setBatchId(v.batch_id);
  auto list = s.initTokens(static_cast<unsigned>(v.tokens.size()));
  for (size_t i = 0; i < v.tokens.size(); ++i) {
    auto t = list[static_cast<unsigned>(i)];
    t.setSeqId(v.tokens[i].seq_id);
    t.setPosition(v.tokens[i].position);
    t.setToken(v.tokens[i].token);
    t.setChecksum(v.tokens[i].checksum);
  }
}

void encode_body(wire::Frame::Builder& b, const prefetch_request& v) {
  auto p = b.getBody().initPrefetchRequest();
  p.setGroup(v.group);
  p.setLayerLo(v.layer_lo);
  p.setLayerHi(v.layer_hi);
}

void encode_body(wire::Frame::Builder& b, const prefetch_ready& v) {
  auto p = b.getBody().initPrefetchReady();
  p.setGroup(v.group);
  p.setOk(v.ok);
  p.setMessage(v.message);
}

void encode_body(wire::Frame::Builder& b, const memory_pressure& v) {
  auto p = b.getBody().initMemoryPressure();
  p.setNode(v.node);
  p.setKvBytesUsed(v.kv_bytes_used);
  p.setKvBytesLimit(v.kv_bytes_limit);
  p.setLevel(static_cast<wire::MemoryPressure::Level>(static_cast<uint16_t>(v.level)));
  p.setWeightBytesResident(v.weight_bytes_resident);
  p.setWeightBytesStreamed(v.weight_bytes_streamed);
  p.setRss(v.rss);
  p.setPeakRss(v.peak_rss);
}

void encode_body(wire::Frame::Builder& b, const assignment& v) {
  auto a = b.getBody().initAssignment();
  auto groups = a.initGroups(static_cast<unsigned>(v.groups.size()));
  for (size_t i = 0; i < v.groups.size(); ++i) {
    groups[static_cast<unsigned>(i)].setLayerLo(v.groups[i].layer_lo);
    groups[static_cast<unsigned>(i)].setLayerHi(v.groups[i].layer_hi);
    groups[static_cast<unsigned>(i)].setNode(v.groups[i].node);
  }
  auto nodes = a.initNodes(static_cast<unsigned>(v.nodes.size()));
  for (size_t i = 0; i < v.nodes.size(); ++i) set_address(nodes[static_cast<unsigned>(i)], v.nodes[i]);
  a.setModelId(v.model_id);
  a.setHead(v.head);
}

void encode_body(wire::Frame::Builder& b, const node_profile& v) {
  auto p = b.getBody().initProfile();
  p.setName(v.name);
  p.setMemBudget(v.mem_budget);
  p.setComputeRate(v.compute_rate);
  p.setStorageReadRate(v.storage_read_rate);
  set_address(p.initListen(), v.listen);
  p.setModelId(v.model_id);
}

void encode_body(wire::Frame::Builder& b, const generation_request& v) {
  auto g = b.getBody().initGenerationRequest();
  g.setRequestId(v.request_id);
  auto msgs = g.initMessages(static_cast<unsigned>(v.messages.size()));
  for (size_t i = 0; i < v.messages.size(); ++i) {
    msgs[static_cast<unsigned>(i)].setRole(v.messages[i].role);
    msgs[static_cast<unsigned>(i)].setContent(as_text(v.messages[i].content));
  }
  set_params(g.initParams(), v.params);
  g.setNPredict(v.n_predict);
  g.setRaw(v.raw);
  g.setIgnoreEos(v.ignore_eos);
  g.setWantChecksum(v.want_checksum);
  g.setChecksumInit(v.checksum_init);
}

void encode_body(wire::Frame::Builder& b, const token_stream& v) {
  auto t = b.getBody().initTokenStream();
  t.setRequestId(v.request_id);
  fill_list(t.initTokens(static_cast<unsigned>(v.tokens.size())), v.tokens);
  t.setText(as_text(v.text));
}

void encode_body(wire::Frame::Builder& b, const generation_done& v) {
  auto d = b.getBody().initGenerationDone();
  d.setRequestId(v.request_id);
  d.setFinishReason(v.finish_reason);
  d.setNPrompt(v.n_prompt);
  d.setNGenerated(v.n_generated);
  d.setChecksum(v.checksum);
  d.setPromptSeconds(v.prompt_seconds);
  d.setGenSeconds(v.gen_seconds);
}

void encode_body(wire::Frame::Builder& b, const cancel_request& v) { b.getBody().initCancel().setRequestId(v.request_id); }

void encode_body(wire::Frame::Builder& b, const error_report& v) {
  auto e = b.getBody().initError();
  e.setRequestId(v.request_id);
  e.setCode(v.code);
  e.setMessage(v.message);
}

void encode_body(wire::Frame::Builder& b, const seq_free& v) {
  fill_list(b.getBody().initSeqFree(static_cast<unsigned>(v.seq_ids.size())), v.seq_ids);
}

void encode_body(wire::Frame::Builder& b, const assignment_ack& v) {
  auto a = b.getBody().initAssignmentAck();
  a.setNode(v.node);
  a.setOk(v.ok);
  a.setMessage(v.message);
}

void encode_body(wire::Frame::Builder& b, const status_request&) { b.getBody().setStatusRequest(); }

void encode_body(wire::Frame::Builder& b, const cluster_status& v) {
  auto c = b.getBody().initClusterStatus();
  c.setEpoch(v.epoch);
  c.setState(v.state);
  c.setModelId(v.model_id);
  c.setRequestsActive(v.requests_active);
  c.setRequestsQueued(v.requests_queued);
  c.setMessage(v.message);
  c.setStaleDropped(v.stale_dropped);
  c.setReplays(v.replays);
  c.setChatMode(v.chat_mode);
  c.setNCtx(v.n_ctx);
  auto nodes = c.initNodes(static_cast<unsigned>(v.nodes.size()));
  for (size_t i = 0; i < v.nodes.size(); ++i) {
    const node_status& s = v.nodes[i];
    auto n = nodes[static_cast<unsigned>(i)];
    n.setName(s.name);
    n.setAddress(s.address);
    n.setGroups(s.groups);
    n.setMemBudget(s.mem_budget);
    n.setWeightBytes(s.weight_bytes);
    n.setWeightBytesStreamed(s.weight_bytes_streamed);
    n.setRss(s.rss);
    n.setPeakRss(s.peak_rss);
    n.setKvBytesUsed(s.kv_bytes_used);
    n.setKvBytesLimit(s.kv_bytes_limit);
    n.setBandwidthIn(s.bandwidth_in);
    n.setRttNanos(s.rtt_nanos);
    n.setAlive(s.alive);
  }
}

}  // namespace lime::msg
