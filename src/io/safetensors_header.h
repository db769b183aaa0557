// The header of a safetensors file (https://github.com/huggingface/safetensors), parsed and validated without
// torch, so that the fuzz target and the sanitizer build cover exactly the code every load runs.
//
//   bytes [0, 8)          N, u64 little-endian
//   bytes [8, 8 + N)      JSON object: name -> {"dtype": "F32", "shape": [d0, ..], "data_offsets": [begin, end]},
//                         optionally "__metadata__": {str: str}
//   bytes [8 + N, size)   the data section; offsets are relative to its start
//
// Checks (each error names the file and, where there is one, the tensor): N fits the file; the header is a JSON
// object; every entry has a known dtype, a shape of non-negative integers whose element count × dtype size does
// not overflow 64 bits, and data_offsets [begin, end] inside the data section spanning exactly that many bytes;
// no two tensors overlap.
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace rlhf::io {

struct TensorInfo {
  std::string dtype;             // "F32", "BF16", ...
  std::vector<int64_t> shape;
  uint64_t begin = 0, end = 0;   // byte range in the data section
};

struct SafetensorsHeader {
  uint64_t header_len = 0;  // N
  uint64_t data_size = 0;   // size - 8 - N
  std::map<std::string, TensorInfo> infos;
  std::map<std::string, std::string> metadata;
};

// bytes: the whole file (size bytes). path: for the messages only.
SafetensorsHeader parse_safetensors_header(const uint8_t* bytes, uint64_t size, const std::string& path);

// Bytes per element of a safetensors dtype name ("F32" -> 4); 0 when the name is unknown.
uint64_t safetensors_dtype_size(const std::string& name);
// "F64, F32, F16, BF16, I64, I32, I16, I8, U8, BOOL": for error messages.
std::string safetensors_dtype_names();

}  // namespace rlhf::io
