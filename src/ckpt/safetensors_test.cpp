// Tests of the safetensors reader/writer: round trips (every dtype, empty and scalar tensors, metadata, sharded
// directories), a byte-exact check of the written layout against hand-written bytes, one test per kind of bad
// input (each corrupt file is built by hand in /tmp), and a 128 MiB file that must open without being read.
#include "ckpt/safetensors.h"

#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>

#include "core/io.h"
#include "core/rng.h"

using namespace slime;
using namespace slime::ckpt;
using Catch::Matchers::Contains;
namespace fs = std::filesystem;

namespace {

// A fresh directory under /tmp, removed when the test ends.
struct TempDir {
  std::string path;
  explicit TempDir(const std::string& name)
      : path(cat("/tmp/slime_safetensors_test_", ::getpid(), "/", name)) {
    fs::remove_all(path);
    fs::create_directories(path);
  }
  ~TempDir() {
    fs::remove_all(path);
    std::error_code ignored;
    fs::remove(fs::path(path).parent_path(), ignored);  // the per-process folder, once empty
  }
  std::string operator/(const std::string& file) const { return path + "/" + file; }
};

std::string read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

void write_bytes(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  REQUIRE(out.good());
}

std::string u64_le(uint64_t value) {
  std::string bytes(8, '\0');
  for (int i = 0; i < 8; ++i) bytes[i] = static_cast<char>((value >> (8 * i)) & 0xff);
  return bytes;
}

// A file as another writer would make it: length prefix, the header text as given, then `buffer_bytes` bytes.
void write_raw(const std::string& path, const std::string& header, size_t buffer_bytes) {
  std::string buffer(buffer_bytes, '\0');
  for (size_t i = 0; i < buffer_bytes; ++i) buffer[i] = static_cast<char>(i * 7 + 1);
  write_bytes(path, u64_le(header.size()) + header + buffer);
}

Tensor random_tensor(const Shape& shape, DType dtype, uint64_t seed) {
  Tensor t = Tensor::empty(shape, dtype);
  Rng rng(seed);
  auto* bytes = static_cast<unsigned char*>(t.raw());
  for (size_t i = 0; i < t.nbytes(); ++i) bytes[i] = static_cast<unsigned char>(rng.next_u32());
  if (dtype == DType::Bool) {
    for (size_t i = 0; i < t.nbytes(); ++i) bytes[i] &= 1;
  }
  return t;
}

bool same_bytes(const Tensor& a, const Tensor& b) {
  return a.dtype() == b.dtype() && a.shape() == b.shape() && std::memcmp(a.raw(), b.raw(), a.nbytes()) == 0;
}

std::string error_of(const std::function<void()>& action) {
  try {
    action();
  } catch (const slime::Error& e) {
    return e.what();
  }
  FAIL("expected a slime::Error");
  return "";
}

std::string open_error(const std::string& path) {
  return error_of([&] { SafetensorsFile::open(path); });
}

std::vector<std::string> temp_files_in(const std::string& dir) {
  std::vector<std::string> found;
  for (const auto& entry : fs::directory_iterator(dir)) {
    std::string name = entry.path().filename().string();
    if (name.find(".tmp.") != std::string::npos) found.push_back(name);
  }
  return found;
}

size_t resident_bytes() {
  std::ifstream statm("/proc/self/statm");
  size_t total_pages = 0, resident_pages = 0;
  statm >> total_pages >> resident_pages;
  return resident_pages * static_cast<size_t>(::sysconf(_SC_PAGESIZE));
}

}  // namespace

// ---------------------------------------------------------------------------------------------------------
// Round trips

