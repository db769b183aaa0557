#include "train/logprobs.h"

#include <torch/torch.h>

#include "common/error.h"

namespace rlhf::train {

namespace {
void check_shapes(const torch::Tensor& logits, const torch::Tensor& tokens) {
  RLHF_CHECK(logits.dim() == 3 && tokens.dim() == 2 && logits.size(0) == tokens.size(0) &&
                 logits.size(1) == tokens.size(1),
             "token_logprobs: logits must be (B,T,V) and tokens (B,T), got ", logits.sizes(), " and ",
             tokens.sizes());
}
}  // namespace

namespace {
// logp = gather(z, y) − logsumexp(z) with a fused backward. Autograd's own backward of the two ops allocates and
// sweeps the (B,T,V) tensor five times (exp(z − lse) in three temporaries, a zero tensor for the gather's
// scatter, their sum); this one does it in one buffer:  ∂L/∂z = −g·exp(z − lse) + g·onehot(y).
// Same operations in the same order as autograd's (logsumexp_backward is grad·exp(self − result), and the
// one-hot part is added last), so the gradients are the same bits as before.
struct GatherMinusLogsumexp : public torch::autograd::Function<GatherMinusLogsumexp> {
  // z: (B,T,V) float32, idx: (B,T,1) int64 -> (B,T)
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, const torch::Tensor& z,
                               const torch::Tensor& idx) {
    auto lse = torch::logsumexp(z, /*dim=*/-1);  // (B,T)
    ctx->save_for_backward({z, idx, lse});
    return z.gather(/*dim=*/-1, idx).squeeze(-1) - lse;
  }
  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grad_out) {
    const auto saved = ctx->get_saved_variables();
    const auto &z = saved[0], &idx = saved[1], &lse = saved[2];
    auto g = grad_out[0].unsqueeze(-1);                          // (B,T,1)
    auto gz = (z - lse.unsqueeze(-1)).exp_().mul_(g.neg());      // −g·softmax(z)
    gz.scatter_add_(/*dim=*/-1, idx, g);                         // + g at the picked token
    return {gz, torch::Tensor()};
  }
};
}  // namespace

torch::Tensor token_logprobs(const torch::Tensor& logits, const torch::Tensor& tokens, double temperature) {
  check_shapes(logits, tokens);
  RLHF_CHECK(temperature > 0, "token_logprobs: temperature must be > 0, got ", temperature);
  auto z = logits.to(torch::kFloat32);
  if (temperature != 1.0) z = z / temperature;
  if (!z.requires_grad()) {  // no graph to build: the plain ops
    auto picked = z.gather(/*dim=*/-1, tokens.unsqueeze(-1)).squeeze(-1);  // (B,T)
    return picked - torch::logsumexp(z, /*dim=*/-1);
  }
  return GatherMinusLogsumexp::apply(z, tokens.unsqueeze(-1));
}

torch::Tensor token_logprobs_reference(const torch::Tensor& logits, const torch::Tensor& tokens,
                                       double temperature) {
  check_shapes(logits, tokens);
  auto logp = torch::log_softmax(logits.to(torch::kFloat32) / temperature, /*dim=*/-1);
  return logp.gather(-1, tokens.unsqueeze(-1)).squeeze(-1);
}

torch::Tensor causal_logprobs(const torch::Tensor& logits, const torch::Tensor& input_ids, double temperature) {
  const int64_t T = input_ids.size(1);
  return token_logprobs(logits.slice(1, 0, T - 1), input_ids.slice(1, 1, T), temperature);
}

torch::Tensor token_entropy(const torch::Tensor& logits, double temperature) {
  auto z = logits.to(torch::kFloat32) / temperature;
  auto logp = torch::log_softmax(z, -1);
  return -(logp.exp() * logp).sum(-1);
}

torch::Tensor masked_sum(const torch::Tensor& values, const torch::Tensor& mask) {
  return (values * mask.to(values.scalar_type())).sum(-1);
}

torch::Tensor masked_mean(const torch::Tensor& values, const torch::Tensor& mask) {
  auto m = mask.to(values.scalar_type());
  return (values * m).sum() / m.sum().clamp_min(1.0);
}

torch::Tensor sequence_logprobs(const torch::Tensor& logits, const torch::Tensor& input_ids,
                                const torch::Tensor& loss_mask, double temperature) {
  const int64_t T = input_ids.size(1);
  return masked_sum(causal_logprobs(logits, input_ids, temperature), loss_mask.slice(1, 1, T));
}

}  // namespace rlhf::train
