// Which files make up a saved model or adapter folder (config, weights and their index, tokenizer files), as
// opposed to what an output folder keeps beside the model (metrics.jsonl, checkpoints/, runs/): a re-save replaces
// the former and carries the latter over (train/checkpoint.cpp, lora/peft_format.cpp). Kept out of model.h, which
// every translation unit includes.
#pragma once
#include <string>

namespace rlhf {

bool is_model_file(const std::string& name);

// Swaps the finished folder tmp in over target in one step (common/atomic_dir.h), then moves over the entries of
// the old target that are not model files and that the new folder lacks (metrics.jsonl, checkpoints/ when target
// is a run's output folder); the old model's files stay behind and are removed with the old folder.
void replace_model_dir(const std::string& tmp, const std::string& target);

}  // namespace rlhf