TEST_CASE("safetensors: every dtype round-trips, header keeps the given order, data is aligned") {
  TempDir dir("every_dtype");
  const std::string path = dir / "all.safetensors";
  // Mixed element sizes in an order that would misalign a naive layout.
  std::vector<std::pair<std::string, Tensor>> tensors = {
      {"bool", random_tensor({3}, DType::Bool, 1)},      {"f64", random_tensor({2, 3}, DType::F64, 2)},
      {"u8", random_tensor({5}, DType::U8, 3)},          {"bf16", random_tensor({3, 3}, DType::BF16, 4)},
      {"i32", random_tensor({7}, DType::I32, 5)},        {"i8", random_tensor({1, 1, 3}, DType::I8, 6)},
      {"f16", random_tensor({5}, DType::F16, 7)},        {"i64", random_tensor({3}, DType::I64, 8)},
      {"i16", random_tensor({1}, DType::I16, 9)},        {"f32", random_tensor({4, 2}, DType::F32, 10)},
  };
  write_safetensors(path, tensors, {{"format", "pt"}, {"step", "7"}});

  SafetensorsFile file = SafetensorsFile::open(path);
  REQUIRE(file.tensors().size() == tensors.size());
  CHECK(file.data_offset() % 8 == 0);
  uint64_t total = 0;
  for (size_t i = 0; i < tensors.size(); ++i) {
    const TensorInfo& info = file.tensors()[i];
    CHECK(info.name == tensors[i].first);
    CHECK(info.dtype == tensors[i].second.dtype());
    CHECK(info.shape == tensors[i].second.shape());
    CHECK(info.begin % dtype_size(info.dtype) == 0);
    CHECK(reinterpret_cast<uintptr_t>(file.data(info)) % dtype_size(info.dtype) == 0);
    CHECK(same_bytes(file.read(info.name), tensors[i].second));
    total += info.nbytes();
  }
  CHECK(file.file_bytes() == file.data_offset() + total);
  CHECK(file.metadata() == std::map<std::string, std::string>{{"format", "pt"}, {"step", "7"}});
  CHECK(file.find("missing") == nullptr);
  CHECK(temp_files_in(dir.path).empty());
}

TEST_CASE("safetensors: empty tensors, scalars, no metadata, UTF-8 names") {
  TempDir dir("edge_shapes");
  const std::string path = dir / "edge.safetensors";
  Tensor scalar = Tensor::empty({}, DType::F64);
  *scalar.data<double>() = 3.25;
  Tensor empty = Tensor::empty({0, 4}, DType::F32);
  Tensor also_empty = Tensor::empty({2, 0}, DType::BF16);
  Tensor utf8 = Tensor::from_vector(std::vector<float>{1.5f, -2.0f}, {2});
  write_safetensors(path, {{"empty", empty}, {"scalar", scalar}, {"also_empty", also_empty},
                           {"层.weight", utf8}});

  CHECK(read_bytes(path).find("__metadata__") == std::string::npos);
  SafetensorsFile file = SafetensorsFile::open(path);
  CHECK(file.metadata().empty());
  Tensor scalar_back = file.read("scalar");
  CHECK(scalar_back.shape().empty());
  CHECK(*scalar_back.data<double>() == 3.25);
  CHECK(file.read("empty").shape() == Shape{0, 4});
  CHECK(file.find("empty")->nbytes() == 0);
  CHECK(file.read("also_empty").shape() == Shape{2, 0});
  Tensor utf8_back = file.read("层.weight");
  CHECK(utf8_back.data<float>()[0] == 1.5f);
  CHECK(utf8_back.data<float>()[1] == -2.0f);
}

TEST_CASE("safetensors: writer output is byte-exact") {
  TempDir dir("byte_exact");
  const std::string path = dir / "exact.safetensors";
  Tensor b = Tensor::empty({3}, DType::BF16);
  uint16_t* b_bits = static_cast<uint16_t*>(b.raw());
  b_bits[0] = f32_to_bf16(1.0f);   // 0x3f80
  b_bits[1] = f32_to_bf16(-2.0f);  // 0xc000
  b_bits[2] = f32_to_bf16(0.5f);   // 0x3f00
  Tensor a = Tensor::from_vector(std::vector<float>{1.0f, 2.0f}, {2});
  write_safetensors(path, {{"b", b}, {"a", a}}, {{"format", "pt"}});

  // Header: given order (b, a); 140 bytes of JSON + 4 spaces so the buffer starts at 8 + 144 = 152 = 19 * 8.
  // Buffer: the F32 tensor first (4-byte elements before 2-byte ones), then the BF16 one, no gaps.
  const std::string header =
      R"({"__metadata__":{"format":"pt"},"b":{"dtype":"BF16","shape":[3],"data_offsets":[8,14]},)"
      R"("a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}    )";
  REQUIRE(header.size() == 144);
  const std::string length_prefix("\x90\0\0\0\0\0\0\0", 8);
  const std::string a_bytes("\x00\x00\x80\x3f\x00\x00\x00\x40", 8);
  const std::string b_bytes("\x80\x3f\x00\xc0\x00\x3f", 6);
  const std::string expected = length_prefix + header + a_bytes + b_bytes;
  CHECK(expected.size() == 166);
  CHECK(read_bytes(path) == expected);
}

