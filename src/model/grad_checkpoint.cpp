#include "model/grad_checkpoint.h"

#include <ATen/core/Generator.h>
#include <torch/csrc/autograd/custom_function.h>

#include <mutex>

namespace rlhf {

namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

// The block and the RNG state of its forward, carried through the autograd context as a capsule.
struct BlockHolder : torch::CustomClassHolder {
  BlockFn fn;
  torch::Device device{torch::kCPU};
  torch::Tensor rng_state;  // the default generator of x's device before the forward
  bool x_requires_grad = false;
};

at::Generator default_generator(const torch::Device& device) {
  return at::globalContext().defaultGenerator(device);
}

torch::Tensor rng_state(const torch::Device& device) {
  auto gen = default_generator(device);
  std::lock_guard<std::mutex> lock(gen.mutex());
  return gen.get_state();
}

void set_rng_state(const torch::Device& device, const torch::Tensor& state) {
  auto gen = default_generator(device);
  std::lock_guard<std::mutex> lock(gen.mutex());
  gen.set_state(state);
}

struct CheckpointFunction : torch::autograd::Function<CheckpointFunction> {
  // Function::apply runs forward with grad mode off: f builds no graph and keeps no activations.
  static torch::Tensor forward(AutogradContext* ctx, const torch::Tensor& x, at::TensorList params,
                               c10::intrusive_ptr<BlockHolder> holder) {
    holder->x_requires_grad = x.requires_grad();
    holder->device = x.device();
    holder->rng_state = rng_state(x.device());
    std::vector<torch::Tensor> saved = {x};
    saved.insert(saved.end(), params.begin(), params.end());
    ctx->save_for_backward(saved);
    ctx->saved_data["block"] = c10::IValue::make_capsule(holder);
    // With grad mode on, as in the plain forward and in the recomputation, so that all three pick the same
    // kernels (the few-row fast paths of decode_kernels.h run only without autograd) and compute the same y bit
    // for bit; the graph built here is dropped with the block's activations when it returns.
    torch::AutoGradMode grad_on(true);
    return holder->fn(x.detach().requires_grad_(holder->x_requires_grad)).detach();
  }

  // Outputs: one gradient per forward argument: dx, one per tensor of params, none for the holder.
  static variable_list backward(AutogradContext* ctx, variable_list grad_out) {
    auto saved = ctx->get_saved_variables();
    auto holder = c10::static_intrusive_pointer_cast<BlockHolder>(ctx->saved_data["block"].toCapsule());
    torch::Tensor x = saved[0].detach().requires_grad_(holder->x_requires_grad);
    torch::Tensor y;
    {
      // Run f again as in forward: same RNG state (dropout masks), grad on; then give the RNG back its state.
      const auto now = rng_state(holder->device);
      set_rng_state(holder->device, holder->rng_state);
      torch::AutoGradMode grad_on(true);
      y = holder->fn(x);
      set_rng_state(holder->device, now);
    }
    variable_list inputs;
    std::vector<size_t> slot;  // output index of each entry of inputs
    if (x.requires_grad()) inputs.push_back(x), slot.push_back(0);
    for (size_t i = 1; i < saved.size(); ++i)
      if (saved[i].requires_grad()) inputs.push_back(saved[i]), slot.push_back(i);
    variable_list out(saved.size() + 1);  // + the holder's (none)
    if (inputs.empty() || !y.requires_grad()) return out;
    auto grads = torch::autograd::grad({y}, inputs, {grad_out[0]}, /*retain_graph=*/false, /*create_graph=*/false,
                                       /*allow_unused=*/true);
    for (size_t i = 0; i < grads.size(); ++i) out[slot[i]] = grads[i];
    return out;
  }
};

}  // namespace

torch::Tensor checkpointed_block(BlockFn fn, const torch::Tensor& x, const std::vector<torch::Tensor>& params) {
  if (!torch::GradMode::is_enabled()) return fn(x);
  auto holder = c10::make_intrusive<BlockHolder>();
  holder->fn = std::move(fn);
  std::vector<torch::Tensor> trainable;
  for (const auto& p : params)
    if (p.defined() && p.requires_grad()) trainable.push_back(p);
  if (!x.requires_grad() && trainable.empty()) return holder->fn(x);  // nothing to differentiate
  return CheckpointFunction::apply(x, at::TensorList(trainable), holder);
}

}  // namespace rlhf
