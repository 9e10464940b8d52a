#include "ckpt/h5.h"

#include <algorithm>
#include <cstring>

namespace slime::h5 {

void quiet() { H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr); }

Handle& Handle::operator=(Handle&& other) noexcept {
  if (this != &other) {
    reset();
    id_ = other.id_;
    close_ = other.close_;
    other.id_ = -1;
  }
  return *this;
}

void Handle::reset() {
  if (id_ >= 0 && close_) close_(id_);
  id_ = -1;
}

hid_t check(hid_t id, const std::string& what) {
  SLIME_CHECK(id >= 0, what, " failed (HDF5)");
  return id;
}

void check_status(herr_t status, const std::string& what) { SLIME_CHECK(status >= 0, what, " failed (HDF5)"); }

namespace {

Handle file_access(MPI_Comm comm) {
  Handle fapl(check(H5Pcreate(H5P_FILE_ACCESS), "create file access list"), H5Pclose);
  if (comm != MPI_COMM_NULL) check_status(H5Pset_fapl_mpio(fapl, comm, MPI_INFO_NULL), "set MPI-IO file access");
  return fapl;
}

Handle transfer(bool collective) {
  Handle dxpl(check(H5Pcreate(H5P_DATASET_XFER), "create transfer list"), H5Pclose);
  if (collective) check_status(H5Pset_dxpl_mpio(dxpl, H5FD_MPIO_COLLECTIVE), "set collective transfer");
  return dxpl;
}

}  // namespace

Handle create_file(const std::string& path, MPI_Comm comm) {
  quiet();
  Handle fapl = file_access(comm);
  return Handle(check(H5Fcreate(path.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, fapl), path + ": create file"), H5Fclose);
}

Handle open_file(const std::string& path, MPI_Comm comm, bool writable) {
  quiet();
  Handle fapl = file_access(comm);
  hid_t id = H5Fopen(path.c_str(), writable ? H5F_ACC_RDWR : H5F_ACC_RDONLY, fapl);
  SLIME_CHECK(id >= 0, path, ": cannot open as an HDF5 file (missing, truncated or corrupt)");
  return Handle(id, H5Fclose);
}

Handle create_group(hid_t parent, const std::string& name, const std::string& where) {
  return Handle(check(H5Gcreate2(parent, name.c_str(), H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT),
                      where + ": create group '" + name + "'"),
                H5Gclose);
}

Handle open_group(hid_t parent, const std::string& name, const std::string& where) {
  SLIME_CHECK(exists(parent, name), where, ": missing group '", name, "'");
  return Handle(check(H5Gopen2(parent, name.c_str(), H5P_DEFAULT), where + ": open group '" + name + "'"), H5Gclose);
}

bool exists(hid_t parent, const std::string& name) { return H5Lexists(parent, name.c_str(), H5P_DEFAULT) > 0; }

Handle create_dataset_f32(hid_t parent, const std::string& name, const std::vector<int64_t>& shape,
                          const std::string& where) {
  std::vector<hsize_t> dims(shape.begin(), shape.end());
  Handle space(check(H5Screate_simple(static_cast<int>(dims.size()), dims.data(), nullptr), where + ": dataspace"),
               H5Sclose);
  // Allocate storage at creation and never write fill values: every element is written by exactly one rank.
  Handle dcpl(check(H5Pcreate(H5P_DATASET_CREATE), where + ": creation list"), H5Pclose);
  check_status(H5Pset_alloc_time(dcpl, H5D_ALLOC_TIME_EARLY), where + ": allocation time");
  check_status(H5Pset_fill_time(dcpl, H5D_FILL_TIME_NEVER), where + ": fill time");
  return Handle(check(H5Dcreate2(parent, name.c_str(), H5T_IEEE_F32LE, space, H5P_DEFAULT, dcpl, H5P_DEFAULT),
                      where + ": create dataset '" + name + "'"),
                H5Dclose);
}

Handle open_dataset(hid_t parent, const std::string& name, const std::string& where) {
  SLIME_CHECK(exists(parent, name), where, ": missing dataset '", name, "'");
  return Handle(check(H5Dopen2(parent, name.c_str(), H5P_DEFAULT), where + ": open dataset '" + name + "'"),
                H5Dclose);
}

std::vector<int64_t> dataset_shape(hid_t dataset, const std::string& where) {
  Handle space(check(H5Dget_space(dataset), where + ": dataspace"), H5Sclose);
  int rank = H5Sget_simple_extent_ndims(space);
  SLIME_CHECK(rank >= 0, where, ": cannot read the dataset's rank");
  std::vector<hsize_t> dims(rank);
  H5Sget_simple_extent_dims(space, dims.data(), nullptr);
  return std::vector<int64_t>(dims.begin(), dims.end());
}

