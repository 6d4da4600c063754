# lime's wire vocabulary: every frame between nodes (and between a client and the head) is one Frame.
# Versioned by Frame.version (protocolVersion below); a frame from an older placement epoch is dropped by the
# receiver. Activations travel as raw little-endian fp32 bytes, never logits.
@0xedc38fa640b2b480;

using Cxx = import "/capnp/c++.capnp";
$Cxx.namespace("lime::wire");

const protocolVersion :UInt16 = 1;

struct SamplingParams {
  temperature @0 :Float32;
  topK @1 :Int32;
  topP @2 :Float32;
  minP @3 :Float32;
  repeatPenalty @4 :Float32;
  repeatLastN @5 :Int32;
  seed @6 :UInt64;
}

# What the last stage needs to sample one sequence's next token.
struct SeqSampling {
  seqId @0 :Int32;
  params @1 :SamplingParams;
  checksum @2 :UInt64;        # running logits-checksum chain before this token
  history @3 :List(Int32);    # the repetition-penalty window (last repeatLastN tokens), oldest first
  ignoreEog @4 :Bool;
}

struct MicroBatch {
  batchId @0 :UInt64;
  firstLayer @1 :Int32;       # the layer the receiving group starts at
  seqIds @2 :List(Int32);     # [n]
  positions @3 :List(Int32);  # [n]
  tokens @4 :List(Int32);     # [n] when firstLayer == 0
  nEmbd @5 :UInt32;
  activations @6 :Data;       # [n, nEmbd] fp32 when firstLayer > 0
  sampleRows @7 :List(Int32); # rows whose logits are sampled at the last stage
  sampling @8 :List(SeqSampling);  # one per sampled row, same order
}

struct SampledToken {
  seqId @0 :Int32;
  position @1 :Int32;         # position the token will occupy
  token @2 :Int32;
  checksum @3 :UInt64;        # chain after this token
}

struct SampledTokens {
  batchId @0 :UInt64;
  tokens @1 :List(SampledToken);
}

struct PrefetchRequest {
  group @0 :Int32;
  layerLo @1 :Int32;
  layerHi @2 :Int32;
}

struct PrefetchReady {
  group @0 :Int32;
  ok @1 :Bool;
  message @2 :Text;
}

struct MemoryPressure {
  node @0 :Text;
  kvBytesUsed @1 :UInt64;
  kvBytesLimit @2 :UInt64;
  level @3 :Level;
  enum Level { low @0; normal @1; high @2; }
  weightBytesResident @4 :UInt64;  # the node's weights held in memory (mapped and faulted in, or a store's resident part)
  weightBytesStreamed @5 :UInt64;  # bytes its weight stores read per token (0: nothing streamed)
  rss @6 :UInt64;              # the node process's resident set now (VmRSS, bytes; 0 unknown)
  peakRss @7 :UInt64;          # its highest resident set so far (VmHWM, bytes; 0 unknown)
}

struct LayerGroup {
  layerLo @0 :Int32;
  layerHi @1 :Int32;          # exclusive
  node @2 :Text;
}

struct NodeAddress {
  name @0 :Text;
  host @1 :Text;
  port @2 :UInt16;
}

struct Assignment {
  groups @0 :List(LayerGroup);   # in pipeline order
  nodes @1 :List(NodeAddress);
  modelId @2 :UInt64;
  head @3 :Text;
}

struct NodeProfile {
  name @0 :Text;
  memBudget @1 :UInt64;        # bytes
  computeRate @2 :Float64;     # fp32 FLOP/s measured
  storageReadRate @3 :Float64; # bytes/s measured
  listen @4 :NodeAddress;
  modelId @5 :UInt64;
}

struct Heartbeat {
  sequence @0 :UInt64;
  sentNanos @1 :UInt64;
}

struct ChatMessage {
  role @0 :Text;
  content @1 :Text;
}

