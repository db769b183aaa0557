// safetensors: https://github.com/huggingface/safetensors — the checkpoint format of Hugging Face models.
//
// Layout: u64 little-endian N | N bytes of JSON header | data. The header maps each tensor name to
// {"dtype": "F32", "shape": [..], "data_offsets": [begin, end]} (offsets relative to the data section) and
// may hold "__metadata__": {str: str}.
//
// Reading memory-maps the file (private, copy-on-write); tensors view the mapping (no copy) and keep it alive.
// Writing goes to a temporary name in the same folder, then rename(): a crash never leaves a half-written file.
#pragma once
#include <torch/types.h>

#include <map>
#include <string>
#include <vector>

#include "io/safetensors_header.h"

namespace rlhf::io {

// All tensors of one .safetensors file, validated: offsets inside the file, sizes that match dtype × shape,
// no overlaps, known dtypes. Errors name the file and the tensor.
class SafetensorsFile {
 public:
  explicit SafetensorsFile(const std::string& path);
  const std::string& path() const { return path_; }
  const std::map<std::string, TensorInfo>& infos() const { return infos_; }
  const std::map<std::string, std::string>& metadata() const { return metadata_; }
  bool contains(const std::string& name) const { return infos_.count(name) > 0; }
  // A CPU tensor viewing the mapped bytes (a copy only when the data is misaligned for its dtype).
  torch::Tensor get(const std::string& name) const;

 private:
  std::string path_;
  std::shared_ptr<void> mapping_;  // munmap on last release
  const uint8_t* data_ = nullptr;  // start of the data section
  std::map<std::string, TensorInfo> infos_;
  std::map<std::string, std::string> metadata_;
};

torch::Dtype dtype_from_safetensors(const std::string& name, const std::string& context);
std::string dtype_to_safetensors(torch::Dtype dtype);

// Reads every tensor of a file (views into the mapping).
std::map<std::string, torch::Tensor> load_safetensors(const std::string& path);

// Writes tensors (contiguous CPU copies are made as needed) atomically: path.tmp then rename.
void save_safetensors(const std::string& path, const std::map<std::string, torch::Tensor>& tensors,
                      const std::map<std::string, std::string>& metadata = {{"format", "pt"}});

// A model folder: model.safetensors, or shards listed in model.safetensors.index.json.
// Keeps every file mapped; name -> tensor.
std::map<std::string, torch::Tensor> load_checkpoint_tensors(const std::string& dir,
                                                             std::map<std::string, std::string>* source_file = nullptr);

// Writes model.safetensors, or shards model-0000i-of-0000N.safetensors + index when the total exceeds
// max_shard_bytes (0: never shard). Files are written atomically; call inside a temporary folder for
// folder-level atomicity (see checkpoint_dir.h).
void save_checkpoint_tensors(const std::string& dir, const std::map<std::string, torch::Tensor>& tensors,
                             uint64_t max_shard_bytes = 0);

}  // namespace rlhf::io
