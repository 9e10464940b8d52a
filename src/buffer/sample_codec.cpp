// Sample and control message codec: a Writer appends fixed-width fields, a Reader consumes them with bounds
// checks that name the message and the field; the checksum is verified before any field is trusted.
#include "buffer/sample_codec.h"

#include <cstring>
#include <limits>

#include "core/error.h"

namespace slime::buffer {

namespace {

static_assert(sizeof(float) == 4, "the codec stores IEEE float32");

class Writer {
 public:
  template <class T>
  void put(const T& value) {
    const size_t at = out_.size();
    out_.resize(at + sizeof(T));
    std::memcpy(out_.data() + at, &value, sizeof(T));
  }
  void put_bytes(const void* data, size_t bytes) {
    const size_t at = out_.size();
    out_.resize(at + bytes);
    if (bytes) std::memcpy(out_.data() + at, data, bytes);
  }
  std::vector<char> finish() {
    const uint64_t checksum = fnv1a64(out_.data(), out_.size());
    put(checksum);
    return std::move(out_);
  }

 private:
  std::vector<char> out_;
};

class Reader {
 public:
  Reader(const char* data, size_t bytes, const std::string& where, const char* what)
      : data_(data), end_(bytes), where_(where), what_(what) {}

  template <class T>
  T get(const char* field) {
    T value;
    need(sizeof(T), field);
    std::memcpy(&value, data_ + at_, sizeof(T));
    at_ += sizeof(T);
    return value;
  }
  // Reads `count` elements of `width` bytes; checks the size against the remaining bytes before allocating.
  const char* take(int64_t count, size_t width, const char* field) {
    SLIME_CHECK(count >= 0 && static_cast<uint64_t>(count) <= (end_ - at_) / width, where_, ": ", what_,
                " message: field ", field, " claims ", count, " elements of ", width, " bytes but only ",
                end_ - at_, " bytes remain of ", end_ + 8);
    const char* p = data_ + at_;
    at_ += count * width;
    return p;
  }
  void finish() {
    SLIME_CHECK(at_ == end_, where_, ": ", what_, " message has ", end_ - at_,
                " unexpected bytes before its checksum (", end_ + 8, " bytes in all)");
  }