TEST_CASE("safetensors: reads a file built by hand (header order differs from offsets, padded header)") {
  TempDir dir("hand_built");
  const std::string path = dir / "hand.safetensors";
  const std::string header =
      R"({"y":{"dtype":"U8","shape":[1,3],"data_offsets":[4,7]},"__metadata__":{"k":"v"},)"
      R"("x":{"dtype":"I16","shape":[2],"data_offsets":[0,4]}}      )";
  const std::string buffer("\x01\x00\xff\xff\x0a\x0b\x0c", 7);  // x = {1, -1}, y = {10, 11, 12}
  write_bytes(path, u64_le(header.size()) + header + buffer);

  SafetensorsFile file = SafetensorsFile::open(path);
  REQUIRE(file.tensors().size() == 2);
  CHECK(file.tensors()[0].name == "y");  // header order
  CHECK(file.tensors()[1].name == "x");
  CHECK(file.metadata().at("k") == "v");
  Tensor x = file.read("x");
  CHECK(x.dtype() == DType::I16);
  const int16_t* xs = static_cast<const int16_t*>(x.raw());
  CHECK(xs[0] == 1);
  CHECK(xs[1] == -1);
  Tensor y = file.read("y");
  CHECK(y.shape() == Shape{1, 3});
  CHECK(y.data<uint8_t>()[0] == 10);
  CHECK(y.data<uint8_t>()[2] == 12);
  const auto* zero_copy = static_cast<const uint8_t*>(file.data(*file.find("y")));
  CHECK(zero_copy[1] == 11);
}

TEST_CASE("safetensors: writes are atomic and failed writes leave the old file") {
  TempDir dir("atomic");
  const std::string path = dir / "w.safetensors";
  Tensor t = Tensor::from_vector(std::vector<float>{1, 2, 3}, {3});
  write_safetensors(path, {{"t", t}});
  const std::string before = read_bytes(path);

  std::string message = error_of([&] { write_safetensors(path, {{"t", t}, {"t", t}}); });
  CHECK_THAT(message, Contains(path) && Contains("tensor 't' is given twice"));
  CHECK_THAT(error_of([&] { write_safetensors(path, {{"__metadata__", t}}); }), Contains("reserved"));
  CHECK_THAT(error_of([&] { write_safetensors(path, {{"u", Tensor()}}); }),
             Contains(path) && Contains("tensor 'u' is undefined"));
  CHECK(read_bytes(path) == before);
  CHECK(temp_files_in(dir.path).empty());

  const std::string nowhere = dir / "no/such/dir/x.safetensors";
  CHECK_THAT(error_of([&] { write_safetensors(nowhere, {{"t", t}}); }),
             Contains(nowhere) && Contains("cannot create"));

  // Overwriting replaces the whole file.
  write_safetensors(path, {{"t", Tensor::from_vector(std::vector<float>{9}, {1})}});
  CHECK(SafetensorsFile::open(path).read("t").data<float>()[0] == 9.0f);
  CHECK(temp_files_in(dir.path).empty());
}

// ---------------------------------------------------------------------------------------------------------
// Checkpoint directories

