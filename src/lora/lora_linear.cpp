#include "lora/lora_linear.h"

#include <cmath>

namespace rlhf::lora {

torch::Tensor LoraLinear::forward(const torch::Tensor& x, bool training) {
  auto h = dropout > 0 ? torch::dropout(x, dropout, training) : x;
  return torch::linear(torch::linear(h, A), B) * scaling;  // (..., r) then (..., out)
}

torch::Tensor LoraLinear::delta_weight(bool fan_in_fan_out) const {
  auto d = torch::matmul(B.to(torch::kFloat32), A.to(torch::kFloat32));  // (out, in)
  if (fan_in_fan_out) d = d.t();
  return (d * scaling).to(A.scalar_type());
}

std::shared_ptr<LoraLinear> new_lora_linear(int64_t in, int64_t out, int64_t r, double scaling, double dropout,
                                            const torch::TensorOptions& options, at::Generator& gen) {
  // kaiming_uniform_(A, a): gain = √(2/(1 + a²)), bound = gain·√(3/fan_in); a = √5 gives bound = 1/√in.
  const double a = std::sqrt(5.0);
  const double bound = std::sqrt(2.0 / (1.0 + a * a)) * std::sqrt(3.0 / static_cast<double>(in));
  auto A = torch::empty({r, in}, torch::kFloat32);
  A.uniform_(-bound, bound, gen);
  auto B = torch::zeros({out, r}, torch::kFloat32);
  return std::make_shared<LoraLinear>(A.to(options), B.to(options), scaling, dropout);
}

}  // namespace rlhf::lora
