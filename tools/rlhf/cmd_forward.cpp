// rlhf forward --model DIR [--adapter PEFT_DIR] --input IN.safetensors --output OUT.safetensors
// IN: input_ids (I64, B×T), optional attention_mask (default ones), optional position_ids
// (default cumsum(mask) - 1 clamped at 0). OUT: logits (F32, B×T×V) for a causal LM, scores (F32, B×L) for a
// sequence classifier.
#include "command.h"
#include "common/error.h"
#include "common/runtime.h"
#include "io/safetensors.h"
#include "lora/peft_format.h"
#include "model/model.h"

namespace {

struct ForwardOptions {
  std::string model, input, output;
  std::string adapter;  // a PEFT LoRA adapter applied on top of --model (unmerged)
};

int run_forward(const ForwardOptions& o) {
  const auto device = rlhf::resolve_device(rlhf::cli::runtime_flags().device);
  rlhf::LoadOptions lo;
  lo.device = device;
  if (!o.adapter.empty()) lo = rlhf::lora::adapter_load_options(o.adapter, lo);
  auto model = rlhf::load_model(o.model, lo);
  if (!o.adapter.empty()) rlhf::lora::load_peft_adapter(*model, o.adapter);
  auto in = rlhf::io::load_safetensors(o.input);
  RLHF_CHECK(in.count("input_ids"), o.input, ": needs a tensor \"input_ids\" (I64, B×T)");
  auto ids = in["input_ids"].to(torch::kInt64).to(device);
  RLHF_CHECK(ids.dim() == 2, o.input, ": input_ids must be 2-D (B×T), got ", ids.sizes());
  auto mask = in.count("attention_mask") ? in["attention_mask"].to(torch::kInt64).to(device) : torch::ones_like(ids);
  RLHF_CHECK(mask.sizes() == ids.sizes(), o.input, ": attention_mask shape ", mask.sizes(), " != input_ids ",
             ids.sizes());
  auto pos = in.count("position_ids") ? in["position_ids"].to(torch::kInt64).to(device)
                                      : rlhf::default_position_ids(mask);
  RLHF_CHECK(ids.max().item<int64_t>() < model->config().vocab_size && ids.min().item<int64_t>() >= 0, o.input,
             ": input_ids outside [0, vocab_size=", model->config().vocab_size, ")");
  torch::NoGradGuard ng;
  std::map<std::string, torch::Tensor> out;
  if (model->has_score_head()) out["scores"] = model->forward_scores(ids, mask, pos).to(torch::kFloat32).cpu();
  else out["logits"] = model->forward_logits(ids, mask, pos).to(torch::kFloat32).cpu();
  rlhf::io::save_safetensors(o.output, out);
  return 0;
}

rlhf::cli::Command reg{"forward", "Run a model on token ids from a safetensors file; write logits or scores",
                       [](CLI::App& app) {
                         auto o = std::make_shared<ForwardOptions>();
                         app.add_option("--model", o->model, "Hugging Face model folder")->required();
                         app.add_option("--input", o->input, "safetensors with input_ids [attention_mask, position_ids]")
                             ->required();
                         app.add_option("--output", o->output, "safetensors to write (logits or scores)")->required();
                         app.add_option("--adapter", o->adapter, "PEFT LoRA adapter folder to apply to --model");
                         return [o] { return run_forward(*o); };
                       }};

}  // namespace