TEST_CASE("safetensors: sharded checkpoint directory round trip") {
  TempDir dir("sharded");
  std::vector<std::pair<std::string, Tensor>> tensors;
  for (int i = 0; i < 3; ++i) tensors.push_back({cat("t", i), random_tensor({64}, DType::F32, 100 + i)});
  tensors.push_back({"big", random_tensor({400}, DType::BF16, 200)});  // 800 bytes: over the limit, alone
  for (int i = 3; i < 6; ++i) tensors.push_back({cat("t", i), random_tensor({64}, DType::F32, 100 + i)});
  write_safetensors_dir(dir.path, tensors, /*max_shard_bytes=*/600);

  // Greedy in the given order: [t0 t1] [t2] [big] [t3 t4] [t5].
  const json index = read_json_file(dir / kSafetensorsIndexFile);
  CHECK(index.at("metadata").at("total_size") == 6 * 256 + 800);
  const json expected_map = {{"t0", "model-00001-of-00005.safetensors"},
                             {"t1", "model-00001-of-00005.safetensors"},
                             {"t2", "model-00002-of-00005.safetensors"},
                             {"big", "model-00003-of-00005.safetensors"},
                             {"t3", "model-00004-of-00005.safetensors"},
                             {"t4", "model-00004-of-00005.safetensors"},
                             {"t5", "model-00005-of-00005.safetensors"}};
  CHECK(index.at("weight_map") == expected_map);
  CHECK_FALSE(path_exists(dir / kSafetensorsSingleFile));
  CHECK(SafetensorsFile::open(dir / "model-00001-of-00005.safetensors").metadata().at("format") == "pt");

  SafetensorsCheckpoint checkpoint = SafetensorsCheckpoint::open_dir(dir.path);
  CHECK(checkpoint.sharded());
  CHECK(checkpoint.files().size() == 5);
  CHECK(checkpoint.names() == std::vector<std::string>{"big", "t0", "t1", "t2", "t3", "t4", "t5"});
  for (const auto& [name, tensor] : tensors) {
    CHECK(checkpoint.contains(name));
    CHECK(same_bytes(checkpoint.read(name), tensor));
    CHECK(std::memcmp(checkpoint.data(name), tensor.raw(), tensor.nbytes()) == 0);
    CHECK(checkpoint.info(name).shape == tensor.shape());
    CHECK(checkpoint.file_of(name) == dir / expected_map.at(name).get<std::string>());
  }
  CHECK_FALSE(checkpoint.contains("t6"));
  CHECK_THAT(error_of([&] { checkpoint.info("t6"); }), Contains("tensor 't6'") && Contains(dir.path));
  CHECK(temp_files_in(dir.path).empty());

  // Rewriting with fewer shards, then unsharded, leaves one consistent checkpoint each time.
  write_safetensors_dir(dir.path, {tensors[0], tensors[1], tensors[2]}, 600);
  CHECK(path_exists(dir / "model-00002-of-00002.safetensors"));
  CHECK_FALSE(path_exists(dir / "model-00001-of-00005.safetensors"));
  CHECK(SafetensorsCheckpoint::open_dir(dir.path).names() == std::vector<std::string>{"t0", "t1", "t2"});
  write_safetensors_dir(dir.path, {tensors[3]}, 600);
  CHECK(path_exists(dir / kSafetensorsSingleFile));
  CHECK_FALSE(path_exists(dir / kSafetensorsIndexFile));
  CHECK_FALSE(path_exists(dir / "model-00001-of-00002.safetensors"));
  SafetensorsCheckpoint single = SafetensorsCheckpoint::open_dir(dir.path);
  CHECK_FALSE(single.sharded());
  CHECK(single.names() == std::vector<std::string>{"big"});
}

TEST_CASE("safetensors: unsharded checkpoint directory") {
  TempDir dir("unsharded");
  const std::string target = dir / "nested/model";  // created by the writer
  Tensor w = random_tensor({4, 4}, DType::BF16, 1);
  Tensor bias = random_tensor({4}, DType::F32, 2);
  write_safetensors_dir(target, {{"w", w}, {"bias", bias}});
  CHECK(path_exists(target + "/" + kSafetensorsSingleFile));
  SafetensorsCheckpoint checkpoint = SafetensorsCheckpoint::open_dir(target);
  CHECK(checkpoint.names() == std::vector<std::string>{"bias", "w"});
  CHECK(same_bytes(checkpoint.read("w"), w));
  CHECK(checkpoint.file_of("bias") == target + "/" + kSafetensorsSingleFile);
  CHECK(checkpoint.files()[0].metadata().at("format") == "pt");
}

// ---------------------------------------------------------------------------------------------------------
// Bad files: every error names the file, and the tensor where there is one.