std::vector<std::string> list_datasets(hid_t group, const std::string& where) {
  std::vector<std::string> names;
#if H5_VERSION_GE(1, 12, 0)
  auto visit = [](hid_t g, const char* name, const H5L_info2_t*, void* data) -> herr_t {
    H5O_info2_t info;
    if (H5Oget_info_by_name3(g, name, &info, H5O_INFO_BASIC, H5P_DEFAULT) >= 0 && info.type == H5O_TYPE_DATASET)
      static_cast<std::vector<std::string>*>(data)->push_back(name);
    return 0;
  };
  check_status(H5Literate2(group, H5_INDEX_NAME, H5_ITER_INC, nullptr, visit, &names), where + ": list datasets");
#else
  auto visit = [](hid_t g, const char* name, const H5L_info_t*, void* data) -> herr_t {
    H5O_info_t info;
    if (H5Oget_info_by_name2(g, name, &info, H5O_INFO_BASIC, H5P_DEFAULT) >= 0 && info.type == H5O_TYPE_DATASET)
      static_cast<std::vector<std::string>*>(data)->push_back(name);
    return 0;
  };
  check_status(H5Literate(group, H5_INDEX_NAME, H5_ITER_INC, nullptr, visit, &names), where + ": list datasets");
#endif
  std::sort(names.begin(), names.end());
  return names;
}

Handle select_runs(hid_t dataset, const std::vector<int64_t>& shape,
                   const std::vector<std::pair<int64_t, int64_t>>& runs, const std::string& where) {
  SLIME_ASSERT(shape.size() == 1 || shape.size() == 2, where, ": only 1-D and 2-D datasets are supported");
  Handle space(check(H5Dget_space(dataset), where + ": dataspace"), H5Sclose);
  check_status(H5Sselect_none(space), where + ": select none");
  const int64_t cols = shape.size() == 2 ? shape[1] : 1;
  auto add_box = [&](int64_t row, int64_t col, int64_t rows, int64_t ncols) {
    if (rows == 0 || ncols == 0) return;
    if (shape.size() == 1) {
      hsize_t start = static_cast<hsize_t>(row), count = static_cast<hsize_t>(rows);
      check_status(H5Sselect_hyperslab(space, H5S_SELECT_OR, &start, nullptr, &count, nullptr), where + ": select");
    } else {
      hsize_t start[2] = {static_cast<hsize_t>(row), static_cast<hsize_t>(col)};
      hsize_t count[2] = {static_cast<hsize_t>(rows), static_cast<hsize_t>(ncols)};
      check_status(H5Sselect_hyperslab(space, H5S_SELECT_OR, start, nullptr, count, nullptr), where + ": select");
    }
  };
  for (const auto& [start, count] : runs) {
    if (shape.size() == 1) {
      add_box(start, 0, count, 1);
      continue;
    }
    // A flat run of a row-major matrix: a partial first row, whole middle rows, a partial last row.
    int64_t pos = start, left = count;
    if (pos % cols != 0) {
      const int64_t n = std::min(left, cols - pos % cols);
      add_box(pos / cols, pos % cols, 1, n);
      pos += n;
      left -= n;
    }
    if (left >= cols) {
      const int64_t rows = left / cols;
      add_box(pos / cols, 0, rows, cols);
      pos += rows * cols;
      left -= rows * cols;
    }
    if (left > 0) add_box(pos / cols, 0, 1, left);
  }
  return space;
}

void write_selection(hid_t dataset, hid_t file_space, const float* packed, int64_t count, bool collective,
                     const std::string& where) {
  hsize_t n = static_cast<hsize_t>(count);
  Handle mem(check(H5Screate_simple(1, &n, nullptr), where + ": memory space"), H5Sclose);
  if (count == 0) check_status(H5Sselect_none(mem), where + ": select none");
  Handle dxpl = transfer(collective);
  check_status(H5Dwrite(dataset, H5T_NATIVE_FLOAT, mem, file_space, dxpl, packed), where + ": write");
}

void read_selection(hid_t dataset, hid_t file_space, float* packed, int64_t count, bool collective,
                    const std::string& where) {
  hsize_t n = static_cast<hsize_t>(count);
  Handle mem(check(H5Screate_simple(1, &n, nullptr), where + ": memory space"), H5Sclose);
  if (count == 0) check_status(H5Sselect_none(mem), where + ": select none");
  Handle dxpl = transfer(collective);
  check_status(H5Dread(dataset, H5T_NATIVE_FLOAT, mem, file_space, dxpl, packed),
               where + ": read (truncated or corrupt file?)");
}

