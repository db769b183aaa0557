// How a run trades compute for memory: one options struct shared by every training command (sft, reward, dpo,
// ppo/grpo/rloo), validated, printed and saved with the run's config.
//
//   --gradient-checkpointing   each transformer block keeps only its input and recomputes its activations in
//                              backward (model/grad_checkpoint.h): activation memory per block (B, T, C) instead
//                              of every intermediate, for about one more forward of compute
//   --frozen-dtype bf16        frozen weights (the reference model, the reward model, the base under LoRA adapters)
//                              stored in bf16 and computed in fp32 (TransformerLM::store_frozen_weights): half their
//                              memory, the fp32 model with bf16-rounded weights exactly. Trained weights stay fp32.
//                              While a block runs backward its weights exist once more in fp32: with
//                              --gradient-checkpointing that is one block at a time, without it every block's.
#pragma once
#include <torch/types.h>

#include <nlohmann/json.hpp>
#include <string>

#include "common/error.h"

namespace rlhf::train {

struct MemoryOptions {
  bool gradient_checkpointing = false;  // trained models only (the policy, the critic, the model of sft/reward/dpo)
  std::string frozen_dtype = "fp32";    // fp32 | bf16: storage of the frozen models' weights

  void validate() const {
    RLHF_CHECK(frozen_dtype == "fp32" || frozen_dtype == "bf16", "--frozen-dtype: \"", frozen_dtype,
               "\" is not one of fp32, bf16");
  }
  bool frozen_bf16() const { return frozen_dtype == "bf16"; }
  nlohmann::json to_json() const {
    return {{"gradient_checkpointing", gradient_checkpointing}, {"frozen_dtype", frozen_dtype}};
  }
};

}  // namespace rlhf::train