TEST_CASE("safetensors errors: length prefix and header framing") {
  TempDir dir("bad_framing");
  const std::string path = dir / "bad.safetensors";

  write_bytes(path, "12345");
  CHECK_THAT(open_error(path), Contains(path) && Contains("5 bytes, shorter than the 8-byte"));

  write_bytes(path, u64_le(1000) + R"({"a":1})");
  CHECK_THAT(open_error(path), Contains(path) && Contains("header length 1000 runs past the end") &&
                                   Contains("7 bytes follow"));

  write_bytes(path, u64_le(200'000'000) + "{}");
  CHECK_THAT(open_error(path), Contains(path) && Contains("header length 200000000 is absurd"));

  write_bytes(path, u64_le(0));
  CHECK_THAT(open_error(path), Contains(path) && Contains("header length is 0"));

  write_raw(path, "[1, 2]", 0);
  CHECK_THAT(open_error(path), Contains(path) && Contains("JSON object starting with '{', found '['"));

  write_raw(path, R"({"a": {"dtype": )", 0);
  CHECK_THAT(open_error(path), Contains(path) && Contains("header is not valid JSON"));

  write_raw(path, "{\"\xff\": 1}", 0);  // invalid UTF-8
  CHECK_THAT(open_error(path), Contains(path) && Contains("header is not valid JSON"));

  write_raw(path, R"({"a": 5})", 0);
  CHECK_THAT(open_error(path), Contains(path) && Contains("tensor 'a': expected an object") && Contains("integer"));

  write_raw(path, R"({"a": {"dtype": "F32", "data_offsets": [0, 4]}})", 4);
  CHECK_THAT(open_error(path), Contains(path) && Contains("tensor 'a': missing field 'shape'"));

  CHECK_THAT(open_error(dir / "absent.safetensors"), Contains(dir / "absent.safetensors") && Contains("cannot open"));
  CHECK_THAT(open_error(dir.path), Contains(dir.path) && Contains("not a regular file"));
}

TEST_CASE("safetensors errors: dtype, shape and data_offsets fields") {
  TempDir dir("bad_fields");
  const std::string path = dir / "bad.safetensors";

  write_raw(path, R"({"w": {"dtype": "F9", "shape": [1], "data_offsets": [0, 4]}})", 4);
  CHECK_THAT(open_error(path), Contains(path) && Contains("tensor 'w': dtype 'F9' is not a safetensors dtype") &&
                                   Contains("supported: F32"));
  write_raw(path, R"({"w": {"dtype": "F8_E4M3", "shape": [1], "data_offsets": [0, 1]}})", 1);
  CHECK_THAT(open_error(path), Contains("tensor 'w': dtype 'F8_E4M3' is a safetensors dtype that slime-hpc "
                                        "does not support"));
  write_raw(path, R"({"w": {"dtype": 4, "shape": [1], "data_offsets": [0, 4]}})", 4);
  CHECK_THAT(open_error(path), Contains(path) && Contains("tensor 'w': field 'dtype': expected a string"));

  for (const char* bad_shape : {R"("2")", "[2, -1]", "[2.5]", "[[2]]", "null"}) {
    write_raw(path, cat(R"({"w": {"dtype": "F32", "shape": )", bad_shape, R"(, "data_offsets": [0, 8]}})"), 8);
    CHECK_THAT(open_error(path), Contains(path) &&
                                     Contains("tensor 'w': field 'shape': expected a list of non-negative integers"));
  }
  write_raw(path, R"({"w": {"dtype": "F32", "shape": [4294967296, 4294967296], "data_offsets": [0, 8]}})", 8);
  CHECK_THAT(open_error(path), Contains("tensor 'w': shape [4294967296, 4294967296] of F32 is too large"));

  for (const char* bad_offsets : {"[0]", R"([0, "8"])", "[-1, 8]", "[0, 8, 16]", "{}", "[0, 8.5]"}) {
    write_raw(path, cat(R"({"w": {"dtype": "F32", "shape": [2], "data_offsets": )", bad_offsets, "}}"), 8);
    CHECK_THAT(open_error(path), Contains(path) && Contains("tensor 'w': field 'data_offsets': expected two "
                                                            "non-negative integers [begin, end]"));
  }
  write_raw(path, R"({"w": {"dtype": "F32", "shape": [2], "data_offsets": [8, 0]}})", 8);
  CHECK_THAT(open_error(path), Contains(path) && Contains("tensor 'w': data_offsets [8, 0] has begin > end"));
}

