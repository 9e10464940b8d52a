// Thin RAII over the HDF5 C API (parallel build): owned handles, checked calls whose errors name the file and the
// object, and helpers for string/integer attributes and 1-D/2-D hyperslab selections.
//
// HDF5's own error stack printing is turned off; every failure becomes a slime::Error.
#pragma once

#include <hdf5.h>
#include <mpi.h>

#include <cstdint>
#include <string>
#include <vector>

#include "core/error.h"

namespace slime::h5 {

// Silences HDF5's automatic error printing (idempotent; call before any HDF5 use).
void quiet();

class Handle {
 public:
  Handle() = default;
  Handle(hid_t id, herr_t (*close)(hid_t)) : id_(id), close_(close) {}
  Handle(Handle&& other) noexcept { *this = std::move(other); }
  Handle& operator=(Handle&& other) noexcept;
  Handle(const Handle&) = delete;
  Handle& operator=(const Handle&) = delete;
  ~Handle() { reset(); }
  void reset();
  hid_t id() const { return id_; }
  operator hid_t() const { return id_; }

 private:
  hid_t id_ = -1;
  herr_t (*close_)(hid_t) = nullptr;
};

// Checks an HDF5 return value (negative = failure); `what` says what was being done, e.g. "ckpt/model.h5: create
// dataset 'x'".
hid_t check(hid_t id, const std::string& what);
void check_status(herr_t status, const std::string& what);

// Files. With comm != MPI_COMM_NULL the file is opened collectively through MPI-IO (every rank of comm calls).
Handle create_file(const std::string& path, MPI_Comm comm);
Handle open_file(const std::string& path, MPI_Comm comm, bool writable = false);

Handle create_group(hid_t parent, const std::string& name, const std::string& where);
Handle open_group(hid_t parent, const std::string& name, const std::string& where);
bool exists(hid_t parent, const std::string& name);

// Datasets of fp32 values (ranks 1 and 2).
Handle create_dataset_f32(hid_t parent, const std::string& name, const std::vector<int64_t>& shape,
                          const std::string& where);
Handle open_dataset(hid_t parent, const std::string& name, const std::string& where);
std::vector<int64_t> dataset_shape(hid_t dataset, const std::string& where);
// Names of the datasets directly under a group, sorted.
std::vector<std::string> list_datasets(hid_t group, const std::string& where);

// Selects the union of flat runs [start, start + count) of a row-major dataset of `shape` (ranks 1-2), or nothing
// when runs is empty. Returns the file dataspace.
Handle select_runs(hid_t dataset, const std::vector<int64_t>& shape,
                   const std::vector<std::pair<int64_t, int64_t>>& runs, const std::string& where);
// Collective write/read of the selected elements, in global row-major order, from/into a packed buffer.
void write_selection(hid_t dataset, hid_t file_space, const float* packed, int64_t count, bool collective,
                     const std::string& where);
void read_selection(hid_t dataset, hid_t file_space, float* packed, int64_t count, bool collective,
                    const std::string& where);

// Attributes (written collectively with the same value on every rank).
void write_string_attribute(hid_t object, const std::string& name, const std::string& value, const std::string& where);
std::string read_string_attribute(hid_t object, const std::string& name, const std::string& where);
void write_int_attribute(hid_t object, const std::string& name, int64_t value, const std::string& where);
int64_t read_int_attribute(hid_t object, const std::string& name, const std::string& where);
void write_u64_attribute(hid_t object, const std::string& name, uint64_t value, const std::string& where);
uint64_t read_u64_attribute(hid_t object, const std::string& name, const std::string& where);
bool has_attribute(hid_t object, const std::string& name);
std::vector<std::string> list_attributes(hid_t object, const std::string& where);

}  // namespace slime::h5
