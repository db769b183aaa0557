#pragma once
#include "model/model.h"
namespace rlhf {
// LlamaForCausalLM, Qwen2ForCausalLM (q/k/v biases), Qwen3ForCausalLM (q/k RMSNorm), and their classifiers.
std::shared_ptr<TransformerLM> create_llama(const ModelConfig& config);
}