TEST_CASE("safetensors errors: sizes, truncation, overlaps and holes") {
  TempDir dir("bad_layout");
  const std::string path = dir / "bad.safetensors";

  write_raw(path, R"({"x": {"dtype": "F32", "shape": [2, 3], "data_offsets": [0, 20]}})", 20);
  CHECK_THAT(open_error(path),
             Contains(path) && Contains("tensor 'x': shape [2, 3] of F32 needs 24 bytes, offsets give 20"));

  // A valid header whose data was cut short.
  write_raw(path, R"({"x": {"dtype": "F32", "shape": [2, 3], "data_offsets": [0, 24]}})", 20);
  CHECK_THAT(open_error(path), Contains(path) && Contains("tensor 'x' needs bytes [0, 24) of the data buffer but "
                                                          "the file holds only 20"));

  write_raw(path,
            R"({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},)"
            R"( "b": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]}})",
            12);
  CHECK_THAT(open_error(path), Contains(path) && Contains("tensors 'a' (bytes [0, 8)) and 'b' (bytes [4, 12)) "
                                                          "overlap"));

  write_raw(path,
            R"({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},)"
            R"( "b": {"dtype": "F32", "shape": [2], "data_offsets": [12, 20]}})",
            20);
  CHECK_THAT(open_error(path), Contains(path) && Contains("bytes [8, 12) of the data buffer belong to no tensor") &&
                                   Contains("before tensor 'b'"));

  write_raw(path, R"({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}})", 12);
  CHECK_THAT(open_error(path), Contains(path) && Contains("bytes [8, 12) at the end of the data buffer belong to "
                                                          "no tensor"));
}

TEST_CASE("safetensors errors: duplicate names and bad metadata") {
  TempDir dir("bad_keys");
  const std::string path = dir / "bad.safetensors";

  write_raw(path,
            R"({"a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]},)"
            R"( "a": {"dtype": "F32", "shape": [1], "data_offsets": [4, 8]}})",
            8);
  CHECK_THAT(open_error(path), Contains(path) && Contains("duplicate tensor name 'a'"));

  write_raw(path, R"({"a": {"dtype": "F32", "dtype": "I32", "shape": [1], "data_offsets": [0, 4]}})", 4);
  CHECK_THAT(open_error(path), Contains(path) && Contains("tensor 'a': duplicate field 'dtype'"));

  write_raw(path, R"({"__metadata__": {"format": "pt", "step": 3}})", 0);
  CHECK_THAT(open_error(path), Contains(path) && Contains("__metadata__ key 'step': expected a string value"));

  write_raw(path, R"({"__metadata__": ["pt"]})", 0);
  CHECK_THAT(open_error(path), Contains(path) && Contains("__metadata__ must be an object of strings"));

  write_raw(path, R"({"__metadata__": {"k": "v", "k": "w"}})", 0);
  CHECK_THAT(open_error(path), Contains(path) && Contains("__metadata__: duplicate key 'k'"));

  // Metadata alone, with no tensors and an empty buffer, is a valid file.
  write_raw(path, R"({"__metadata__": {"k": "v"}})", 0);
  CHECK(SafetensorsFile::open(path).tensors().empty());
}

