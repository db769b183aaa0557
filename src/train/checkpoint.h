// Checkpoints: a Hugging Face model folder plus everything needed to continue training exactly.
//
//   DIR/config.json, model.safetensors, tokenizer files   the model (save_model), loadable by load_model / transformers
//   DIR/<subdir>/...                                      further models (e.g. PPO's critic in "critic")
//   or, with LoRA: DIR/adapter_config.json, adapter_model.safetensors   a PEFT adapter (lora/peft_format.h) instead
//                                                         of the model; --resume loads the base, then the adapter
//   DIR/<optimizer name>.safetensors                      AdamW state (exp_avg.*, exp_avg_sq.*, step)
//   DIR/rng_state.safetensors                             torch's default CPU generator state
//   DIR/trainer_state.json                                {"step", "epoch", "data_position", "state": {...}}
//   DIR/<json_files>                                      e.g. train_config.json, rlhf_format.json
//
// Written into a temporary sibling folder, then renamed over DIR, so a crash never leaves a half checkpoint.
// Resume: load the model(s) from DIR with load_model, build the optimizer the same way, then load_checkpoint()
// restores the optimizer state and the RNG and returns the step/epoch/data position. On CPU in float32 the
// continued run is bit-identical to an uninterrupted one (tested).
#pragma once
#include <nlohmann/json.hpp>
#include <map>
#include <string>
#include <vector>

#include "lora/peft_format.h"
#include "model/model.h"
#include "train/optim.h"

namespace rlhf::train {

struct TrainState {
  int64_t step = 0;            // optimizer steps done
  int64_t epoch = 0;           // current epoch (0-based)
  int64_t data_position = 0;   // batches of this epoch already consumed
  nlohmann::json state = nlohmann::json::object();  // anything else the trainer needs (e.g. PPO's KL coefficient)
};

struct CheckpointModel {
  std::string subdir;          // "" = the checkpoint folder itself
  TransformerLM* model = nullptr;
  SaveOptions save;            // source_dir: where tokenizer files come from
};

// A PEFT adapter folder in place of a model: only the adapters (and a classifier's score head) are written.
struct CheckpointAdapter {
  std::string subdir;          // "" = the checkpoint folder itself
  TransformerLM* model = nullptr;
  const lora::LoraAdapters* adapters = nullptr;
  lora::AdapterSaveOptions save;
};

struct CheckpointOptimizer {
  std::string name = "optimizer";  // file <name>.safetensors
  AdamW* optimizer = nullptr;
};

struct Checkpoint {
  std::vector<CheckpointModel> models;
  std::vector<CheckpointAdapter> adapters;
  std::vector<CheckpointOptimizer> optimizers;
  TrainState state;
  std::map<std::string, nlohmann::json> json_files;  // file name -> content, written pretty-printed
  bool save_rng = true;
};

// Writes the checkpoint atomically (temporary sibling folder + rename; an existing DIR is replaced, except that
// entries the checkpoint does not write, such as metrics.jsonl or checkpoints/, are moved over).
void save_checkpoint(const std::string& dir, const Checkpoint& ck);

// Restores the named optimizers' state and (restore_rng) the RNG state from DIR; returns its TrainState.
// Errors name the file and what is missing.
TrainState load_checkpoint(const std::string& dir, const std::vector<CheckpointOptimizer>& optimizers,
                           bool restore_rng = true);

// Whether DIR looks like a checkpoint (has trainer_state.json).
bool is_checkpoint(const std::string& dir);

// Writes `content` to path via a temporary file + rename.
void write_json_atomic(const std::string& path, const nlohmann::json& content);

}  // namespace rlhf::train