 private:
  void need(size_t bytes, const char* field) {
    SLIME_CHECK(end_ - at_ >= bytes, where_, ": ", what_, " message truncated reading ", field, " (", end_ + 8,
                " bytes)");
  }
  const char* data_;
  size_t end_;  // payload end: the checksum is excluded
  size_t at_ = 0;
  const std::string& where_;
  const char* what_;
};

// Checks magic, length and checksum; returns the number of bytes before the checksum.
size_t verify_frame(const char* data, size_t bytes, uint32_t magic, const std::string& where, const char* what) {
  constexpr size_t kMinimum = 4 + 4 + 8;  // magic, version, checksum
  SLIME_CHECK(data != nullptr || bytes == 0, where, ": null ", what, " message");
  SLIME_CHECK(bytes >= kMinimum, where, ": ", what, " message truncated: ", bytes, " bytes, fewer than the ",
              kMinimum, " of magic, version and checksum");
  uint32_t found_magic = 0, version = 0;
  std::memcpy(&found_magic, data, 4);
  std::memcpy(&version, data + 4, 4);
  SLIME_CHECK(found_magic == magic, where, ": not a ", what, " message: magic 0x", std::hex, found_magic,
              ", expected 0x", magic);
  SLIME_CHECK(version == kCodecVersion, where, ": ", what, " message version ", version, ", this build reads ",
              kCodecVersion);
  uint64_t stored = 0;
  std::memcpy(&stored, data + bytes - 8, 8);
  const uint64_t computed = fnv1a64(data, bytes - 8);
  SLIME_CHECK(stored == computed, where, ": ", what, " message of ", bytes,
              " bytes is corrupt or truncated: checksum 0x", std::hex, stored, " stored, 0x", computed, " computed");
  return bytes - 8;
}

template <class T>
void put_array(Writer& w, const std::vector<T>& values) {
  w.put<int64_t>(static_cast<int64_t>(values.size()));
  w.put_bytes(values.data(), values.size() * sizeof(T));
}

}  // namespace

uint64_t fnv1a64(const void* data, size_t bytes, uint64_t hash) {
  const auto* p = static_cast<const unsigned char*>(data);
  for (size_t i = 0; i < bytes; ++i) {
    hash ^= p[i];
    hash *= 0x100000001b3ull;
  }
  return hash;
}

// Sample layout: magic u32, version u32, index i64, group_index i64, weight_version i64, status i32, token_width
// i32 (4 or 8), rollout_id i64, response_length i64, reward f32, pad u32, n_tokens i64, tokens, n_loss_mask i64,
// loss_mask f32[], n_rollout_logprobs i64, rollout_logprobs f32[], checksum u64.
std::vector<char> encode_sample(const BufferedSample& s) {
  const train::TrainSample& t = s.sample;
  int32_t token_width = 4;
  for (int64_t token : t.tokens) {
    if (token < std::numeric_limits<int32_t>::min() || token > std::numeric_limits<int32_t>::max()) {
      token_width = 8;
      break;
    }
  }
  Writer w;
  w.put(kSampleMagic);
  w.put(kCodecVersion);
  w.put(s.index);
  w.put(s.group_index);
  w.put(s.weight_version);
  w.put(s.status);
  w.put(token_width);
  w.put(t.rollout_id);
  w.put(t.response_length);
  w.put(t.reward);
  w.put<uint32_t>(0);
  w.put<int64_t>(static_cast<int64_t>(t.tokens.size()));
  if (token_width == 8) {
    w.put_bytes(t.tokens.data(), t.tokens.size() * 8);
  } else {
    std::vector<int32_t> narrow(t.tokens.begin(), t.tokens.end());
    w.put_bytes(narrow.data(), narrow.size() * 4);
  }
  put_array(w, t.loss_mask);
  put_array(w, t.rollout_logprobs);
  return w.finish();
}

BufferedSample decode_sample(const char* data, size_t bytes, const std::string& where) {
  const size_t body = verify_frame(data, bytes, kSampleMagic, where, "sample");
  Reader r(data, body, where, "sample");
  r.get<uint32_t>("magic");
  r.get<uint32_t>("version");
  BufferedSample s;
  train::TrainSample& t = s.sample;
  s.index = r.get<int64_t>("index");
  s.group_index = r.get<int64_t>("group_index");
  s.weight_version = r.get<int64_t>("weight_version");
  s.status = r.get<int32_t>("status");
  const int32_t token_width = r.get<int32_t>("token_width");
  SLIME_CHECK(token_width == 4 || token_width == 8, where, ": sample message has token width ", token_width,
              " (expected 4 or 8)");
  t.rollout_id = r.get<int64_t>("rollout_id");
  t.response_length = r.get<int64_t>("response_length");
  t.reward = r.get<float>("reward");
  r.get<uint32_t>("padding");
  const int64_t n_tokens = r.get<int64_t>("n_tokens");
  const char* tokens = r.take(n_tokens, token_width, "tokens");
  t.tokens.resize(n_tokens);
  if (token_width == 8) {
    if (n_tokens) std::memcpy(t.tokens.data(), tokens, n_tokens * 8);
  } else {
    for (int64_t i = 0; i < n_tokens; ++i) {
      int32_t token = 0;
      std::memcpy(&token, tokens + 4 * i, 4);
      t.tokens[i] = token;
    }
  }
  const int64_t n_mask = r.get<int64_t>("n_loss_mask");
  const char* mask = r.take(n_mask, 4, "loss_mask");
  t.loss_mask.resize(n_mask);
  if (n_mask) std::memcpy(t.loss_mask.data(), mask, n_mask * 4);
  const int64_t n_logprobs = r.get<int64_t>("n_rollout_logprobs");
  const char* logprobs = r.take(n_logprobs, 4, "rollout_logprobs");
  t.rollout_logprobs.resize(n_logprobs);
  if (n_logprobs) std::memcpy(t.rollout_logprobs.data(), logprobs, n_logprobs * 4);
  r.finish();
  SLIME_CHECK(t.response_length >= 0 && t.response_length <= n_tokens, where, ": sample has response_length ",
              t.response_length, " but ", n_tokens, " tokens");
  return s;
}

// Control layout: magic u32, version u32, kind i32, pad u32, rollout_id i64, count i64, json_bytes i64, json,
// checksum u64.
std::vector<char> encode_control(const BufferControl& c) {
  Writer w;
  w.put(kControlMagic);
  w.put(kCodecVersion);
  w.put(c.kind);
  w.put<uint32_t>(0);
  w.put(c.rollout_id);
  w.put(c.count);
  w.put<int64_t>(static_cast<int64_t>(c.json.size()));
  w.put_bytes(c.json.data(), c.json.size());
  return w.finish();
}

BufferControl decode_control(const char* data, size_t bytes, const std::string& where) {
  const size_t body = verify_frame(data, bytes, kControlMagic, where, "control");
  Reader r(data, body, where, "control");
  r.get<uint32_t>("magic");
  r.get<uint32_t>("version");
  BufferControl c;
  c.kind = r.get<int32_t>("kind");
  r.get<uint32_t>("padding");
  c.rollout_id = r.get<int64_t>("rollout_id");
  c.count = r.get<int64_t>("count");
  const int64_t json_bytes = r.get<int64_t>("json_bytes");
  const char* json = r.take(json_bytes, 1, "json");
  c.json.assign(json, json_bytes);
  r.finish();
  return c;
}

bool is_control_message(const char* data, size_t bytes) {
  if (data == nullptr || bytes < 4) return false;
  uint32_t magic = 0;
  std::memcpy(&magic, data, 4);
  return magic == kControlMagic;
}

}  // namespace slime::buffer
