// generate_texts / score_texts (model/text_api.h): text in, text out, on top of the models, the formatter
// (train/format.h, the same formatting the trainers use) and batched generation.
#include "model/text_api.h"

#include "common/error.h"
#include "common/runtime.h"
#include "model/generate.h"
#include "model/model.h"
#include "train/format.h"

namespace rlhf {

namespace {
constexpr size_t kBatch = 32;  // sequences per generate / score call
}

std::vector<std::vector<std::string>> generate_texts(const std::string& model_dir,
                                                     const std::vector<std::string>& prompts, int k,
                                                     const SamplingOptions& sampling, bool chat,
                                                     const std::string& device_name) {
  const auto device = resolve_device(device_name);
  LoadOptions lo;
  lo.head = "lm";
  lo.device = device;
  auto model = load_model(model_dir, lo);
  Formatter fmt = Formatter::from_dir(model_dir, chat ? 1 : -1);
  std::vector<std::pair<size_t, std::vector<int64_t>>> jobs;  // (prompt index, prompt ids)
  for (size_t i = 0; i < prompts.size(); ++i) {
    auto ids = fmt.encode_prompt(prompts[i]);
    for (int j = 0; j < k; ++j) jobs.emplace_back(i, ids);
  }
  std::vector<std::vector<std::string>> out(prompts.size());
  auto gen = at::detail::createCPUGenerator(sampling.seed);
  SamplingOptions s = sampling;
  s.stop_at_eos = true;
  for (size_t start = 0; start < jobs.size(); start += kBatch) {
    const size_t end = std::min(jobs.size(), start + kBatch);
    std::vector<std::vector<int64_t>> batch;
    for (size_t j = start; j < end; ++j) batch.push_back(jobs[j].second);
    auto [ids, mask] = left_pad(batch, fmt.pad_id());
    auto res = generate(*model, ids.to(device), mask.to(device), s, fmt.stop_ids(), fmt.pad_id(), gen);
    auto new_ids = res.output_ids.narrow(1, ids.size(1), res.output_ids.size(1) - ids.size(1)).cpu();
    for (size_t j = start; j < end; ++j) {
      auto row = new_ids[static_cast<int64_t>(j - start)];
      std::vector<int64_t> v(row.data_ptr<int64_t>(), row.data_ptr<int64_t>() + row.numel());
      out[jobs[j].first].push_back(fmt.decode_response(v));
    }
  }
  return out;
}

std::vector<float> score_texts(const std::string& rm_dir,
                               const std::vector<std::pair<std::string, std::string>>& prompt_response,
                               const std::string& device_name) {
  const auto device = resolve_device(device_name);
  LoadOptions lo;
  lo.device = device;
  auto model = load_model(rm_dir, lo);
  RLHF_CHECK(model->has_score_head(), rm_dir, ": ", model->config().architecture,
             " is not a reward model (hint: train one with `rlhf reward`)");
  Formatter fmt = Formatter::from_dir(rm_dir);
  std::vector<float> scores;
  torch::NoGradGuard ng;
  for (size_t start = 0; start < prompt_response.size(); start += kBatch) {
    const size_t end = std::min(prompt_response.size(), start + kBatch);
    std::vector<std::vector<int64_t>> seqs;
    for (size_t j = start; j < end; ++j) {
      auto p = fmt.encode(prompt_response[j].first, prompt_response[j].second);
      p.prompt.insert(p.prompt.end(), p.response.begin(), p.response.end());
      seqs.push_back(std::move(p.prompt));
    }
    auto [ids, mask] = left_pad(seqs, fmt.pad_id());
    auto s = model->forward_scores(ids.to(device), mask.to(device)).select(1, 0).to(torch::kFloat32).cpu();
    for (int64_t i = 0; i < s.size(0); ++i) scores.push_back(s[i].item<float>());
  }
  return scores;
}

}  // namespace rlhf
