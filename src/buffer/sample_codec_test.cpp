// Sample and control codec: round trips (int32 and int64 token widths, empty arrays), every single corrupted byte
// and every truncation detected with an error naming the message, sample vs control distinguished.
#include <catch2/catch.hpp>
#include <limits>

#include "buffer/sample_codec.h"
#include "core/error.h"

using namespace slime::buffer;
using Catch::Matchers::Contains;

namespace {

BufferedSample make_sample(bool wide_tokens) {
  BufferedSample s;
  s.index = 42;
  s.group_index = 7;
  s.weight_version = 3;
  s.status = 2;
  s.sample.tokens = {1, 2, 151643, 5, 6, 7};
  if (wide_tokens) s.sample.tokens[1] = int64_t{1} << 40;
  s.sample.response_length = 3;
  s.sample.loss_mask = {1.0f, 0.0f, 1.0f};
  s.sample.reward = -0.25f;
  s.sample.rollout_logprobs = {-0.5f, -1.5f, -0.125f};
  s.sample.rollout_id = 11;
  return s;
}

void require_equal(const BufferedSample& a, const BufferedSample& b) {
  REQUIRE(a.index == b.index);
  REQUIRE(a.group_index == b.group_index);
  REQUIRE(a.weight_version == b.weight_version);
  REQUIRE(a.status == b.status);
  REQUIRE(a.sample.tokens == b.sample.tokens);
  REQUIRE(a.sample.response_length == b.sample.response_length);
  REQUIRE(a.sample.loss_mask == b.sample.loss_mask);
  REQUIRE(a.sample.reward == b.sample.reward);
  REQUIRE(a.sample.rollout_logprobs == b.sample.rollout_logprobs);
  REQUIRE(a.sample.rollout_id == b.sample.rollout_id);
}

}  // namespace

TEST_CASE("sample codec round trip", "[buffer]") {
  for (bool wide : {false, true}) {
    const BufferedSample s = make_sample(wide);
    const std::vector<char> bytes = encode_sample(s);
    REQUIRE_FALSE(is_control_message(bytes.data(), bytes.size()));
    require_equal(decode_sample(bytes.data(), bytes.size(), "test"), s);
  }
  // int32 tokens on the wire when they fit: 4 bytes less per token than the wide form.
  REQUIRE(encode_sample(make_sample(true)).size() - encode_sample(make_sample(false)).size() == 6 * 4);
  BufferedSample empty;
  const std::vector<char> bytes = encode_sample(empty);
  require_equal(decode_sample(bytes.data(), bytes.size(), "test"), empty);
  BufferedSample negative = make_sample(false);
  negative.sample.tokens[0] = std::numeric_limits<int32_t>::min();
  const std::vector<char> negative_bytes = encode_sample(negative);
  require_equal(decode_sample(negative_bytes.data(), negative_bytes.size(), "test"), negative);
}

TEST_CASE("sample codec detects every corrupt byte and every truncation", "[buffer]") {
  const std::vector<char> bytes = encode_sample(make_sample(false));
  for (size_t i = 0; i < bytes.size(); ++i) {
    std::vector<char> corrupt = bytes;
    corrupt[i] ^= 0x10;
    INFO("byte " << i);
    REQUIRE_THROWS_WITH(decode_sample(corrupt.data(), corrupt.size(), "ring of rank 2, message 17"),
                        Contains("ring of rank 2, message 17"));
  }
  for (size_t n = 0; n < bytes.size(); ++n) {
    INFO("truncated to " << n);
    REQUIRE_THROWS_WITH(decode_sample(bytes.data(), n, "msg"), Contains("msg") && Contains("truncated"));
  }
  std::vector<char> flipped = bytes;
  flipped[40] ^= 1;
  REQUIRE_THROWS_WITH(decode_sample(flipped.data(), flipped.size(), "m"), Contains("checksum"));
  std::vector<char> longer = bytes;
  longer.push_back(0);
  REQUIRE_THROWS_AS(decode_sample(longer.data(), longer.size(), "m"), slime::Error);
}

TEST_CASE("control codec round trip and message kinds", "[buffer]") {
  const BufferControl c{kControlEndOfRollout, 5, 128, "{\"rollout/reward\": 0.5}"};
  const std::vector<char> bytes = encode_control(c);
  REQUIRE(is_control_message(bytes.data(), bytes.size()));
  REQUIRE_FALSE(is_control_message(bytes.data(), 3));
  const BufferControl d = decode_control(bytes.data(), bytes.size(), "test");
  REQUIRE(d.kind == c.kind);
  REQUIRE(d.rollout_id == c.rollout_id);
  REQUIRE(d.count == c.count);
  REQUIRE(d.json == c.json);
  REQUIRE_THROWS_WITH(decode_sample(bytes.data(), bytes.size(), "x"), Contains("not a sample message"));
  const std::vector<char> sample = encode_sample(make_sample(false));
  REQUIRE_THROWS_WITH(decode_control(sample.data(), sample.size(), "x"), Contains("not a control message"));
  std::vector<char> corrupt = bytes;
  corrupt[bytes.size() / 2] ^= 0x01;
  REQUIRE_THROWS_WITH(decode_control(corrupt.data(), corrupt.size(), "y"), Contains("checksum"));
}
