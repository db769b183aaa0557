#pragma once
#include "model/model.h"
namespace rlhf {
std::shared_ptr<TransformerLM> create_gpt2(const ModelConfig& config);  // GPT2LMHeadModel & classifier
}
