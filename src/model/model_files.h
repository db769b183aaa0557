// Which files make up a saved model or adapter folder (config, weights and their index, tokenizer files), as
// opposed to what an output folder keeps beside the model (metrics.jsonl, checkpoints/, runs/): a re-save replaces
// the former and carries the latter over (train/checkpoint.cpp, lora/peft_format.cpp). Kept out of model.h, which
// every translation unit includes.
#pragma once
#include <string>

namespace rlhf {

bool is_model_file(const std::string& name);

}  // namespace rlhf
