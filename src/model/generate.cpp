#include "model/generate.h"

#include <dlfcn.h>

#include "model/sampling.h"

namespace rlhf {

namespace {
// Thread pools for the decode loop. A decode step multiplies a few rows (the batch) by every weight matrix and runs
// a few dozen small ops: handing each to a second thread costs more in wake-ups (futex, OpenBLAS's sched_yield
// spinning) than it saves (gpt2-tiny, B = 8, 2 cores: OpenBLAS on one thread 1.5-2x faster decoding, libtorch's
// OpenMP pool on one thread another 1.3-1.4x). Neither split changes a sum's order: OpenBLAS splits level-3 work
// without splitting the K sums, and the decode kernels split columns (decode_kernels.h), so the bits are the same.
class DecodeThreads {
 public:
  explicit DecodeThreads(bool single) {
    if (!single) return;
    using GetFn = int (*)();
    get_blas_ = reinterpret_cast<GetFn>(dlsym(RTLD_DEFAULT, "openblas_get_num_threads"));
    set_blas_ = reinterpret_cast<SetFn>(dlsym(RTLD_DEFAULT, "openblas_set_num_threads"));
    if (get_blas_ && set_blas_) {
      old_blas_ = get_blas_();
      if (old_blas_ != 1) set_blas_(1);
    }
    old_torch_ = at::get_num_threads();
    if (old_torch_ != 1) at::set_num_threads(1);
  }
  ~DecodeThreads() {
    if (set_blas_ && old_blas_ > 0 && get_blas_() != old_blas_) set_blas_(old_blas_);
    if (old_torch_ > 1) at::set_num_threads(old_torch_);
  }
  DecodeThreads(const DecodeThreads&) = delete;
  DecodeThreads& operator=(const DecodeThreads&) = delete;

