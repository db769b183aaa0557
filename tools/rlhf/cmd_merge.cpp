// rlhf merge --model BASE --adapter DIR --out DIR [--save-dtype fp32|bf16] [--max-shard-size 5GB]
// Writes a plain Hugging Face folder with a PEFT LoRA adapter merged into its base (as PEFT's merge_and_unload):
//   W ← W + s·B·A per adapted layer (GPT-2's Conv1D (in, out): W ← W + s·(B·A)ᵀ), s = α/r (rsLoRA: α/√r);
//   a reward model's trained score head (modules_to_save) replaces the base's.
// Tokenizer files come from the adapter folder when it has them (rlhf's adapters do), else from the base.
#include <filesystem>
#include <iostream>

#include "command.h"
#include "common/error.h"
#include "common/runtime.h"
#include "lora/peft_format.h"
#include "model/model.h"

namespace {

struct MergeOptions {
  std::string model;           // the base model folder the adapter was trained on
  std::string adapter;         // PEFT adapter folder (adapter_config.json + adapter_model.safetensors)
  std::string out;             // the merged Hugging Face folder
  std::string save_dtype;      // "" keeps the base's dtypes | fp32 | bf16
  std::string max_shard_size;  // shard above this size ("": one file)
};

int run_merge(const MergeOptions& o) {
  const auto device = rlhf::resolve_device(rlhf::cli::runtime_flags().device);
  rlhf::SaveOptions so;
  so.dtype = rlhf::save_dtype_from_flag(o.save_dtype);
  so.max_shard_bytes = rlhf::parse_shard_size(o.max_shard_size);
  rlhf::LoadOptions lo;
  lo.device = device;
  lo = rlhf::lora::adapter_load_options(o.adapter, lo);
  auto model = rlhf::load_model(o.model, lo);
  auto adapters = rlhf::lora::load_peft_adapter(*model, o.adapter);
  rlhf::lora::merge_adapters(*model, *adapters);
  namespace fs = std::filesystem;
  so.source_dir = fs::exists(fs::path(o.adapter) / "tokenizer.json") ? o.adapter : o.model;
  rlhf::save_model(*model, o.out, so);
  std::cerr << "merge: " << adapters->entries.size() << " adapted layers of " << o.adapter << " merged into "
            << o.model << "; saved to " << o.out << "\n";
  return 0;
}

rlhf::cli::Command reg{"merge", "Merge a PEFT LoRA adapter into its base model (a plain Hugging Face folder)",
                       [](CLI::App& app) {
                         auto o = std::make_shared<MergeOptions>();
                         app.add_option("--model", o->model, "base model folder")->required();
                         app.add_option("--adapter", o->adapter, "PEFT adapter folder")->required();
                         app.add_option("--out", o->out, "output folder")->required();
                         app.add_option("--save-dtype", o->save_dtype, "fp32 | bf16 (default: as the base)");
                         app.add_option("--max-shard-size", o->max_shard_size, "shard above this size, e.g. 5GB");
                         return [o] { return run_merge(*o); };
                       }};

}  // namespace
