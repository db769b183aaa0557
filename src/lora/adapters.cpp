#include "lora/adapters.h"

#include <ATen/CPUGeneratorImpl.h>

#include "common/error.h"

namespace rlhf::lora {

namespace {
void freeze_base(TransformerLM& model) {
  for (auto& p : model.parameters()) p.set_requires_grad(false);
  // The head trains in full (its copy, when the model keeps the original for use with the adapters off).
  if (model.has_score_head()) model.adapter_score_head().set_requires_grad(true);
}
}  // namespace

void install_adapters(TransformerLM& model, const LoraAdapters& adapters) {
  freeze_base(model);
  model.clear_linear_deltas();
  for (const auto& e : adapters.entries) {
    e.lora->A.set_requires_grad(true);
    e.lora->B.set_requires_grad(true);
    model.set_linear_delta(e.site, e.lora);
  }
  model.set_linear_deltas_enabled(true);
}

std::shared_ptr<LoraAdapters> attach_lora(TransformerLM& model, const LoraOptions& options, uint64_t seed) {
  options.validate();
  RLHF_CHECK(options.enabled(), "attach_lora: --lora-r must be > 0");
  auto a = std::make_shared<LoraAdapters>();
  a->options = options;
  a->task_type = model.has_score_head() ? "SEQ_CLS" : "CAUSAL_LM";
  if (model.has_score_head()) a->modules_to_save = {"classifier", "score"};
  const auto names = options.target_names(model.config().family);
  const bool all_linear = names.size() == 1 && names[0] == "all-linear";
  // One generator for all adapters, drawn in site order: the same seed gives the same adapters.
  auto gen = at::detail::createCPUGenerator(seed);
  const auto sites = model.linear_sites();
  for (size_t i = 0; i < sites.size(); ++i) {
    const auto& s = sites[i];
    if (!target_matches(names, s.module)) continue;
    const auto opts = torch::TensorOptions().device(s.weight.device()).dtype(s.weight.scalar_type());
    a->entries.push_back({static_cast<int64_t>(i), s.module, s.fan_in_fan_out,
                          new_lora_linear(s.in_features, s.out_features, options.r, options.scaling(),
                                          options.dropout, opts, gen)});
    if (all_linear) a->target_modules.push_back(s.module);  // PEFT 0.21 writes all-linear expanded to module paths
  }
  if (!all_linear) a->target_modules = names;
  if (a->entries.empty()) {
    std::string list;
    for (size_t i = 0; i < sites.size() && i < 7; ++i) list += (i ? ", " : "") + sites[i].module;
    fail("--lora-targets: no linear layer of this ", model.config().architecture, " matches \"",
         options.targets.empty() ? "(the family's default)" : options.targets, "\" (its layers: ", list,
         ", ...; hint: use the last part of a name, e.g. q_proj, or all-linear)");
  }
  install_adapters(model, *a);
  return a;
}

std::vector<NamedWeight> adapter_weights(TransformerLM& model, const LoraAdapters& adapters) {
  std::vector<NamedWeight> out;
  for (const auto& e : adapters.entries) {
    out.push_back({kPeftPrefix + e.module + ".lora_A.weight", e.lora->A});
    out.push_back({kPeftPrefix + e.module + ".lora_B.weight", e.lora->B});
  }
  if (!adapters.modules_to_save.empty() && model.has_score_head())
    out.push_back({std::string(kPeftPrefix) + "score.weight", model.adapter_score_head()});
  return out;
}

void merge_adapters(TransformerLM& model, const LoraAdapters& adapters) {
  torch::NoGradGuard ng;
  const auto sites = model.linear_sites();
  for (const auto& e : adapters.entries) {
    auto& w = sites.at(e.site).weight;
    // In float32, then back to the weight's dtype (PEFT casts bf16/fp16 to float32 for the product on the CPU too).
    w.copy_((w.to(torch::kFloat32) + e.lora->delta_weight(e.fan_in_fan_out).to(torch::kFloat32)).to(w.scalar_type()));
  }
  if (model.has_adapter_score_head())  // the merged model is the adapted one: its head is the adapters' copy
    for (auto& w : model.weights())
      if (w.name == "score.weight") w.tensor.copy_(model.adapter_score_head());
  model.clear_linear_deltas();
}

}  // namespace rlhf::lora