namespace {

template <class T>
void write_scalar_attribute(hid_t object, const std::string& name, hid_t file_type, hid_t mem_type, T value,
                            const std::string& where) {
  Handle space(check(H5Screate(H5S_SCALAR), where + ": scalar space"), H5Sclose);
  if (H5Aexists(object, name.c_str()) > 0) H5Adelete(object, name.c_str());
  Handle attr(check(H5Acreate2(object, name.c_str(), file_type, space, H5P_DEFAULT, H5P_DEFAULT),
                    where + ": create attribute '" + name + "'"),
              H5Aclose);
  check_status(H5Awrite(attr, mem_type, &value), where + ": write attribute '" + name + "'");
}

template <class T>
T read_scalar_attribute(hid_t object, const std::string& name, hid_t mem_type, const std::string& where) {
  SLIME_CHECK(has_attribute(object, name), where, ": missing attribute '", name, "'");
  Handle attr(check(H5Aopen(object, name.c_str(), H5P_DEFAULT), where + ": open attribute '" + name + "'"), H5Aclose);
  T value{};
  check_status(H5Aread(attr, mem_type, &value), where + ": read attribute '" + name + "'");
  return value;
}

}  // namespace

void write_string_attribute(hid_t object, const std::string& name, const std::string& value, const std::string& where) {
  Handle type(check(H5Tcopy(H5T_C_S1), where + ": string type"), H5Tclose);
  check_status(H5Tset_size(type, std::max<size_t>(value.size(), 1)), where + ": string size");
  check_status(H5Tset_cset(type, H5T_CSET_UTF8), where + ": string charset");
  Handle space(check(H5Screate(H5S_SCALAR), where + ": scalar space"), H5Sclose);
  if (H5Aexists(object, name.c_str()) > 0) H5Adelete(object, name.c_str());
  Handle attr(check(H5Acreate2(object, name.c_str(), type, space, H5P_DEFAULT, H5P_DEFAULT),
                    where + ": create attribute '" + name + "'"),
              H5Aclose);
  std::string padded = value.empty() ? std::string(1, '\0') : value;
  check_status(H5Awrite(attr, type, padded.data()), where + ": write attribute '" + name + "'");
}

std::string read_string_attribute(hid_t object, const std::string& name, const std::string& where) {
  SLIME_CHECK(has_attribute(object, name), where, ": missing attribute '", name, "'");
  Handle attr(check(H5Aopen(object, name.c_str(), H5P_DEFAULT), where + ": open attribute '" + name + "'"), H5Aclose);
  Handle type(check(H5Aget_type(attr), where + ": attribute type"), H5Tclose);
  SLIME_CHECK(H5Tget_class(type) == H5T_STRING && !H5Tis_variable_str(type), where, ": attribute '", name,
              "' is not a fixed-length string");
  std::string value(H5Tget_size(type), '\0');
  check_status(H5Aread(attr, type, value.data()), where + ": read attribute '" + name + "'");
  value.resize(std::strlen(value.c_str()));
  return value;
}

void write_int_attribute(hid_t object, const std::string& name, int64_t value, const std::string& where) {
  write_scalar_attribute<int64_t>(object, name, H5T_STD_I64LE, H5T_NATIVE_INT64, value, where);
}
int64_t read_int_attribute(hid_t object, const std::string& name, const std::string& where) {
  return read_scalar_attribute<int64_t>(object, name, H5T_NATIVE_INT64, where);
}
void write_u64_attribute(hid_t object, const std::string& name, uint64_t value, const std::string& where) {
  write_scalar_attribute<uint64_t>(object, name, H5T_STD_U64LE, H5T_NATIVE_UINT64, value, where);
}
uint64_t read_u64_attribute(hid_t object, const std::string& name, const std::string& where) {
  return read_scalar_attribute<uint64_t>(object, name, H5T_NATIVE_UINT64, where);
}

bool has_attribute(hid_t object, const std::string& name) { return H5Aexists(object, name.c_str()) > 0; }

std::vector<std::string> list_attributes(hid_t object, const std::string& where) {
  std::vector<std::string> names;
  auto visit = [](hid_t, const char* name, const H5A_info_t*, void* data) -> herr_t {
    static_cast<std::vector<std::string>*>(data)->push_back(name);
    return 0;
  };
  check_status(H5Aiterate2(object, H5_INDEX_NAME, H5_ITER_INC, nullptr, visit, &names), where + ": list attributes");
  return names;
}

}  // namespace slime::h5
