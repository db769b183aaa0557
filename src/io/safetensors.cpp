#include "io/safetensors.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "common/error.h"

namespace fs = std::filesystem;
using nlohmann::json;

namespace rlhf::io {

namespace {

struct DtypeEntry {
  const char* name;
  torch::Dtype dtype;
};
const DtypeEntry kDtypes[] = {
    {"F64", torch::kFloat64}, {"F32", torch::kFloat32}, {"F16", torch::kFloat16}, {"BF16", torch::kBFloat16},
    {"I64", torch::kInt64},   {"I32", torch::kInt32},   {"I16", torch::kInt16},   {"I8", torch::kInt8},
    {"U8", torch::kUInt8},    {"BOOL", torch::kBool},
};

std::string supported_dtypes() { return safetensors_dtype_names(); }

}  // namespace

torch::Dtype dtype_from_safetensors(const std::string& name, const std::string& context) {
  for (const auto& d : kDtypes)
    if (name == d.name) return d.dtype;
  fail(context, ": unknown dtype \"", name, "\" (supported: ", supported_dtypes(), ")");
}

std::string dtype_to_safetensors(torch::Dtype dtype) {
  for (const auto& d : kDtypes)
    if (dtype == d.dtype) return d.name;
  fail("cannot write dtype ", c10::toString(dtype), " to safetensors (supported: ", supported_dtypes(), ")");
}

SafetensorsFile::SafetensorsFile(const std::string& path) : path_(path) {
  int fd = ::open(path.c_str(), O_RDONLY);
  RLHF_CHECK(fd >= 0, path, ": cannot open (", std::strerror(errno), ")");
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    ::close(fd);
    fail(path, ": cannot stat (", std::strerror(errno), ")");
  }
  const uint64_t size = static_cast<uint64_t>(st.st_size);
  if (size < 8) {
    ::close(fd);
    fail(path, ": file is ", size, " bytes, too short for a safetensors header (truncated?)");
  }
  // Private, copy-on-write mapping: tensors may view it directly (zero-copy loading) and be trained in place;
  // writes never reach the file.
  void* addr = ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
  ::close(fd);
  RLHF_CHECK(addr != MAP_FAILED, path, ": mmap failed (", std::strerror(errno), ")");
  // Start reading the whole file ahead (tensors are touched front to back); page faults then find it cached.
  ::madvise(addr, size, MADV_WILLNEED);
  mapping_ = std::shared_ptr<void>(addr, [size](void* p) { ::munmap(p, size); });
  const auto* bytes = static_cast<const uint8_t*>(addr);

  SafetensorsHeader header = parse_safetensors_header(bytes, size, path);
  data_ = bytes + 8 + header.header_len;
  infos_ = std::move(header.infos);
  metadata_ = std::move(header.metadata);
}

torch::Tensor SafetensorsFile::get(const std::string& name) const {
  auto it = infos_.find(name);
  RLHF_CHECK(it != infos_.end(), path_, ": no tensor named \"", name, "\"");
  const TensorInfo& info = it->second;
  const torch::Dtype dt = dtype_from_safetensors(info.dtype, path_);
  auto options = torch::TensorOptions().dtype(dt);
  const uint8_t* ptr = data_ + info.begin;
  if (info.begin == info.end) return torch::empty(info.shape, options);
  if (reinterpret_cast<uintptr_t>(ptr) % c10::elementSize(dt) != 0) {
    // Misaligned for its element type: copy into an aligned buffer.
    auto t = torch::empty(info.shape, options);
    std::memcpy(t.data_ptr(), ptr, info.end - info.begin);
    return t;
  }
  auto keep = mapping_;
  // Copy-on-write pages (MAP_PRIVATE): writing into the tensor changes this process's copy, never the file.
  return torch::from_blob(const_cast<uint8_t*>(ptr), info.shape, [keep](void*) {}, options);
}

std::map<std::string, torch::Tensor> load_safetensors(const std::string& path) {
  SafetensorsFile file(path);
  std::map<std::string, torch::Tensor> out;
  for (const auto& [name, info] : file.infos()) out.emplace(name, file.get(name));
  return out;
}

