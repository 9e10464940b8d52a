#include "app/debug_rollout.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <set>

#include "core/error.h"
#include "core/io.h"

namespace slime::app {
namespace {

constexpr char kMagic[8] = {'S', 'L', 'I', 'M', 'E', 'D', 'R', 'D'};
constexpr uint32_t kVersion = 1;

template <class T>
void put(std::string& out, T value) {
  out.append(reinterpret_cast<const char*>(&value), sizeof value);
}

// Sequential reads with bounds checks; errors name the file and what was being read.
class Reader {
 public:
  Reader(const std::string& bytes, const std::string& path) : bytes_(bytes), path_(path) {}
  template <class T>
  T get(const char* what) {
    T value;
    need(sizeof value, what);
    std::memcpy(&value, bytes_.data() + at_, sizeof value);
    at_ += sizeof value;
    return value;
  }
  std::string take(uint64_t n, const char* what) {
    need(n, what);
    std::string out = bytes_.substr(at_, n);
    at_ += n;
    return out;
  }
  bool at_end() const { return at_ == bytes_.size(); }

 private:
  void need(uint64_t n, const char* what) const {
    SLIME_CHECK(n <= bytes_.size() - at_, path_, ": truncated debug rollout file (", what, " needs ", n,
                " bytes at offset ", at_, ", the file has ", bytes_.size(), ")");
  }
  const std::string& bytes_;
  const std::string& path_;
  size_t at_ = 0;
};

}  // namespace

std::string debug_rollout_path(const std::string& path_template, int64_t rollout_id) {
  static const std::string key = "{rollout_id}";
  std::string out = path_template;
  for (size_t at = out.find(key); at != std::string::npos; at = out.find(key, at))
    out.replace(at, key.size(), std::to_string(rollout_id));
  return out;
}

void save_debug_rollout(const std::string& path, int64_t rollout_id, const DebugRollout& rollout) {
  std::string out(kMagic, sizeof kMagic);
  put<uint32_t>(out, kVersion);
  put<int64_t>(out, rollout_id);
  const std::string metrics = json(rollout.metrics).dump();
  put<uint64_t>(out, metrics.size());
  out += metrics;
  put<uint64_t>(out, rollout.samples.size());
  for (const buffer::BufferedSample& s : rollout.samples) {
    const std::vector<char> bytes = buffer::encode_sample(s);
    put<uint64_t>(out, bytes.size());
    out.append(bytes.data(), bytes.size());
  }
  const std::string dir = std::filesystem::path(path).parent_path().string();
  if (!dir.empty()) make_directories(dir);
  write_file_atomic(path, out);
}

DebugRollout load_debug_rollout(const std::string& path, int64_t rollout_id, std::optional<double> subsample) {
  SLIME_CHECK(path_exists(path), path, ": no such debug rollout file (--load-debug-rollout-data, rollout ",
              rollout_id, ")");
  const std::string bytes = read_text_file(path);
  Reader in(bytes, path);
  const std::string magic = in.take(sizeof kMagic, "the magic");
  SLIME_CHECK(magic == std::string(kMagic, sizeof kMagic), path, ": not a slime-hpc debug rollout file");
  const uint32_t version = in.get<uint32_t>("the version");
  SLIME_CHECK(version == kVersion, path, ": debug rollout file version ", version, ", this build reads ", kVersion);
  const int64_t stored_id = in.get<int64_t>("the rollout id");
  SLIME_CHECK(stored_id == rollout_id, path, ": holds rollout ", stored_id, ", expected rollout ", rollout_id);
  DebugRollout out;
  const std::string metrics_text = in.take(in.get<uint64_t>("the metrics length"), "the metrics");
  json metrics;
  try {
    metrics = json::parse(metrics_text);
  } catch (const std::exception& e) {
    throw Error(cat(path, ": malformed metrics in debug rollout file: ", e.what()));
  }
  for (auto it = metrics.begin(); it != metrics.end(); ++it) out.metrics[it.key()] = it.value().get<double>();
  const uint64_t count = in.get<uint64_t>("the sample count");
  for (uint64_t i = 0; i < count; ++i) {
    const std::string sample = in.take(in.get<uint64_t>("a sample length"), "a sample");
    out.samples.push_back(buffer::decode_sample(sample.data(), sample.size(), cat(path, ": sample ", i)));
  }
  SLIME_CHECK(in.at_end(), path, ": trailing bytes after ", count, " samples");

  if (subsample) {
    SLIME_CHECK(*subsample > 0 && *subsample <= 1, "--load-debug-rollout-data-subsample must be in (0, 1], got ",
                *subsample);
    std::set<int64_t> groups;
    for (const auto& s : out.samples) groups.insert(s.group_index);
    const auto keep_count = static_cast<size_t>(std::ceil(*subsample * static_cast<double>(groups.size())));
    std::set<int64_t> keep(groups.begin(), std::next(groups.begin(), static_cast<std::ptrdiff_t>(keep_count)));
    out.samples.erase(std::remove_if(out.samples.begin(), out.samples.end(),
                                     [&](const buffer::BufferedSample& s) { return !keep.count(s.group_index); }),
                      out.samples.end());
  }
  return out;
}

}  // namespace slime::app
