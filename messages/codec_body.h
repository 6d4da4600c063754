// Internal to the codec: per-kind builders and the validating reader of a frame's body.
#pragma once
#include "messages/lime.capnp.h"
#include "messages/wire_types.h"
#include "runtime/result.h"

namespace lime::msg {

void encode_body(wire::Frame::Builder& b, const hello& v);
void encode_body(wire::Frame::Builder& b, const auth& v);
void encode_body(wire::Frame::Builder& b, const heartbeat& v);
void encode_body(wire::Frame::Builder& b, const micro_batch_msg& v);
void encode_body(wire::Frame::Builder& b, const sampled_tokens& v);
void encode_body(wire::Frame::Builder& b, const prefetch_request& v);
void encode_body(wire::Frame::Builder& b, const prefetch_ready& v);
void encode_body(wire::Frame::Builder& b, const memory_pressure& v);
void encode_body(wire::Frame::Builder& b, const assignment& v);
void encode_body(wire::Frame::Builder& b, const node_profile& v);
void encode_body(wire::Frame::Builder& b, const generation_request& v);
void encode_body(wire::Frame::Builder& b, const token_stream& v);
void encode_body(wire::Frame::Builder& b, const generation_done& v);
void encode_body(wire::Frame::Builder& b, const cancel_request& v);
void encode_body(wire::Frame::Builder& b, const error_report& v);
void encode_body(wire::Frame::Builder& b, const seq_free& v);
void encode_body(wire::Frame::Builder& b, const assignment_ack& v);
void encode_body(wire::Frame::Builder& b, const status_request& v);
void encode_body(wire::Frame::Builder& b, const cluster_status& v);

// May throw kj::Exception on malformed input (the caller catches); returns bad_format for inconsistent content.
result<body> decode_body(const wire::Frame::Reader& r);

}  // namespace lime::msg