void save_safetensors(const std::string& path, const std::map<std::string, torch::Tensor>& tensors,
                      const std::map<std::string, std::string>& metadata) {
  json header = json::object();
  if (!metadata.empty()) header["__metadata__"] = metadata;
  std::vector<torch::Tensor> data;
  uint64_t offset = 0;
  for (const auto& [name, tensor] : tensors) {
    RLHF_CHECK(tensor.defined(), path, ": tensor \"", name, "\" is undefined");
    auto t = tensor.detach().to(torch::kCPU).contiguous();
    const uint64_t nbytes = static_cast<uint64_t>(t.numel()) * t.element_size();
    header[name] = {{"dtype", dtype_to_safetensors(t.scalar_type())},
                    {"shape", t.sizes().vec()},
                    {"data_offsets", {offset, offset + nbytes}}};
    offset += nbytes;
    data.push_back(t);
  }
  std::string h = header.dump();
  while ((8 + h.size()) % 8 != 0) h.push_back(' ');  // data starts 8-byte aligned
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    RLHF_CHECK(out, tmp, ": cannot open for writing (", std::strerror(errno), ")");
    uint8_t len[8];
    for (int i = 0; i < 8; ++i) len[i] = static_cast<uint8_t>((h.size() >> (8 * i)) & 0xff);
    out.write(reinterpret_cast<const char*>(len), 8);
    out.write(h.data(), static_cast<std::streamsize>(h.size()));
    for (const auto& t : data)
      out.write(static_cast<const char*>(t.data_ptr()), static_cast<std::streamsize>(t.numel() * t.element_size()));
    out.flush();
    RLHF_CHECK(out, tmp, ": write failed (disk full?)");
  }
  // fsync so that the rename never exposes a file whose data is not on disk.
  int fd = ::open(tmp.c_str(), O_RDONLY);
  if (fd >= 0) {
    ::fsync(fd);
    ::close(fd);
  }
  RLHF_CHECK(std::rename(tmp.c_str(), path.c_str()) == 0, path, ": rename from ", tmp, " failed (",
             std::strerror(errno), ")");
}

std::map<std::string, torch::Tensor> load_checkpoint_tensors(const std::string& dir,
                                                             std::map<std::string, std::string>* source_file) {
  const fs::path index = fs::path(dir) / "model.safetensors.index.json";
  const fs::path single = fs::path(dir) / "model.safetensors";
  std::vector<std::string> files;
  std::map<std::string, std::string> expected_file;  // tensor -> shard, from the index
  if (fs::exists(index)) {
    json j;
    try {
      std::ifstream in(index);
      j = json::parse(in);
    } catch (const json::exception& e) {
      fail(index.string(), ": not valid JSON (", e.what(), ")");
    }
    RLHF_CHECK(j.contains("weight_map") && j["weight_map"].is_object(), index.string(),
               ": needs a \"weight_map\" object {tensor: shard file}");
    for (const auto& [name, file] : j["weight_map"].items()) {
      expected_file[name] = file.get<std::string>();
      if (std::find(files.begin(), files.end(), file.get<std::string>()) == files.end())
        files.push_back(file.get<std::string>());
    }
  } else if (fs::exists(single)) {
    files.push_back("model.safetensors");
  } else {
    fail(dir, ": no model.safetensors or model.safetensors.index.json (hint: a Hugging Face model folder saved with "
              "safe_serialization; .bin checkpoints are not supported)");
  }
  std::map<std::string, torch::Tensor> out;
  for (const auto& f : files) {
    const std::string path = (fs::path(dir) / f).string();
    RLHF_CHECK(fs::exists(path), path, ": shard listed in model.safetensors.index.json is missing");
    SafetensorsFile file(path);
    for (const auto& [name, info] : file.infos()) {
      RLHF_CHECK(!out.count(name), path, ": tensor \"", name, "\" appears in two shards");
      out.emplace(name, file.get(name));
      if (source_file) (*source_file)[name] = path;
    }
  }
  for (const auto& [name, file] : expected_file)
    RLHF_CHECK(out.count(name), (fs::path(dir) / file).string(), ": tensor \"", name,
               "\" is listed in the index but not in the shard");
  return out;
}

void save_checkpoint_tensors(const std::string& dir, const std::map<std::string, torch::Tensor>& tensors,
                             uint64_t max_shard_bytes) {
  uint64_t total = 0;
  for (const auto& [n, t] : tensors) total += static_cast<uint64_t>(t.numel()) * t.element_size();
  if (max_shard_bytes == 0 || total <= max_shard_bytes) {
    save_safetensors((fs::path(dir) / "model.safetensors").string(), tensors);
    return;
  }
  std::vector<std::map<std::string, torch::Tensor>> shards(1);
  uint64_t current = 0;
  for (const auto& [n, t] : tensors) {
    const uint64_t b = static_cast<uint64_t>(t.numel()) * t.element_size();
    if (current > 0 && current + b > max_shard_bytes) {
      shards.emplace_back();
      current = 0;
    }
    shards.back().emplace(n, t);
    current += b;
  }
  json weight_map = json::object();
  const size_t n = shards.size();
  for (size_t i = 0; i < n; ++i) {
    char name[64];
    std::snprintf(name, sizeof name, "model-%05zu-of-%05zu.safetensors", i + 1, n);
    save_safetensors((fs::path(dir) / name).string(), shards[i]);
    for (const auto& [t, _] : shards[i]) weight_map[t] = name;
  }
  json index = {{"metadata", {{"total_size", total}}}, {"weight_map", weight_map}};
  const std::string path = (fs::path(dir) / "model.safetensors.index.json").string();
  {
    std::ofstream out(path + ".tmp");
    out << index.dump(2) << "\n";
    RLHF_CHECK(out, path, ": write failed");
  }
  RLHF_CHECK(std::rename((path + ".tmp").c_str(), path.c_str()) == 0, path, ": rename failed");
}

}  // namespace rlhf::io
