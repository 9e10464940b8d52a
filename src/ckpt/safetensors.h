// Safetensors files and Hugging Face checkpoint directories: a strict reader (mmap, validated at open) and an
// atomic writer.
//
// File layout (huggingface/safetensors): 8-byte little-endian u64 N, N bytes of UTF-8 JSON header
//   {"__metadata__": {str: str}, "<name>": {"dtype": "F32", "shape": [..], "data_offsets": [begin, end]}, ...}
// optionally padded with spaces, then the data buffer; offsets are relative to the buffer, tensors are
// little-endian and row-major, and the buffer is covered by the tensors exactly (no holes, no overlaps).
//
// The writer keeps the caller's tensor order in the header and pads the header so the buffer starts at a
// multiple of 8 bytes. In the buffer it places tensors by element size, largest first (the caller's order
// within one size), as the reference implementation does: every tensor then starts at a multiple of its element
// size without padding holes, which strict readers (ours, and huggingface's) reject.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "core/dtype.h"
#include "core/tensor.h"

namespace slime::ckpt {

// The largest header we accept (the reference implementation's limit).
constexpr uint64_t kMaxSafetensorsHeaderBytes = 100'000'000;

struct TensorInfo {
  std::string name;
  DType dtype = DType::F32;
  Shape shape;
  uint64_t begin = 0, end = 0;  // byte range [begin, end) in the data buffer
  uint64_t nbytes() const { return end - begin; }
};

struct FileMapping;  // the read-only mmap of one file; unmapped when the last SafetensorsFile copy goes

class SafetensorsFile {
 public:
  // Maps `path` read-only and validates the whole header against the file size; reads no tensor data.
  static SafetensorsFile open(const std::string& path);

  const std::string& path() const { return path_; }
  const std::vector<TensorInfo>& tensors() const { return tensors_; }  // in header order
  const TensorInfo* find(const std::string& name) const;               // nullptr if absent
  // Host copy in the stored dtype. Error names the file when `name` is absent.
  Tensor read(const std::string& name) const;
  // Zero-copy pointer into the mapping (valid while any copy of this object lives). It is aligned to the
  // element size when the writer aligned it (ours does); files from other writers may not be.
  const void* data(const TensorInfo& info) const;
  const std::map<std::string, std::string>& metadata() const { return metadata_; }
  uint64_t file_bytes() const;
  uint64_t data_offset() const { return data_offset_; }  // where the data buffer starts in the file

 private:
  std::string path_;
  std::shared_ptr<const FileMapping> mapping_;
  uint64_t data_offset_ = 0;  // 8 + N
  std::vector<TensorInfo> tensors_;
  std::unordered_map<std::string, size_t> index_by_name_;
  std::map<std::string, std::string> metadata_;
};

// File names of a Hugging Face checkpoint directory.
constexpr const char* kSafetensorsSingleFile = "model.safetensors";
constexpr const char* kSafetensorsIndexFile = "model.safetensors.index.json";
// "model-00002-of-00003.safetensors" for shard_index 1 of 3.
std::string safetensors_shard_name(int shard_index, int shard_count);

class SafetensorsCheckpoint {
 public:
  // `dir` holds model.safetensors or model.safetensors.index.json plus the shards it names (not both).
  // Every file is opened and validated, and the index is checked against the shards' contents.
  static SafetensorsCheckpoint open_dir(const std::string& dir);

  const std::string& dir() const { return dir_; }
  std::vector<std::string> names() const;  // sorted
  bool contains(const std::string& name) const;
  const TensorInfo& info(const std::string& name) const;  // error names the tensor and the directory
  Tensor read(const std::string& name) const;
  const void* data(const std::string& name) const;  // zero-copy, see SafetensorsFile::data
  std::string file_of(const std::string& name) const;  // full path of the file holding `name`
  const std::vector<SafetensorsFile>& files() const { return files_; }
  bool sharded() const { return sharded_; }

 private:
  struct Location {
    size_t file = 0;    // index into files_
    size_t tensor = 0;  // index into files_[file].tensors()
  };
  const Location& locate(const std::string& name) const;

  std::string dir_;
  bool sharded_ = false;
  std::vector<SafetensorsFile> files_;
  std::map<std::string, Location> locations_;
};

// Writes one file (header in the given order; 8-byte aligned buffer start; header padded with spaces).
// Host tensors of any DType. Written to `path.tmp.<pid>` and renamed, so a crash leaves no half file.
void write_safetensors(const std::string& path, const std::vector<std::pair<std::string, Tensor>>& tensors,
                       const std::map<std::string, std::string>& metadata = {});

// Writes a HF checkpoint directory (created if missing): one model.safetensors, or, when the total exceeds
// max_shard_bytes, model-0000i-of-0000n.safetensors shards (filled greedily in the given order; a tensor
// larger than the limit gets a shard of its own) plus model.safetensors.index.json, written last, with
// {"metadata": {"total_size": <sum of tensor bytes>}, "weight_map": {...}}. Files of an earlier checkpoint in
// the directory that the new one does not use (the other layout's index or single file, surplus shards) are
// removed so the directory holds one consistent checkpoint.
void write_safetensors_dir(const std::string& dir, const std::vector<std::pair<std::string, Tensor>>& tensors,
                           uint64_t max_shard_bytes = 5ull << 30,
                           const std::map<std::string, std::string>& metadata = {{"format", "pt"}});

}  // namespace slime::ckpt
