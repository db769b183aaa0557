// Gradient checkpointing (Chen et al. 2016; transformers' `gradient_checkpointing_enable()`): a transformer block
// runs without keeping its activations, and backward runs the block again to get them.
//
//   forward:   y = f(x; θ), its graph dropped    kept: x (B, T, C), θ (the block's trainable tensors), the RNG state
//   backward:  y' = f(x'; θ) again with grad on, x' = x detached (requires_grad as x), RNG as it was in forward
//              (dx, dθ) = autograd.grad(y', (x', θ), dy)
//
// Memory: one (B, T, C) tensor per block instead of every intermediate (attention probabilities (B, H, T, T), MLP
// (B, T, F), norms, LoRA's (B, T, r)), at the price of a second forward per block (about +30% compute). The
// gradients equal the plain backward's up to float rounding (tests/test_grad_checkpoint.cpp: 1e-6) because the same
// kernels run on the same inputs; dropout draws the same masks because the generator's state is restored.
//
// θ must list every tensor of f that needs a gradient (the block's weights when they train, its LoRA A and B): the
// block's output then requires grad even when x does not (LoRA on a frozen embedding), which PyTorch's reentrant
// checkpoint gets wrong without `enable_input_require_grads`.
#pragma once
#include <torch/torch.h>

#include <functional>
#include <vector>

namespace rlhf {

using BlockFn = std::function<torch::Tensor(const torch::Tensor&)>;

// fn(x), checkpointed when grad mode is on (else simply fn(x)). fn must be pure in its captures: it is called again
// in backward, after the caller has returned, so it must capture by value (tensors are shared, not copied).
torch::Tensor checkpointed_block(BlockFn fn, const torch::Tensor& x, const std::vector<torch::Tensor>& params);

}  // namespace rlhf
