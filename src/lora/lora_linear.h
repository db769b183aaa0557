// One LoRA adapter on one linear layer: the model's LinearDelta hook (model/model.h), as PEFT's lora.Linear.
//
//   delta(x) = s · B·(A·dropout(x))        x (..., in) -> (..., out);  A (r, in), B (out, r), s = α/r or α/√r
//   computed as PEFT does: lora_B(lora_A(dropout(x))) · s, i.e. ((x·Aᵀ)·Bᵀ)·s
//
// Merged into the base weight: ΔW = s·B·A (out, in) for nn.Linear, or its transpose (in, out) for GPT-2's Conv1D
// (PEFT's fan_in_fan_out = true); the merged layer computes the same function up to float rounding.
#pragma once
#include <torch/torch.h>

#include "model/model.h"

namespace rlhf::lora {

class LoraLinear : public LinearDelta {
 public:
  // A (r, in), B (out, r): the trainable tensors (their requires_grad is set by the caller).
  LoraLinear(torch::Tensor A, torch::Tensor B, double scaling, double dropout)
      : A(std::move(A)), B(std::move(B)), scaling(scaling), dropout(dropout) {}

  torch::Tensor forward(const torch::Tensor& x, bool training) override;
  std::vector<torch::Tensor> parameters() const override { return {A, B}; }
  // s·B·A (out, in), or (in, out) when fan_in_fan_out; float32 math, returned in A's dtype.
  torch::Tensor delta_weight(bool fan_in_fan_out) const;

  torch::Tensor A, B;
  double scaling;
  double dropout;
};

// A fresh adapter as PEFT initialises one: A ~ kaiming_uniform_(a = √5) = U(−1/√in, 1/√in), B = 0.
// Drawn from gen; created with options (device, dtype) of the base weight.
std::shared_ptr<LoraLinear> new_lora_linear(int64_t in, int64_t out, int64_t r, double scaling, double dropout,
                                            const torch::TensorOptions& options, at::Generator& gen);

}  // namespace rlhf::lora
