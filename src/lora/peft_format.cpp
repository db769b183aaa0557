#include "lora/peft_format.h"

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <set>

#include "common/atomic_dir.h"
#include "common/error.h"
#include "model/model_files.h"
#include "io/safetensors.h"

namespace fs = std::filesystem;
using nlohmann::json;

namespace rlhf::lora {

namespace {
const char* kConfigFile = "adapter_config.json";
const char* kWeightsFile = "adapter_model.safetensors";
const char* kPeftVersion = "0.21.2";  // the PEFT whose fields are written (scripts/requirements.txt)

bool starts_with(const std::string& s, const std::string& p) { return s.compare(0, p.size(), p) == 0; }
}  // namespace

json peft_adapter_config(const LoraAdapters& a, const std::string& base_model, bool fan_in_fan_out) {
  const auto& o = a.options;
  json modules_to_save = a.modules_to_save.empty() ? json(nullptr) : json(a.modules_to_save);
  // Every field of LoraConfig in PEFT 0.21.2, at its default unless set here (nlohmann's object keeps keys sorted,
  // as PEFT's json.dumps(sort_keys=True) does).
  return {{"alora_invocation_tokens", nullptr},
          {"alpha_pattern", json::object()},
          {"arrow_config", nullptr},
          {"auto_mapping", nullptr},
          {"base_model_name_or_path", base_model},
          {"bias", "none"},
          {"corda_config", nullptr},
          {"ensure_weight_tying", false},
          {"eva_config", nullptr},
          {"exclude_modules", nullptr},
          {"fan_in_fan_out", fan_in_fan_out},
          {"inference_mode", true},
          {"init_lora_weights", true},
          {"kasa_config", nullptr},
          {"layer_replication", nullptr},
          {"layers_pattern", nullptr},
          {"layers_to_transform", nullptr},
          {"loftq_config", json::object()},
          {"lora_alpha", o.alpha},
          {"lora_bias", false},
          {"lora_dropout", o.dropout},
          {"lora_ga_config", nullptr},
          {"megatron_config", nullptr},
          {"megatron_core", "megatron.core"},
          {"modules_to_save", modules_to_save},
          {"monteclora_config", nullptr},
          {"peft_type", "LORA"},
          {"peft_version", kPeftVersion},
          {"qalora_group_size", 16},
          {"r", o.r},
          {"rank_pattern", json::object()},
          {"revision", nullptr},
          {"target_modules", a.target_modules},
          {"target_parameters", nullptr},
          {"task_type", a.task_type},
          {"trainable_token_indices", nullptr},
          {"use_bdlora", nullptr},
          {"use_dora", false},
          {"use_qalora", false},
          {"use_rslora", o.use_rslora},
          {"velora_config", nullptr}};
}

void save_peft_adapter(TransformerLM& model, const LoraAdapters& adapters, const std::string& dir,
                       const AdapterSaveOptions& options) {
  const fs::path target = fs::absolute(dir);
  fs::create_directories(target.parent_path());
  const fs::path tmp = target.string() + ".tmp-" + std::to_string(::getpid());
  fs::remove_all(tmp);
  fs::create_directories(tmp);
  try {
    std::map<std::string, torch::Tensor> tensors;
    for (const auto& w : adapter_weights(model, adapters))
      tensors[w.name] = w.tensor.detach().to(torch::kCPU).contiguous();
    io::save_safetensors((tmp / kWeightsFile).string(), tensors);
    bool fan_in_fan_out = false;
    for (const auto& e : adapters.entries) fan_in_fan_out = fan_in_fan_out || e.fan_in_fan_out;
    {
      std::ofstream out(tmp / kConfigFile);
      out << peft_adapter_config(adapters, options.base_model, fan_in_fan_out).dump(2) << "\n";
      out.flush();
      RLHF_CHECK(out, (tmp / kConfigFile).string(), ": write failed (disk full?)");
    }
    copy_tokenizer_files(options.source_dir, target.string(), tmp.string());
  } catch (...) {
    remove_temp_dir(tmp.string());  // a failed write (a full disk) leaves no half folder behind
    throw;
  }
  // Swap in the finished folder in one step (common/atomic_dir.h); then entries of the old DIR that are not a
  // model's or adapter's files (metrics.jsonl, checkpoints/ when DIR is the run's output folder) move over.
  replace_model_dir(tmp.string(), target.string());
}

bool is_peft_adapter(const std::string& dir) { return fs::exists(fs::path(dir) / kConfigFile); }

json read_adapter_config(const std::string& dir) {
  const auto path = (fs::path(dir) / kConfigFile).string();
  std::ifstream in(path);
  RLHF_CHECK(in, path, ": cannot open (is ", dir, " a PEFT adapter folder? it needs adapter_config.json and ",
             kWeightsFile, ")");
  try {
    return json::parse(in);
  } catch (const json::exception& e) {
    fail(path, ": not valid JSON (", e.what(), ")");
  }
}

LoadOptions adapter_load_options(const std::string& dir, LoadOptions base) {
  const json c = read_adapter_config(dir);
  const std::string task = c.value("task_type", json()).is_string() ? c["task_type"].get<std::string>() : "";
  if (task != "SEQ_CLS") {
    base.head = "lm";
    return base;
  }
  const auto w_path = (fs::path(dir) / kWeightsFile).string();
  RLHF_CHECK(fs::exists(w_path), w_path, ": missing");
  io::SafetensorsFile f(w_path);
  const std::string score = std::string(kPeftPrefix) + "score.weight";
  if (f.contains(score)) {
    base.head = "score";
    base.num_labels = f.infos().at(score).shape.at(0);
  } else {
    base.head = "auto";  // the base must be a classifier already (checked by load_peft_adapter)
  }
  return base;
}

std::shared_ptr<LoraAdapters> load_peft_adapter(TransformerLM& model, const std::string& dir) {
  const auto cfg_path = (fs::path(dir) / kConfigFile).string();
  const json c = read_adapter_config(dir);
  auto a = std::make_shared<LoraAdapters>();
  auto& o = a->options;
  std::vector<std::string> modules_to_save;
  try {
    RLHF_CHECK(c.value("peft_type", std::string()) == "LORA", cfg_path, ": peft_type is ", c.value("peft_type", json()).dump(),
               "; only LORA adapters are supported");
    o.r = c.at("r").get<int64_t>();
    o.alpha = c.value("lora_alpha", 8.0);
    o.dropout = c.value("lora_dropout", 0.0);
    o.use_rslora = c.value("use_rslora", false);
    a->task_type = c.value("task_type", json()).is_string() ? c["task_type"].get<std::string>() : "";
    if (c.contains("target_modules") && c["target_modules"].is_array())
      a->target_modules = c["target_modules"].get<std::vector<std::string>>();
    if (c.contains("modules_to_save") && c["modules_to_save"].is_array())
      modules_to_save = c["modules_to_save"].get<std::vector<std::string>>();
  } catch (const json::exception& e) {
    fail(cfg_path, ": missing or mistyped field (", e.what(), ")");
  }
  // What PEFT can write that this code does not compute: refuse rather than give other logits.
  auto unsupported = [&](const char* field, bool is_set) {
    RLHF_CHECK(!is_set, cfg_path, ": ", field, " = ", c.value(field, json()).dump(),
               " is not supported (hint: train the adapter without it, or merge it with PEFT's merge_and_unload)");
  };
  auto non_empty = [&](const char* f) {
    return c.contains(f) && !c[f].is_null() && !(c[f].is_object() && c[f].empty()) && !(c[f].is_array() && c[f].empty());
  };
  unsupported("use_dora", c.value("use_dora", false));
  unsupported("lora_bias", c.value("lora_bias", false));
  unsupported("bias", c.value("bias", std::string("none")) != "none");
  unsupported("rank_pattern", non_empty("rank_pattern"));
  unsupported("alpha_pattern", non_empty("alpha_pattern"));
  unsupported("layer_replication", non_empty("layer_replication"));
  unsupported("target_parameters", non_empty("target_parameters"));
  unsupported("trainable_token_indices", non_empty("trainable_token_indices"));
  unsupported("use_qalora", c.value("use_qalora", false));
  RLHF_CHECK(o.r > 0 && o.alpha > 0, cfg_path, ": r and lora_alpha must be > 0, got ", o.r, " and ", o.alpha);
  const bool seq_cls = a->task_type == "SEQ_CLS";
  RLHF_CHECK(a->task_type == "CAUSAL_LM" || seq_cls || a->task_type.empty(), cfg_path, ": task_type \"", a->task_type,
             "\" is not supported (CAUSAL_LM or SEQ_CLS)");
  RLHF_CHECK(!seq_cls || model.has_score_head(), cfg_path,
             ": a SEQ_CLS adapter needs the base loaded as a classifier (reward model)");
  RLHF_CHECK(seq_cls || !model.has_score_head() || a->task_type.empty(), cfg_path,
             ": a CAUSAL_LM adapter needs the base loaded as a causal LM");
  if (a->task_type.empty()) a->task_type = model.has_score_head() ? "SEQ_CLS" : "CAUSAL_LM";

  const auto w_path = (fs::path(dir) / kWeightsFile).string();
  RLHF_CHECK(fs::exists(w_path), w_path, ": missing (a PEFT adapter folder has adapter_config.json and ",
             kWeightsFile, "; adapter_model.bin is not read)");
  auto tensors = io::load_safetensors(w_path);
  std::set<std::string> used;
  const auto sites = model.linear_sites();
  const std::string prefix = kPeftPrefix;
  for (size_t i = 0; i < sites.size(); ++i) {
    const auto& s = sites[i];
    const auto a_name = prefix + s.module + ".lora_A.weight", b_name = prefix + s.module + ".lora_B.weight";
    const bool has_a = tensors.count(a_name) > 0, has_b = tensors.count(b_name) > 0;
    if (!has_a && !has_b) continue;
    RLHF_CHECK(has_a && has_b, w_path, ": tensor \"", has_a ? b_name : a_name, "\" is missing (its pair ",
               has_a ? a_name : b_name, " is there)");
    const auto& A = tensors[a_name];
    const auto& B = tensors[b_name];
    RLHF_CHECK(A.dim() == 2 && A.size(0) == o.r && A.size(1) == s.in_features, w_path, ": tensor \"", a_name,
               "\" has shape ", A.sizes(), " but r = ", o.r, " and the layer's in_features = ", s.in_features,
               " imply [", o.r, ", ", s.in_features, "] (hint: is this adapter for this base model?)");
    RLHF_CHECK(B.dim() == 2 && B.size(0) == s.out_features && B.size(1) == o.r, w_path, ": tensor \"", b_name,
               "\" has shape ", B.sizes(), " but the layer's out_features = ", s.out_features, " and r = ", o.r,
               " imply [", s.out_features, ", ", o.r, "]");
    const auto opts = torch::TensorOptions().device(s.weight.device()).dtype(s.weight.scalar_type());
    auto lora = std::make_shared<LoraLinear>(A.to(opts).clone(), B.to(opts).clone(), o.scaling(), o.dropout);
    a->entries.push_back({static_cast<int64_t>(i), s.module, s.fan_in_fan_out, lora});
    used.insert(a_name);
    used.insert(b_name);
  }
  const std::string score_name = prefix + "score.weight";
  if (tensors.count(score_name)) {
    RLHF_CHECK(model.has_score_head(), w_path, ": has \"", score_name,
               "\" (a reward model's head) but the base was loaded as a causal LM");
    torch::NoGradGuard ng;
    auto head = model.adapter_score_head();  // the model's head, or its adapters' copy (make_adapter_score_head)
    const auto& src = tensors[score_name];
    RLHF_CHECK(src.sizes() == head.sizes(), w_path, ": tensor \"", score_name, "\" has shape ", src.sizes(),
               " but the model's score head is ", head.sizes());
    head.copy_(src);
    used.insert(score_name);
    a->modules_to_save = modules_to_save.empty() ? std::vector<std::string>{"score"} : modules_to_save;
  } else if (seq_cls) {
    a->modules_to_save = modules_to_save;
  }
  std::vector<std::string> unused;
  for (const auto& [name, t] : tensors)
    if (!used.count(name)) unused.push_back(name);
  if (!unused.empty()) {
    std::string list;
    for (size_t i = 0; i < unused.size() && i < 5; ++i) list += (i ? ", " : "") + unused[i];
    fail(w_path, ": ", unused.size(), " tensor(s) match no layer of this ", model.config().architecture, ": ", list,
         " (hint: is this adapter for this base model? names are base_model.model.<module>.lora_A.weight)");
  }
  RLHF_CHECK(!a->entries.empty(), w_path, ": no LoRA tensors (base_model.model.<module>.lora_A.weight)");
  install_adapters(model, *a);
  return a;
}

}  // namespace rlhf::lora
