// Safetensors reader (mmap + complete header validation) and writer (streamed to a temp file, fsync, rename),
// and the Hugging Face checkpoint directory layer on top (single file or index + shards).
//
// The header is parsed with nlohmann's ordered_json so tensors keep their file order; a parser callback keeps
// one key set per open object to catch duplicate keys, which a JSON parser would otherwise silently collapse.
#include "ckpt/safetensors.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <regex>
#include <set>

#include "core/error.h"
#include "core/io.h"

static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__,
              "safetensors stores little-endian data; this reader maps it without byte swapping");

namespace slime::ckpt {

struct FileMapping {
  const char* bytes = nullptr;
  size_t size = 0;
  ~FileMapping() {
    if (bytes) ::munmap(const_cast<char*>(bytes), size);
  }
};

namespace {

using ordered_json = nlohmann::ordered_json;

// Every dtype name the safetensors format defines; the ones slime's DType lacks get a "not supported" error
// instead of "unknown".
const char* const kFormatDtypeNames[] = {"BOOL", "U8",  "I8",  "F8_E5M2", "F8_E4M3", "F8_E8M0", "F4",
                                         "F6_E2M3", "F6_E3M2", "I16", "U16", "F16", "BF16", "I32",
                                         "U32", "F32", "C64", "F64", "I64", "U64"};
std::string supported_dtype_list() {
  std::string names;
  for (DType d : all_dtypes()) names += cat(names.empty() ? "" : ", ", dtype_name(d));
  return names;
}

// A short rendering of a JSON value for error messages.
std::string json_excerpt(const ordered_json& value) {
  std::string text = value.dump(-1, ' ', false, ordered_json::error_handler_t::replace);
  return text.size() > 80 ? text.substr(0, 77) + "..." : text;
}

std::string describe_byte(char c) {
  unsigned char u = static_cast<unsigned char>(c);
  if (u >= 0x20 && u < 0x7f) return cat("'", c, "'");
  static const char hex[] = "0123456789abcdef";
  return cat("byte 0x", hex[u >> 4], hex[u & 15]);
}

std::shared_ptr<const FileMapping> map_file(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  SLIME_CHECK(fd >= 0, path, ": cannot open: ", std::strerror(errno));
  struct stat st;
  if (::fstat(fd, &st) != 0) {
    int err = errno;
    ::close(fd);
    SLIME_FAIL(path, ": cannot stat: ", std::strerror(err));
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    SLIME_FAIL(path, ": not a regular file");
  }
  auto mapping = std::make_shared<FileMapping>();
  mapping->size = static_cast<size_t>(st.st_size);
  if (mapping->size > 0) {
    void* base = ::mmap(nullptr, mapping->size, PROT_READ, MAP_PRIVATE, fd, 0);
    int err = errno;
    ::close(fd);
    SLIME_CHECK(base != MAP_FAILED, path, ": mmap of ", mapping->size, " bytes failed: ", std::strerror(err));
    mapping->bytes = static_cast<const char*>(base);
  } else {
    ::close(fd);
  }
  return mapping;
}

// Parses the header text, failing on malformed JSON and on duplicate keys at any depth.
ordered_json parse_header_json(const std::string& path, const char* text, size_t length) {
  struct OpenObject {
    std::set<std::string> keys;
  };
  std::vector<OpenObject> open_objects;
  std::string current_entry;  // the top-level key being parsed (a tensor name or __metadata__)
  std::string duplicate_message;
  auto on_event = [&](int depth, ordered_json::parse_event_t event, ordered_json& parsed) {
    using Event = ordered_json::parse_event_t;
    if (event == Event::object_start) {
      open_objects.emplace_back();
    } else if (event == Event::object_end) {
      if (!open_objects.empty()) open_objects.pop_back();
    } else if (event == Event::key && !open_objects.empty()) {
      const std::string key = parsed.get<std::string>();
      if (depth == 1) current_entry = key;
      if (!open_objects.back().keys.insert(key).second && duplicate_message.empty()) {
        if (depth == 1) {
          duplicate_message = key == "__metadata__" ? std::string("__metadata__ appears twice in the header")
                                                    : cat("duplicate tensor name '", key, "' in the header");
        } else if (current_entry == "__metadata__") {
          duplicate_message = cat("__metadata__: duplicate key '", key, "'");
        } else {
          duplicate_message = cat("tensor '", current_entry, "': duplicate field '", key, "'");
        }
      }
    }
    return true;
  };
  ordered_json header;
  try {
    header = ordered_json::parse(text, text + length, on_event);
  } catch (const ordered_json::exception& e) {
    SLIME_FAIL(path, ": header is not valid JSON: ", e.what());
  }
  SLIME_CHECK(duplicate_message.empty(), path, ": ", duplicate_message);
  SLIME_CHECK(header.is_object(), path, ": header must be a JSON object, got ", json_type_name(header));
  return header;
}

uint64_t unsigned_or_fail(const ordered_json& value, bool* ok) {
  if (!value.is_number_unsigned()) {
    *ok = false;
    return 0;
  }
  return value.get<uint64_t>();
}

TensorInfo parse_tensor_entry(const std::string& path, const std::string& name, const ordered_json& entry,
                              uint64_t buffer_bytes) {
  const std::string where = cat(path, ": tensor '", name, "'");
  SLIME_CHECK(entry.is_object(), where, ": expected an object with dtype, shape and data_offsets, got ",
              json_type_name(entry));
  for (const char* field : {"dtype", "shape", "data_offsets"}) {
    SLIME_CHECK(entry.contains(field), where, ": missing field '", field, "'");
  }
  TensorInfo info;
  info.name = name;

  const ordered_json& dtype = entry.at("dtype");
  SLIME_CHECK(dtype.is_string(), where, ": field 'dtype': expected a string, got ", json_type_name(dtype));
  const std::string dtype_text = dtype.get<std::string>();
  if (!dtype_from_name(dtype_text, &info.dtype)) {
    bool in_format = std::find(std::begin(kFormatDtypeNames), std::end(kFormatDtypeNames), dtype_text) !=
                     std::end(kFormatDtypeNames);
    SLIME_FAIL(where, ": dtype '", dtype_text, "' ",
               in_format ? "is a safetensors dtype that slime-hpc does not support"
                         : "is not a safetensors dtype",
               " (supported: ", supported_dtype_list(), ")");
  }

  const ordered_json& shape = entry.at("shape");
  bool shape_ok = shape.is_array();
  if (shape_ok) {
    for (const ordered_json& dim : shape) {
      uint64_t extent = unsigned_or_fail(dim, &shape_ok);
      if (!shape_ok || extent > static_cast<uint64_t>(INT64_MAX)) {
        shape_ok = false;
        break;
      }
      info.shape.push_back(static_cast<int64_t>(extent));
    }
  }
  SLIME_CHECK(shape_ok, where, ": field 'shape': expected a list of non-negative integers, got ",
              json_excerpt(shape));

  const ordered_json& offsets = entry.at("data_offsets");
  bool offsets_ok = offsets.is_array() && offsets.size() == 2;
  if (offsets_ok) {
    info.begin = unsigned_or_fail(offsets[0], &offsets_ok);
    info.end = unsigned_or_fail(offsets[1], &offsets_ok);
  }
  SLIME_CHECK(offsets_ok, where, ": field 'data_offsets': expected two non-negative integers [begin, end], got ",
              json_excerpt(offsets));
  SLIME_CHECK(info.begin <= info.end, where, ": data_offsets [", info.begin, ", ", info.end,
              "] has begin > end");

  uint64_t needed = dtype_size(info.dtype);
  bool overflow = false;
  for (int64_t extent : info.shape) {
    overflow = overflow || __builtin_mul_overflow(needed, static_cast<uint64_t>(extent), &needed);
  }
  SLIME_CHECK(!overflow, where, ": shape ", shape_str(info.shape), " of ", dtype_name(info.dtype),
              " is too large to address");
  SLIME_CHECK(needed == info.end - info.begin, where, ": shape ", shape_str(info.shape), " of ",
              dtype_name(info.dtype), " needs ", needed, " bytes, offsets give ", info.end - info.begin);
  SLIME_CHECK(info.end <= buffer_bytes, path, ": tensor '", name, "' needs bytes [", info.begin, ", ", info.end,
              ") of the data buffer but the file holds only ", buffer_bytes, " (truncated file?)");
  return info;
}

// The tensors must tile the data buffer exactly: no overlaps, no holes, nothing after the last one.
void check_buffer_coverage(const std::string& path, const std::vector<TensorInfo>& tensors,
                           uint64_t buffer_bytes) {
  std::vector<const TensorInfo*> by_offset;
  for (const TensorInfo& t : tensors) by_offset.push_back(&t);
  std::sort(by_offset.begin(), by_offset.end(), [](const TensorInfo* a, const TensorInfo* b) {
    return a->begin != b->begin ? a->begin < b->begin : a->end < b->end;
  });
  uint64_t covered = 0;
  const TensorInfo* previous = nullptr;
  for (const TensorInfo* t : by_offset) {
    SLIME_CHECK(t->begin >= covered, path, ": tensors '", previous->name, "' (bytes [", previous->begin, ", ",
                previous->end, ")) and '", t->name, "' (bytes [", t->begin, ", ", t->end,
                ")) overlap in the data buffer");
    SLIME_CHECK(t->begin == covered, path, ": bytes [", covered, ", ", t->begin,
                ") of the data buffer belong to no tensor (before tensor '", t->name,
                "'); safetensors forbids holes");
    covered = t->end;
    previous = t;
  }
  SLIME_CHECK(covered == buffer_bytes, path, ": bytes [", covered, ", ", buffer_bytes,
              ") at the end of the data buffer belong to no tensor; safetensors forbids trailing bytes");
}

void write_all(int fd, const void* data, size_t size, const std::string& path) {
  const char* p = static_cast<const char*>(data);
  while (size > 0) {
    ssize_t n = ::write(fd, p, std::min<size_t>(size, size_t(1) << 30));
    if (n < 0 && errno == EINTR) continue;
    SLIME_CHECK(n > 0, path, ": write failed: ", std::strerror(errno));
    p += n;
    size -= static_cast<size_t>(n);
  }
}

void make_directories(const std::string& dir) {
  if (dir.empty() || is_directory(dir)) return;
  size_t slash = dir.find_last_of('/', dir.size() > 1 ? dir.size() - 2 : 0);
  if (slash != std::string::npos && slash > 0) make_directories(dir.substr(0, slash));
  SLIME_CHECK(::mkdir(dir.c_str(), 0755) == 0 || (errno == EEXIST && is_directory(dir)), dir,
              ": cannot create directory: ", std::strerror(errno));
}

std::vector<std::string> list_directory(const std::string& dir) {
  std::vector<std::string> names;
  DIR* handle = ::opendir(dir.c_str());
  SLIME_CHECK(handle, dir, ": cannot list directory: ", std::strerror(errno));
  while (dirent* entry = ::readdir(handle)) names.emplace_back(entry->d_name);
  ::closedir(handle);
  return names;
}

void remove_if_present(const std::string& path) {
  SLIME_CHECK(::unlink(path.c_str()) == 0 || errno == ENOENT, path, ": cannot remove stale file: ",
              std::strerror(errno));
}

}  // namespace

// ---------------------------------------------------------------------------------------------------------
// SafetensorsFile

SafetensorsFile SafetensorsFile::open(const std::string& path) {
  SafetensorsFile file;
  file.path_ = path;
  file.mapping_ = map_file(path);
  const uint64_t file_bytes = file.mapping_->size;
  const char* bytes = file.mapping_->bytes;

  SLIME_CHECK(file_bytes >= 8, path, ": file is ", file_bytes,
              " bytes, shorter than the 8-byte header length that starts a safetensors file");
  uint64_t header_bytes = 0;
  std::memcpy(&header_bytes, bytes, 8);
  SLIME_CHECK(header_bytes <= kMaxSafetensorsHeaderBytes, path, ": header length ", header_bytes,
              " is absurd (limit ", kMaxSafetensorsHeaderBytes, " bytes): not a safetensors file?");
  SLIME_CHECK(header_bytes <= file_bytes - 8, path, ": header length ", header_bytes,
              " runs past the end of the file (", file_bytes - 8, " bytes follow the 8-byte length)");
  SLIME_CHECK(header_bytes > 0, path, ": header length is 0; expected a JSON object");
  SLIME_CHECK(bytes[8] == '{', path, ": header must be a JSON object starting with '{', found ",
              describe_byte(bytes[8]));
  file.data_offset_ = 8 + header_bytes;
  const uint64_t buffer_bytes = file_bytes - file.data_offset_;

  ordered_json header = parse_header_json(path, bytes + 8, header_bytes);
  for (auto it = header.begin(); it != header.end(); ++it) {
    const std::string& key = it.key();
    if (key == "__metadata__") {
      const ordered_json& metadata = it.value();
      SLIME_CHECK(metadata.is_object(), path, ": __metadata__ must be an object of strings, got ",
                  json_type_name(metadata));
      for (auto m = metadata.begin(); m != metadata.end(); ++m) {
        SLIME_CHECK(m.value().is_string(), path, ": __metadata__ key '", m.key(),
                    "': expected a string value, got ", json_type_name(m.value()), " ", json_excerpt(m.value()));
        file.metadata_[m.key()] = m.value().get<std::string>();
      }
      continue;
    }
    file.index_by_name_[key] = file.tensors_.size();
    file.tensors_.push_back(parse_tensor_entry(path, key, it.value(), buffer_bytes));
  }
  check_buffer_coverage(path, file.tensors_, buffer_bytes);
  return file;
}

const TensorInfo* SafetensorsFile::find(const std::string& name) const {
  auto it = index_by_name_.find(name);
  return it == index_by_name_.end() ? nullptr : &tensors_[it->second];
}

uint64_t SafetensorsFile::file_bytes() const { return mapping_ ? mapping_->size : 0; }

const void* SafetensorsFile::data(const TensorInfo& info) const {
  SLIME_ASSERT(mapping_ && data_offset_ + info.end <= mapping_->size, "tensor '", info.name,
               "' does not belong to ", path_);
  return mapping_->bytes + data_offset_ + info.begin;
}

Tensor SafetensorsFile::read(const std::string& name) const {
  const TensorInfo* info = find(name);
  SLIME_CHECK(info, path_, ": no tensor named '", name, "' (the file holds ", tensors_.size(), " tensors)");
  Tensor tensor = Tensor::empty(info->shape, info->dtype);
  if (info->nbytes() > 0) std::memcpy(tensor.raw(), data(*info), info->nbytes());
  return tensor;
}

// ---------------------------------------------------------------------------------------------------------
// SafetensorsCheckpoint

std::string safetensors_shard_name(int shard_index, int shard_count) {
  char name[64];
  std::snprintf(name, sizeof(name), "model-%05d-of-%05d.safetensors", shard_index + 1, shard_count);
  return name;
}

SafetensorsCheckpoint SafetensorsCheckpoint::open_dir(const std::string& dir) {
  SLIME_CHECK(is_directory(dir), dir, ": not a directory (expected a Hugging Face checkpoint directory)");
  SafetensorsCheckpoint checkpoint;
  checkpoint.dir_ = dir;
  const std::string single_path = path_join(dir, kSafetensorsSingleFile);
  const std::string index_path = path_join(dir, kSafetensorsIndexFile);
  const bool has_single = path_exists(single_path), has_index = path_exists(index_path);
  SLIME_CHECK(has_single || has_index, dir, ": no safetensors checkpoint: looked for ", kSafetensorsSingleFile,
              " and ", kSafetensorsIndexFile, ", found neither");
  SLIME_CHECK(!(has_single && has_index), dir, ": holds both ", kSafetensorsSingleFile, " and ",
              kSafetensorsIndexFile, "; it is unclear which checkpoint to load, remove one");

  if (has_single) {
    checkpoint.files_.push_back(SafetensorsFile::open(single_path));
    const auto& tensors = checkpoint.files_[0].tensors();
    for (size_t t = 0; t < tensors.size(); ++t) checkpoint.locations_[tensors[t].name] = Location{0, t};
    return checkpoint;
  }

  checkpoint.sharded_ = true;
  const json index = read_json_file(index_path);
  SLIME_CHECK(index.is_object(), index_path, ": expected a JSON object with 'weight_map', got ",
              json_type_name(index));
  SLIME_CHECK(index.contains("weight_map"), index_path, ": missing field 'weight_map'");
  const json& weight_map = index.at("weight_map");
  SLIME_CHECK(weight_map.is_object() && !weight_map.empty(), index_path,
              ": field 'weight_map': expected a non-empty object of tensor name -> shard file, got ",
              weight_map.is_object() ? "an empty object" : json_type_name(weight_map));
  if (index.contains("metadata")) {
    SLIME_CHECK(index.at("metadata").is_object(), index_path, ": field 'metadata': expected an object, got ",
                json_type_name(index.at("metadata")));
  }

  // Shard files in name order, each opened (and validated) once.
  std::map<std::string, std::string> first_tensor_of_shard;
  for (auto it = weight_map.begin(); it != weight_map.end(); ++it) {
    SLIME_CHECK(it.value().is_string(), index_path, ": weight_map['", it.key(),
                "']: expected a shard file name, got ", json_type_name(it.value()));
    const std::string shard = it.value().get<std::string>();
    SLIME_CHECK(!shard.empty() && shard[0] != '/' && shard.find("..") == std::string::npos, index_path,
                ": weight_map['", it.key(), "']: '", shard, "' is not a file name inside the directory");
    first_tensor_of_shard.emplace(shard, it.key());
  }
  std::map<std::string, size_t> file_index_of_shard;
  for (const auto& [shard, first_tensor] : first_tensor_of_shard) {
    const std::string shard_path = path_join(dir, shard);
    SLIME_CHECK(path_exists(shard_path), index_path, ": weight_map puts tensor '", first_tensor, "' in shard '",
                shard, "', but ", shard_path, " does not exist");
    file_index_of_shard[shard] = checkpoint.files_.size();
    checkpoint.files_.push_back(SafetensorsFile::open(shard_path));
  }

  for (size_t f = 0; f < checkpoint.files_.size(); ++f) {
    const auto& tensors = checkpoint.files_[f].tensors();
    for (size_t t = 0; t < tensors.size(); ++t) {
      auto [it, inserted] = checkpoint.locations_.emplace(tensors[t].name, Location{f, t});
      SLIME_CHECK(inserted, dir, ": tensor '", tensors[t].name, "' is present in two shards: ",
                  checkpoint.files_[it->second.file].path(), " and ", checkpoint.files_[f].path());
    }
  }
  for (auto it = weight_map.begin(); it != weight_map.end(); ++it) {
    const std::string shard = it.value().get<std::string>();
    const SafetensorsFile& file = checkpoint.files_[file_index_of_shard.at(shard)];
    SLIME_CHECK(file.find(it.key()), index_path, ": weight_map puts tensor '", it.key(), "' in ", file.path(),
                ", but that file has no such tensor");
  }
  for (const auto& [name, location] : checkpoint.locations_) {
    SLIME_CHECK(weight_map.contains(name), index_path, ": tensor '", name, "' is in ",
                checkpoint.files_[location.file].path(), " but not listed in weight_map");
  }
  return checkpoint;
}

std::vector<std::string> SafetensorsCheckpoint::names() const {
  std::vector<std::string> result;
  result.reserve(locations_.size());
  for (const auto& entry : locations_) result.push_back(entry.first);
  return result;
}

bool SafetensorsCheckpoint::contains(const std::string& name) const { return locations_.count(name) > 0; }

const SafetensorsCheckpoint::Location& SafetensorsCheckpoint::locate(const std::string& name) const {
  auto it = locations_.find(name);
  SLIME_CHECK(it != locations_.end(), "tensor '", name, "' is not in the checkpoint ", dir_, " (",
              locations_.size(), " tensors)");
  return it->second;
}

const TensorInfo& SafetensorsCheckpoint::info(const std::string& name) const {
  const Location& location = locate(name);
  return files_[location.file].tensors()[location.tensor];
}

Tensor SafetensorsCheckpoint::read(const std::string& name) const {
  return files_[locate(name).file].read(name);
}

const void* SafetensorsCheckpoint::data(const std::string& name) const {
  const Location& location = locate(name);
  const SafetensorsFile& file = files_[location.file];
  return file.data(file.tensors()[location.tensor]);
}

std::string SafetensorsCheckpoint::file_of(const std::string& name) const {
  return files_[locate(name).file].path();
}

// ---------------------------------------------------------------------------------------------------------
// Writers

void write_safetensors(const std::string& path, const std::vector<std::pair<std::string, Tensor>>& tensors,
                       const std::map<std::string, std::string>& metadata) {
  std::set<std::string> seen;
  for (const auto& [name, tensor] : tensors) {
    SLIME_CHECK(!name.empty(), path, ": cannot write a tensor with an empty name");
    SLIME_CHECK(name != "__metadata__", path, ": '__metadata__' is reserved and cannot name a tensor");
    SLIME_CHECK(seen.insert(name).second, path, ": tensor '", name, "' is given twice");
    SLIME_CHECK(tensor.defined(), path, ": tensor '", name, "' is undefined (no storage)");
    SLIME_CHECK(tensor.device() == Device::CPU, path, ": tensor '", name,
                "' is on the GPU; copy it to the host before writing");
  }

  // Buffer layout: larger elements first, so each tensor starts at a multiple of its element size.
  std::vector<size_t> layout_order(tensors.size());
  for (size_t i = 0; i < tensors.size(); ++i) layout_order[i] = i;
  std::stable_sort(layout_order.begin(), layout_order.end(), [&](size_t a, size_t b) {
    return dtype_size(tensors[a].second.dtype()) > dtype_size(tensors[b].second.dtype());
  });
  std::vector<uint64_t> begin_of(tensors.size());
  uint64_t buffer_bytes = 0;
  for (size_t i : layout_order) {
    begin_of[i] = buffer_bytes;
    buffer_bytes += tensors[i].second.nbytes();
  }

  ordered_json header = ordered_json::object();
  if (!metadata.empty()) {
    ordered_json meta = ordered_json::object();
    for (const auto& [key, value] : metadata) meta[key] = value;
    header["__metadata__"] = std::move(meta);
  }
  for (size_t i = 0; i < tensors.size(); ++i) {
    const Tensor& tensor = tensors[i].second;
    ordered_json entry = ordered_json::object();
    entry["dtype"] = dtype_name(tensor.dtype());
    entry["shape"] = tensor.shape();
    entry["data_offsets"] = {begin_of[i], begin_of[i] + tensor.nbytes()};
    header[tensors[i].first] = std::move(entry);
  }
  std::string header_text;
  try {
    header_text = header.dump();
  } catch (const ordered_json::exception& e) {
    SLIME_FAIL(path, ": a tensor name or metadata string is not valid UTF-8: ", e.what());
  }
  header_text.append((8 - (8 + header_text.size()) % 8) % 8, ' ');
  const uint64_t header_length = header_text.size();

  const std::string tmp = cat(path, ".tmp.", ::getpid());
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  SLIME_CHECK(fd >= 0, tmp, ": cannot create: ", std::strerror(errno));
  try {
    write_all(fd, &header_length, 8, tmp);
    write_all(fd, header_text.data(), header_text.size(), tmp);
    for (size_t i : layout_order) write_all(fd, tensors[i].second.raw(), tensors[i].second.nbytes(), tmp);
    SLIME_CHECK(::fsync(fd) == 0, tmp, ": fsync failed: ", std::strerror(errno));
    int closed = ::close(fd);
    fd = -1;
    SLIME_CHECK(closed == 0, tmp, ": close failed: ", std::strerror(errno));
    SLIME_CHECK(std::rename(tmp.c_str(), path.c_str()) == 0, "rename ", tmp, " -> ", path, ": ",
                std::strerror(errno));
  } catch (...) {
    if (fd >= 0) ::close(fd);
    ::unlink(tmp.c_str());
    throw;
  }
}

void write_safetensors_dir(const std::string& dir, const std::vector<std::pair<std::string, Tensor>>& tensors,
                           uint64_t max_shard_bytes, const std::map<std::string, std::string>& metadata) {
  SLIME_CHECK(max_shard_bytes > 0, dir, ": max_shard_bytes must be positive");
  make_directories(dir);

  // Greedy sharding in the given order, as transformers' save_pretrained does.
  std::vector<std::vector<std::pair<std::string, Tensor>>> shards(1);
  uint64_t shard_bytes = 0, total_bytes = 0;
  for (const auto& named : tensors) {
    uint64_t bytes = named.second.defined() ? named.second.nbytes() : 0;
    if (!shards.back().empty() && shard_bytes + bytes > max_shard_bytes) {
      shards.emplace_back();
      shard_bytes = 0;
    }
    shards.back().push_back(named);
    shard_bytes += bytes;
    total_bytes += bytes;
  }

  const std::string single_path = path_join(dir, kSafetensorsSingleFile);
  const std::string index_path = path_join(dir, kSafetensorsIndexFile);
  const int shard_count = static_cast<int>(shards.size());
  std::set<std::string> written;
  if (shard_count == 1) {
    write_safetensors(single_path, shards[0], metadata);
    remove_if_present(index_path);
  } else {
    json weight_map = json::object();
    for (int s = 0; s < shard_count; ++s) {
      const std::string shard_name = safetensors_shard_name(s, shard_count);
      write_safetensors(path_join(dir, shard_name), shards[s], metadata);
      written.insert(shard_name);
      for (const auto& named : shards[s]) weight_map[named.first] = shard_name;
    }
    json index = {{"metadata", {{"total_size", total_bytes}}}, {"weight_map", std::move(weight_map)}};
    write_file_atomic(index_path, index.dump(2) + "\n");
    remove_if_present(single_path);
  }
  static const std::regex shard_pattern("model-[0-9]{5}-of-[0-9]{5}\\.safetensors");
  for (const std::string& name : list_directory(dir)) {
    if (std::regex_match(name, shard_pattern) && !written.count(name)) remove_if_present(path_join(dir, name));
  }
}

}  // namespace slime::ckpt
