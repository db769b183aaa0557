#include "io/safetensors_header.h"

#include <algorithm>
#include <limits>
#include <nlohmann/json.hpp>

#include "common/error.h"

using nlohmann::json;

namespace rlhf::io {

namespace {

struct DtypeSize {
  const char* name;
  uint64_t bytes;
};
const DtypeSize kDtypeSizes[] = {{"F64", 8}, {"F32", 4}, {"F16", 2}, {"BF16", 2}, {"I64", 8},
                                 {"I32", 4}, {"I16", 2}, {"I8", 1},  {"U8", 1},   {"BOOL", 1}};

}  // namespace

uint64_t safetensors_dtype_size(const std::string& name) {
  for (const auto& d : kDtypeSizes)
    if (name == d.name) return d.bytes;
  return 0;
}

std::string safetensors_dtype_names() {
  std::string s;
  for (const auto& d : kDtypeSizes) s += std::string(s.empty() ? "" : ", ") + d.name;
  return s;
}

SafetensorsHeader parse_safetensors_header(const uint8_t* bytes, uint64_t size, const std::string& path) {
  RLHF_CHECK(size >= 8, path, ": file is ", size, " bytes, too short for a safetensors header (truncated?)");
  SafetensorsHeader out;
  for (int i = 7; i >= 0; --i) out.header_len = (out.header_len << 8) | bytes[i];
  RLHF_CHECK(out.header_len <= size - 8, path, ": header length ", out.header_len, " exceeds the file size ", size,
             " (truncated or not a safetensors file)");
  json header;
  try {
    header = json::parse(bytes + 8, bytes + 8 + out.header_len);
  } catch (const json::exception& e) {
    fail(path, ": header is not valid JSON (", e.what(), ")");
  }
  RLHF_CHECK(header.is_object(), path, ": header must be a JSON object");
  out.data_size = size - 8 - out.header_len;

  std::vector<std::pair<uint64_t, std::string>> ranges;  // begin -> name, to find overlaps
  for (const auto& [name, entry] : header.items()) {
    if (name == "__metadata__") {
      RLHF_CHECK(entry.is_object(), path, ": __metadata__ must be an object of strings");
      for (const auto& [k, v] : entry.items())
        if (v.is_string()) out.metadata[k] = v.get<std::string>();
      continue;
    }
    const std::string ctx = cat(path, ": tensor \"", name, "\"");
    RLHF_CHECK(entry.is_object() && entry.contains("dtype") && entry.contains("shape") &&
                   entry.contains("data_offsets"),
               ctx, ": header entry needs dtype, shape and data_offsets");
    const json& dtype = entry.at("dtype");
    const json& shape = entry.at("shape");
    const json& offs = entry.at("data_offsets");
    RLHF_CHECK(dtype.is_string(), ctx, ": dtype must be a string, got ", dtype.dump());
    RLHF_CHECK(shape.is_array(), ctx, ": shape must be a list of integers, got ", shape.dump());
    RLHF_CHECK(offs.is_array() && offs.size() == 2 && offs[0].is_number_unsigned() && offs[1].is_number_unsigned(),
               ctx, ": data_offsets must be [begin, end] (non-negative integers), got ", offs.dump());
    TensorInfo info;
    info.dtype = dtype.get<std::string>();
    const uint64_t esize = safetensors_dtype_size(info.dtype);
    RLHF_CHECK(esize > 0, ctx, ": unknown dtype \"", info.dtype, "\" (supported: ", safetensors_dtype_names(), ")");
    // numel · esize in 64 bits, refusing overflow: a wrapped product could match a small span and describe a
    // tensor far larger than the file.
    uint64_t nbytes = esize;
    for (const json& d : shape) {
      RLHF_CHECK(d.is_number_unsigned(), ctx, ": shape must be a list of non-negative integers, got ", shape.dump());
      const uint64_t dim = d.get<uint64_t>();
      RLHF_CHECK(dim <= static_cast<uint64_t>(std::numeric_limits<int64_t>::max()) &&
                     (dim == 0 || nbytes <= std::numeric_limits<uint64_t>::max() / dim),
                 ctx, ": shape ", shape.dump(), " is too large (its byte size overflows 64 bits; corrupt header)");
      nbytes *= dim;
      info.shape.push_back(static_cast<int64_t>(dim));
    }
    info.begin = offs[0].get<uint64_t>();
    info.end = offs[1].get<uint64_t>();
    RLHF_CHECK(info.begin <= info.end && info.end <= out.data_size, ctx, ": data_offsets [", info.begin, ", ",
               info.end, "] lie outside the data section of ", out.data_size, " bytes (truncated file?)");
    RLHF_CHECK(info.end - info.begin == nbytes, ctx, ": data_offsets span ", info.end - info.begin,
               " bytes but dtype ", info.dtype, " and shape need ", nbytes);
    ranges.emplace_back(info.begin, name);
    out.infos.emplace(name, std::move(info));
  }
  std::sort(ranges.begin(), ranges.end());
  for (size_t i = 1; i < ranges.size(); ++i) {
    const auto& prev = out.infos.at(ranges[i - 1].second);
    RLHF_CHECK(prev.end <= ranges[i].first || prev.begin == prev.end, path, ": tensors \"", ranges[i - 1].second,
               "\" and \"", ranges[i].second, "\" overlap in the data section (corrupt header)");
  }
  return out;
}

}  // namespace rlhf::io