TEST_CASE("safetensors errors: checkpoint directories and indexes") {
  TempDir dir("bad_dirs");
  const std::string index_path = dir / kSafetensorsIndexFile;
  const std::string shard1 = "model-00001-of-00002.safetensors", shard2 = "model-00002-of-00002.safetensors";
  Tensor t = Tensor::from_vector(std::vector<float>{1, 2}, {2});

  std::string message = error_of([&] { SafetensorsCheckpoint::open_dir(dir.path); });
  CHECK_THAT(message, Contains(dir.path) && Contains("model.safetensors") &&
                          Contains("model.safetensors.index.json") && Contains("found neither"));
  CHECK_THAT(error_of([&] { SafetensorsCheckpoint::open_dir(dir / "absent"); }),
             Contains(dir / "absent") && Contains("not a directory"));

  write_bytes(index_path, R"({"weight_map": {"a": )");
  CHECK_THAT(error_of([&] { SafetensorsCheckpoint::open_dir(dir.path); }),
             Contains(index_path) && Contains("malformed JSON"));

  write_bytes(index_path, R"({"metadata": {"total_size": 8}})");
  CHECK_THAT(error_of([&] { SafetensorsCheckpoint::open_dir(dir.path); }),
             Contains(index_path) && Contains("missing field 'weight_map'"));

  write_bytes(index_path, R"({"weight_map": ["a"]})");
  CHECK_THAT(error_of([&] { SafetensorsCheckpoint::open_dir(dir.path); }),
             Contains(index_path) && Contains("field 'weight_map': expected a non-empty object"));

  write_bytes(index_path, R"({"weight_map": {"a": "../elsewhere.safetensors"}})");
  CHECK_THAT(error_of([&] { SafetensorsCheckpoint::open_dir(dir.path); }),
             Contains(index_path) && Contains("not a file name inside the directory"));

  write_safetensors(dir / shard1, {{"a", t}});
  write_bytes(index_path, cat(R"({"weight_map": {"a": ")", shard1, R"(", "b": ")", shard2, R"("}})"));
  CHECK_THAT(error_of([&] { SafetensorsCheckpoint::open_dir(dir.path); }),
             Contains(index_path) && Contains("tensor 'b'") && Contains(dir / shard2) && Contains("does not exist"));

  write_safetensors(dir / shard2, {{"c", t}});
  write_bytes(index_path, cat(R"({"weight_map": {"a": ")", shard1, R"(", "b": ")", shard2, R"(", "c": ")", shard2,
                              R"("}})"));
  CHECK_THAT(error_of([&] { SafetensorsCheckpoint::open_dir(dir.path); }),
             Contains(index_path) && Contains("tensor 'b' in " + dir / shard2) && Contains("has no such tensor"));

  write_bytes(index_path, cat(R"({"weight_map": {"a": ")", shard1, R"("}})"));
  write_safetensors(dir / shard1, {{"a", t}, {"extra", t}});
  CHECK_THAT(error_of([&] { SafetensorsCheckpoint::open_dir(dir.path); }),
             Contains(index_path) && Contains("tensor 'extra' is in " + dir / shard1) &&
                 Contains("not listed in weight_map"));

  write_safetensors(dir / shard1, {{"a", t}});
  write_safetensors(dir / shard2, {{"a", t}});
  write_bytes(index_path, cat(R"({"weight_map": {"a": ")", shard1, R"(", "b": ")", shard2, R"("}})"));
  CHECK_THAT(error_of([&] { SafetensorsCheckpoint::open_dir(dir.path); }),
             Contains("tensor 'a' is present in two shards") && Contains(dir / shard1) && Contains(dir / shard2));

  // A corrupt shard names the shard file.
  write_bytes(dir / shard2, "junk");
  CHECK_THAT(error_of([&] { SafetensorsCheckpoint::open_dir(dir.path); }),
             Contains(dir / shard2) && Contains("shorter than the 8-byte"));

  write_safetensors(dir / kSafetensorsSingleFile, {{"a", t}});
  CHECK_THAT(error_of([&] { SafetensorsCheckpoint::open_dir(dir.path); }),
             Contains(dir.path) && Contains("holds both"));

  SafetensorsFile single = SafetensorsFile::open(dir / kSafetensorsSingleFile);
  CHECK_THAT(error_of([&] { single.read("zz"); }), Contains(dir / kSafetensorsSingleFile) && Contains("'zz'"));
}

// ---------------------------------------------------------------------------------------------------------
// Large files open without being read.

TEST_CASE("safetensors: a 128 MiB file opens without reading its data") {
  TempDir dir("large");
  const std::string path = dir / "large.safetensors";
  const int64_t big_elements = 32ll << 20;  // 128 MiB of F32
  {
    Tensor big = Tensor::empty({big_elements}, DType::F32);
    float* values = big.data<float>();
    for (int64_t i = 0; i < big_elements; ++i) values[i] = static_cast<float>(i % 1000);
    Tensor tail = Tensor::from_vector(std::vector<int64_t>{7, 8, 9}, {3});
    write_safetensors(path, {{"big", big}, {"tail", tail}});
  }
  REQUIRE(fs::file_size(path) > (128u << 20));

  const size_t resident_before = resident_bytes();
  auto start = std::chrono::steady_clock::now();
  SafetensorsFile file = SafetensorsFile::open(path);
  double open_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  const size_t resident_after = resident_bytes();
  INFO("open took " << open_seconds << " s, resident memory grew by " << (resident_after - resident_before)
                    << " bytes");
  CHECK(open_seconds < 0.25);
  CHECK(resident_after < resident_before + (8u << 20));  // a full read would add 128 MiB

  Tensor tail = file.read("tail");
  CHECK(tail.data<int64_t>()[2] == 9);
  const float* big = static_cast<const float*>(file.data(*file.find("big")));
  CHECK(big[big_elements - 1] == static_cast<float>((big_elements - 1) % 1000));
  CHECK(big[123456] == 456.0f);
}
