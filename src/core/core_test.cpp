#include <catch2/catch.hpp>
#include <cmath>
#include <cstdio>
#include <set>

#include "core/dtype.h"
#include "core/io.h"
#include "core/progress.h"
#include "core/rng.h"
#include "core/tensor.h"

using namespace slime;

TEST_CASE("philox matches the Random123 known-answer vectors") {
  // Random123 kat_vectors: philox4x32 10 rounds, counter = 0, key = 0.
  auto zero = philox4x32({0, 0, 0, 0}, 0);
  CHECK(zero[0] == 0x6627e8d5u);
  CHECK(zero[1] == 0xe169c58du);
  CHECK(zero[2] == 0xbc57ac4cu);
  CHECK(zero[3] == 0x9b00dbd8u);
  // counter = all ones, key = all ones.
  auto ones = philox4x32({0xffffffffu, 0xffffffffu, 0xffffffffu, 0xffffffffu}, 0xffffffffffffffffull);
  CHECK(ones[0] == 0x408f276du);
  CHECK(ones[1] == 0x41c83b0eu);
  CHECK(ones[2] == 0xa20bc7c6u);
  CHECK(ones[3] == 0x6d5451fdu);
  // counter = pi digits, key = more pi digits.
  auto pi = philox4x32({0x243f6a88u, 0x85a308d3u, 0x13198a2eu, 0x03707344u}, 0x299f31d0a4093822ull);
  CHECK(pi[0] == 0xd16cfe09u);
  CHECK(pi[1] == 0x94fdccebu);
  CHECK(pi[2] == 0x5001e420u);
  CHECK(pi[3] == 0x24126ea1u);
}

TEST_CASE("rng streams are reproducible and distinct") {
  Rng a(42, 0), b(42, 0), c(42, 1);
  std::set<uint32_t> seen;
  for (int i = 0; i < 1000; ++i) {
    uint32_t x = a.next_u32();
    CHECK(x == b.next_u32());
    seen.insert(x);
    CHECK(x != c.next_u32());
  }
  CHECK(seen.size() > 990);
  double mean = 0, var = 0;
  Rng n(7);
  const int count = 20000;
  for (int i = 0; i < count; ++i) {
    double x = n.normal();
    mean += x;
    var += x * x;
  }
  mean /= count;
  var = var / count - mean * mean;
  CHECK(std::abs(mean) < 0.03);
  CHECK(std::abs(var - 1.0) < 0.05);
  for (int i = 0; i < 100; ++i) CHECK(n.below(7) < 7u);
}

TEST_CASE("bf16 and fp16 conversions round to nearest even") {
  CHECK(bf16_to_f32(f32_to_bf16(1.0f)) == 1.0f);
  CHECK(bf16_to_f32(f32_to_bf16(-2.5f)) == -2.5f);
  // 1 + 2^-8 is exactly half way between two bf16 values: ties go to the even one (1.0).
  CHECK(bf16_to_f32(f32_to_bf16(1.0f + std::ldexp(1.0f, -8))) == 1.0f);
  CHECK(std::isnan(bf16_to_f32(f32_to_bf16(NAN))));
  for (float v : {0.0f, 1.0f, -3.140625f, 65504.0f, 6.1035156e-05f, 5.9604645e-08f}) {
    CHECK(f16_to_f32(f32_to_f16(v)) == v);
  }
  CHECK(std::isinf(f16_to_f32(f32_to_f16(1e6f))));
}

TEST_CASE("tensor views share storage") {
  Tensor t = Tensor::from_vector(std::vector<float>{0, 1, 2, 3, 4, 5}, {3, 2});
  Tensor rows = t.slice_rows(1, 3);
  CHECK(rows.shape() == Shape{2, 2});
  CHECK(rows.data<float>()[0] == 2.0f);
  rows.data<float>()[0] = 7;
  CHECK(t.data<float>()[2] == 7.0f);
  Tensor flat = t.reshape({-1});
  CHECK(flat.shape() == Shape{6});
  CHECK_THROWS_AS(t.reshape({4, 2}), Error);
  Tensor c = t.clone();
  c.data<float>()[0] = 99;
  CHECK(t.data<float>()[0] == 0.0f);
  CHECK(t.describe() == "F32[3, 2] cpu");
}

TEST_CASE("json helpers name the file and the field") {
  std::string path = "/tmp/slime_core_test.json";
  write_file_atomic(path, R"({"a": 3, "b": "x", "c": 2.5, "d": true})");
  json j = read_json_file(path);
  CHECK(json_int(j, "a", path) == 3);
  CHECK(json_string(j, "b", path) == "x");
  CHECK(json_number_or(j, "missing", 1.5, path) == 1.5);
  try {
    json_int(j, "b", path);
    FAIL("expected an error");
  } catch (const Error& e) {
    CHECK(std::string(e.what()) == path + ": field 'b': expected integer, got string");
  }
  CHECK_THROWS_WITH(json_int(j, "zz", path), Catch::Contains("missing field 'zz'"));
  write_file_atomic(path, "{\"a\": ");
  CHECK_THROWS_WITH(read_json_file(path), Catch::Contains("malformed JSON"));
  CHECK_THROWS_WITH(read_json_file("/nonexistent/x.json"), Catch::Contains("/nonexistent/x.json: cannot open"));
  std::remove(path.c_str());
}

TEST_CASE("make_directories creates parents and reports failures") {
  std::system("rm -rf /tmp/slime_core_dirs");
  make_directories("/tmp/slime_core_dirs/a/b/c/");
  CHECK(is_directory("/tmp/slime_core_dirs/a/b/c"));
  make_directories("/tmp/slime_core_dirs/a/b/c");  // exists: fine
  write_file_atomic("/tmp/slime_core_dirs/file", "x");
  CHECK_THROWS_WITH(make_directories("/tmp/slime_core_dirs/file/sub"), Catch::Contains("/tmp/slime_core_dirs/file"));
  std::system("rm -rf /tmp/slime_core_dirs");
}

TEST_CASE("Progress renders a bar of done / total and is silent when off") {
  slime::Progress p("rollout 3", 32, "groups", /*enabled=*/false);
  CHECK(p.render(0, 0.0, "") == "rollout 3 [....................] 0/32 groups  0.0 s");
  CHECK(p.render(16, 2.14, "dropped 1") == "rollout 3 [##########..........] 16/32 groups  2.1 s  dropped 1");
  CHECK(p.render(40, 5.0, "") == "rollout 3 [####################] 40/32 groups  5.0 s");  // over-sampling: clamped bar
  p.update(5);  // off: draws nothing, no error
  p.finish();
  p.finish();
}