struct GenerationRequest {
  requestId @0 :UInt64;
  messages @1 :List(ChatMessage);  # the conversation; plain-completion models get the concatenated text
  params @2 :SamplingParams;
  nPredict @3 :Int32;
  raw @4 :Bool;
  ignoreEos @5 :Bool;
  wantChecksum @6 :Bool;
  checksumInit @7 :UInt64;     # chain value to continue from (a chat's earlier turns), 0 for a new conversation
}

struct TokenStream {
  requestId @0 :UInt64;
  tokens @1 :List(Int32);
  text @2 :Text;               # UTF-8-complete text of these tokens
}

struct GenerationDone {
  requestId @0 :UInt64;
  finishReason @1 :Text;       # eog, length, context, cancelled
  nPrompt @2 :Int32;
  nGenerated @3 :Int32;
  checksum @4 :UInt64;
  promptSeconds @5 :Float64;
  genSeconds @6 :Float64;
}

struct CancelRequest {
  requestId @0 :UInt64;
}

struct ErrorReport {
  requestId @0 :UInt64;        # 0 when not about a request
  code @1 :Text;
  message @2 :Text;
}

struct Hello {
  nodeName @0 :Text;
  role @1 :Role;
  nonce @2 :Data;              # 32 random bytes the peer must authenticate
  enum Role { node @0; client @1; }
}

struct Auth {
  mac @0 :Data;                # HMAC-SHA256(cluster secret, the peer's nonce || own name)
}

# A node's answer to an assignment, once its layer groups are built and its weights ready (or why not).
struct AssignmentAck {
  node @0 :Text;
  ok @1 :Bool;
  message @2 :Text;
}

struct NodeStatus {
  name @0 :Text;
  address @1 :Text;            # host:port it listens on
  groups @2 :Text;             # layer ranges it holds, "0-2,4-5" (hi exclusive), "" when none
  memBudget @3 :UInt64;
  weightBytes @4 :UInt64;      # weights of its groups held in memory (all of them unless some are streamed)
  kvBytesUsed @5 :UInt64;
  kvBytesLimit @6 :UInt64;
  bandwidthIn @7 :Float64;     # bytes/s measured on the head's link from it (0 for the head itself)
  rttNanos @8 :Int64;          # heartbeat round trip from the head (-1 unknown)
  alive @9 :Bool;
  weightBytesStreamed @10 :UInt64;  # bytes its weight stores read per token (0: everything resident)
  rss @11 :UInt64;             # its process's resident set at its last report (bytes; 0 unknown)
  peakRss @12 :UInt64;         # its process's peak resident set at its last report (bytes; 0 unknown)
}

struct ClusterStatus {
  epoch @0 :UInt64;
  state @1 :Text;              # "serving", "placing", "below capacity", "waiting for nodes"
  modelId @2 :UInt64;
  requestsActive @3 :UInt32;
  requestsQueued @4 :UInt32;
  nodes @5 :List(NodeStatus);
  message @6 :Text;            # why below capacity, etc.
  staleDropped @7 :UInt64;     # frames from an older epoch dropped by the head
  replays @8 :UInt64;          # sequences replayed after losses
  chatMode @9 :Text;           # how the head renders conversations: a template family name, or "plain"
  nCtx @10 :Int32;             # context per sequence
}

struct Frame {
  version @0 :UInt16;
  epoch @1 :UInt64;            # placement epoch the sender acts under
  body :union {
    hello @2 :Hello;
    auth @3 :Auth;
    heartbeat @4 :Heartbeat;
    microBatch @5 :MicroBatch;
    sampledTokens @6 :SampledTokens;
    prefetchRequest @7 :PrefetchRequest;
    prefetchReady @8 :PrefetchReady;
    memoryPressure @9 :MemoryPressure;
    assignment @10 :Assignment;
    profile @11 :NodeProfile;
    generationRequest @12 :GenerationRequest;
    tokenStream @13 :TokenStream;
    generationDone @14 :GenerationDone;
    cancel @15 :CancelRequest;
    error @16 :ErrorReport;
    seqFree @17 :List(Int32);  # sequences whose KV every node frees
    assignmentAck @18 :AssignmentAck;
    statusRequest @19 :Void;   # a client asks the head for a ClusterStatus
    clusterStatus @20 :ClusterStatus;
  }
}
