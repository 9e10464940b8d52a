// Wire format of the messages in the RMA data buffer: one training sample per message, or a small control message
// ("end of rollout r: you got `count` samples; metrics json"). Both start with a 4-byte magic that tells them apart
// and a version, carry explicit sizes, and end with a 64-bit FNV-1a checksum of everything before it, verified on
// decode. Little-endian host layout (the buffer never leaves one job). Layout in docs/buffer.md.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "train/trainer.h"

namespace slime::buffer {

struct BufferedSample {
  train::TrainSample sample;
  int64_t index = -1;           // the sample's index in the rollout (slime's Sample.index)
  int64_t group_index = -1;     // its prompt group
  int64_t weight_version = 0;   // the policy version that generated it (staleness)
  int32_t status = 0;           // slime's Sample.Status
};

struct BufferControl {
  int32_t kind = 0;
  int64_t rollout_id = -1;
  int64_t count = 0;
  std::string json;
};

// Control kinds used by the rollout -> trainer protocol.
enum ControlKind : int32_t {
  kControlEndOfRollout = 1,  // count = samples this consumer got for rollout_id; json = rollout metrics
};

constexpr uint32_t kSampleMagic = 0x534c4253;   // "SBLS" in memory order: slime buffer sample
constexpr uint32_t kControlMagic = 0x434c4253;  // "SBLC": slime buffer control
constexpr uint32_t kCodecVersion = 1;

// 64-bit FNV-1a over `bytes` bytes, continuing from `hash`.
uint64_t fnv1a64(const void* data, size_t bytes, uint64_t hash = 0xcbf29ce484222325ull);

// Tokens go on the wire as int32 when every one fits, as int64 otherwise (a width field says which).
std::vector<char> encode_sample(const BufferedSample& sample);
// `where` names the message in errors (e.g. "ring of rank 2, message 17"): truncated data, a bad magic, version,
// size or checksum is an error saying which.
BufferedSample decode_sample(const char* data, size_t bytes, const std::string& where);

std::vector<char> encode_control(const BufferControl& control);
BufferControl decode_control(const char* data, size_t bytes, const std::string& where);

// True when the message starts with the control magic (false for samples and for anything shorter than 4 bytes).
bool is_control_message(const char* data, size_t bytes);

}  // namespace slime::buffer