 private:
  using SetFn = void (*)(int);
  int (*get_blas_)() = nullptr;
  SetFn set_blas_ = nullptr;
  int old_blas_ = 0, old_torch_ = 0;
};
constexpr int64_t kSingleThreadDecodeRows = 32;  // batch rows up to which decode steps run on one thread
}  // namespace

std::pair<torch::Tensor, torch::Tensor> left_pad(const std::vector<std::vector<int64_t>>& seqs, int64_t pad_id) {
  size_t T = 0;
  for (const auto& s : seqs) T = std::max(T, s.size());
  const int64_t B = static_cast<int64_t>(seqs.size());
  auto ids = torch::full({B, static_cast<int64_t>(T)}, pad_id, torch::kInt64);
  auto mask = torch::zeros({B, static_cast<int64_t>(T)}, torch::kInt64);
  auto ida = ids.accessor<int64_t, 2>();
  auto ma = mask.accessor<int64_t, 2>();
  for (int64_t b = 0; b < B; ++b) {
    const size_t off = T - seqs[b].size();
    for (size_t t = 0; t < seqs[b].size(); ++t) {
      ida[b][off + t] = seqs[b][t];
      ma[b][off + t] = 1;
    }
  }
  return {ids, mask};
}

namespace {

// next tokens (B,) from the processed logits (B, V) (temperature already applied) and the options.
using Draw = std::function<torch::Tensor(const torch::Tensor& logits, const SamplingOptions& opts)>;

GenerateOutput generate_with(TransformerLM& model, const torch::Tensor& input_ids, const torch::Tensor& attention_mask,
                             const SamplingOptions& opts, const std::vector<int64_t>& eos_ids, int64_t pad_id,
                             const Draw& draw, const std::function<void(int64_t, const torch::Tensor&)>& on_step) {
  torch::NoGradGuard ng;
  const auto device = input_ids.device();
  const int64_t B = input_ids.size(0), T = input_ids.size(1), N = opts.max_new_tokens;
  KVCache cache = model.make_cache(T + N);
  auto mask = attention_mask.to(torch::kInt64);
  // Preallocated outputs, written in place.
  auto out_ids = torch::full({B, T + N}, pad_id, input_ids.options());
  out_ids.narrow(1, 0, T).copy_(input_ids);
  auto out_mask = torch::zeros({B, T + N}, mask.options());
  out_mask.narrow(1, 0, T).copy_(mask);
  auto logprobs = torch::zeros({B, N}, torch::TensorOptions().dtype(torch::kFloat32).device(device));
  auto finished = torch::zeros({B}, torch::TensorOptions().dtype(torch::kBool).device(device));
  auto eos = torch::tensor(eos_ids.empty() ? std::vector<int64_t>{-1} : eos_ids, torch::kInt64).to(device);

  auto hidden = model.body(input_ids, mask, default_position_ids(mask), &cache);  // prefill (B, T, C)
  auto last = hidden.select(1, T - 1);
  auto next_pos = mask.sum(-1, /*keepdim=*/true);  // (B, 1): position of the first new token
  DecodeThreads threads(device.is_cpu() && B <= kSingleThreadDecodeRows);
  const float temp = opts.greedy ? 1.0f : opts.temperature;
  SamplingOptions scaled_opts = opts;
  scaled_opts.temperature = 1.0f;
  int64_t n = 0;
  for (; n < N; ++n) {
    auto logits = model.lm_logits(last).to(torch::kFloat32);  // (B, V)
    // logits / T once: the sampler's input (its own division skipped) and the log-probs' (under the sampling
    // temperature, not top-k/top-p, as PPO uses them).
    auto scaled = temp == 1.0f ? logits : logits / temp;
    auto next = draw(scaled, scaled_opts);  // (B,)
    auto lp = torch::log_softmax(scaled, -1).gather(-1, next.unsqueeze(-1)).squeeze(-1);
    if (opts.stop_at_eos) {
      next = torch::where(finished, torch::full_like(next, pad_id), next);
      lp = lp.masked_fill(finished, 0.0);
    }
    out_ids.select(1, T + n).copy_(next);
    out_mask.select(1, T + n).copy_(finished.logical_not().to(torch::kInt64));
    logprobs.select(1, n).copy_(lp);
    if (on_step) on_step(n, next);
    if (opts.stop_at_eos) {
      finished = finished.logical_or(torch::isin(next, eos));
      if (finished.all().item<bool>()) {
        ++n;
        break;
      }
    }
    if (n + 1 == N) {
      ++n;
      break;
    }
    // Decode step: the new token attends to everything so far (pads after EOS stay masked out).
    auto step_mask = out_mask.narrow(1, 0, T + n + 1).clone();
    step_mask.select(1, T + n).fill_(1);  // the token being fed is always visible to itself
    hidden = model.body(next.unsqueeze(1), step_mask, next_pos, &cache);
    last = hidden.select(1, 0);
    next_pos = next_pos + 1;
  }
  return {out_ids.narrow(1, 0, T + n), out_mask.narrow(1, 0, T + n), logprobs.narrow(1, 0, n)};
}

}  // namespace

GenerateOutput generate(TransformerLM& model, const torch::Tensor& input_ids, const torch::Tensor& attention_mask,
                        const SamplingOptions& opts, const std::vector<int64_t>& eos_ids, int64_t pad_id,
                        at::Generator& gen, const std::function<void(int64_t, const torch::Tensor&)>& on_step) {
  return generate_with(model, input_ids, attention_mask, opts, eos_ids, pad_id,
                       [&](const torch::Tensor& l, const SamplingOptions& o) { return sample_next(l, o, gen); }, on_step);
}

GenerateOutput generate_rows(TransformerLM& model, const torch::Tensor& input_ids, const torch::Tensor& attention_mask,
                             const SamplingOptions& opts, const std::vector<int64_t>& eos_ids, int64_t pad_id,
                             std::vector<at::Generator>& row_gens,
                             const std::function<void(int64_t, const torch::Tensor&)>& on_step) {
  TORCH_CHECK(static_cast<int64_t>(row_gens.size()) == input_ids.size(0), "generate_rows: ", row_gens.size(),
             " generators for ", input_ids.size(0), " rows");
  return generate_with(
      model, input_ids, attention_mask, opts, eos_ids, pad_id,
      [&](const torch::Tensor& l, const SamplingOptions& o) { return sample_next_rows(l, o, row_gens).to(l.device()); },
      on_step);
}

torch::Tensor generate_reference(TransformerLM& model, const torch::Tensor& input_ids,
                                 const torch::Tensor& attention_mask, int64_t max_new_tokens) {
  torch::NoGradGuard ng;
  auto ids = input_ids;
  auto mask = attention_mask.to(torch::kInt64);
  for (int64_t n = 0; n < max_new_tokens; ++n) {
    auto logits = model.forward_logits(ids, mask);  // (B, T, V)
    auto next = logits.select(1, ids.size(1) - 1).argmax(-1, /*keepdim=*/true);
    ids = torch::cat({ids, next}, 1);
    mask = torch::cat({mask, torch::ones_like(next)}, 1);
  }
  return ids;
}

}  // namespace rlhf
