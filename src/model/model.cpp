// Heads, the weight table, creation, loading and saving of Hugging Face folders.
#include "model/model.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cctype>
#include <filesystem>
#include <fstream>
#include <set>
#include <tuple>

#include "common/atomic_dir.h"
#include "common/error.h"
#include "io/safetensors.h"
#include "model/gpt2.h"
#include "model/llama.h"
#include "model/model_files.h"
#include "model/decode_kernels.h"

namespace fs = std::filesystem;

namespace rlhf {

int64_t TransformerLM::parameter_count() {
  int64_t n = 0;
  for (const auto& p : parameters()) n += p.numel();
  return n;
}

torch::Tensor TransformerLM::lm_logits(const torch::Tensor& hidden) {
  TORCH_CHECK(has_lm_head(), "lm_logits: ", config_.architecture, " has no language-model head");
  const auto& w = config_.tie_word_embeddings ? token_embedding() : lm_head_;
  return linear_nk(hidden, w, {});
}

torch::Tensor TransformerLM::score(const torch::Tensor& hidden) {
  TORCH_CHECK(has_score_head(), "score: ", config_.architecture, " has no score head");
  const auto& w = deltas_enabled_ && score_copy_.defined() ? score_copy_ : score_;
  return torch::matmul(hidden, (w.scalar_type() == hidden.scalar_type() ? w : w.to(hidden.scalar_type())).t());
}

void TransformerLM::store_frozen_weights(torch::ScalarType dtype) {
  torch::NoGradGuard ng;
  for (auto& p : parameters()) {
    if (p.requires_grad() || !p.is_floating_point() || p.scalar_type() == dtype) continue;
    if (!compute_dtype_) compute_dtype_ = p.scalar_type();
    TORCH_CHECK(*compute_dtype_ == p.scalar_type(), "store_frozen_weights: the parameters have several dtypes");
    p.set_data(p.to(dtype));
  }
}

void TransformerLM::make_adapter_score_head() {
  TORCH_CHECK(has_score_head(), "make_adapter_score_head: ", config_.architecture, " has no score head");
  score_copy_ = computed(score_.detach()).clone();  // trained: in the compute dtype even when score_ is stored bf16
}

void TransformerLM::set_linear_delta(int64_t site, std::shared_ptr<LinearDelta> delta) {
  const int64_t n = static_cast<int64_t>(linear_sites().size());
  TORCH_CHECK(site >= 0 && site < n, "set_linear_delta: site ", site, " out of range [0, ", n, ")");
  if (static_cast<int64_t>(deltas_.size()) < n) deltas_.resize(n);
  deltas_[site] = std::move(delta);
}

bool TransformerLM::has_linear_deltas() const {
  for (const auto& d : deltas_)
    if (d) return true;
  return false;
}

torch::Tensor TransformerLM::run_block(const torch::Tensor& x, const KVCache* cache,
                                      std::vector<torch::Tensor> layer_tensors, int64_t site_begin, int64_t site_end,
                                      BlockFn block) {
  if (!gradient_checkpointing_ || cache || !torch::GradMode::is_enabled()) return block(x);
  if (deltas_enabled_)
    for (int64_t s = site_begin; s < site_end && s < static_cast<int64_t>(deltas_.size()); ++s)
      if (deltas_[s])
        for (auto& t : deltas_[s]->parameters()) layer_tensors.push_back(t);
  // The recomputation in backward sees the model as this forward did (adapters on or off, train or eval), whatever
  // was switched in between.
  const bool deltas_on = deltas_enabled_, training = is_training();
  auto as_now = [this, deltas_on, training, block = std::move(block)](const torch::Tensor& in) {
    const bool was_on = deltas_enabled_, was_training = is_training();
    deltas_enabled_ = deltas_on;
    if (was_training != training) train(training);
    auto y = block(in);
    deltas_enabled_ = was_on;
    if (was_training != training) train(was_training);
    return y;
  };
  return checkpointed_block(std::move(as_now), x, layer_tensors);
}

ComputeDtypeWeights::ComputeDtypeWeights(TransformerLM& model) {
  if (!model.has_stored_weights()) return;
  torch::NoGradGuard ng;
  const torch::ScalarType compute = *model.stored_weights_compute_dtype();
  for (auto& p : model.parameters()) {
    if (p.requires_grad() || !p.is_floating_point() || p.scalar_type() == compute) continue;
    stored_.emplace_back(p, p.detach());  // the detached tensor keeps the stored data alive
    p.set_data(p.to(compute));
  }
}

ComputeDtypeWeights::~ComputeDtypeWeights() {
  torch::NoGradGuard ng;
  for (auto& [p, data] : stored_) p.set_data(data);
}

std::vector<NamedWeight> TransformerLM::weights() {
  auto w = body_weights();
  if (lm_head_.defined()) w.push_back({"lm_head.weight", lm_head_});
  if (score_.defined()) w.push_back({"score.weight", score_});
  return w;
}

void TransformerLM::init_heads(const std::string& score_init) {
  const int64_t C = config_.hidden_size;
  if (has_lm_head() && !config_.tie_word_embeddings && !lm_head_.defined())
    lm_head_ = register_parameter("lm_head", torch::empty({config_.vocab_size, C}));
  if (has_score_head()) {
    if (!score_.defined()) score_ = register_parameter("score", torch::empty({config_.num_labels, C}));
    torch::NoGradGuard ng;
    if (score_init == "zeros") score_.zero_();
    else score_.normal_(0.0, 0.02);
  }
}

torch::Tensor default_position_ids(const torch::Tensor& attention_mask) {
  return (attention_mask.to(torch::kInt64).cumsum(-1) - 1).clamp_min(0);
}

torch::Tensor last_token_index(const torch::Tensor& attention_mask) {
  auto pos = torch::arange(attention_mask.size(1), attention_mask.options().dtype(torch::kInt64));
  return (attention_mask.to(torch::kInt64) * pos).argmax(-1);
}

torch::Tensor TransformerLM::forward_logits(const torch::Tensor& input_ids, const torch::Tensor& attention_mask,
                                            torch::Tensor position_ids) {
  if (!position_ids.defined()) position_ids = default_position_ids(attention_mask);
  return lm_logits(body(input_ids, attention_mask, position_ids, nullptr));
}

torch::Tensor TransformerLM::forward_scores(const torch::Tensor& input_ids, const torch::Tensor& attention_mask,
                                            torch::Tensor position_ids) {
  if (!position_ids.defined()) position_ids = default_position_ids(attention_mask);
  auto hidden = body(input_ids, attention_mask, position_ids, nullptr);  // (B, T, C)
  auto idx = last_token_index(attention_mask);                           // (B,)
  auto last = hidden.index({torch::arange(hidden.size(0), idx.options()), idx});  // (B, C)
  return score(last);                                                     // (B, L)
}

namespace {

std::shared_ptr<TransformerLM> create_uninitialised(const ModelConfig& config) {
  if (config.family == "gpt2") return create_gpt2(config);
  if (config.family == "llama" || config.family == "qwen2" || config.family == "qwen3") return create_llama(config);
  fail("unknown model family \"", config.family, "\" (supported: gpt2, llama, qwen2, qwen3)");
}

bool is_norm_or_bias(const std::string& name) {
  auto ends = [&](const std::string& s) {
    return name.size() >= s.size() && name.compare(name.size() - s.size(), s.size(), s) == 0;
  };
  return ends(".bias") || name.find("norm") != std::string::npos || name.find(".ln_") != std::string::npos;
}

torch::ScalarType dtype_from_name(const std::string& name) {
  if (name == "float32") return torch::kFloat32;
  if (name == "bfloat16") return torch::kBFloat16;
  if (name == "float16") return torch::kFloat16;
  if (name == "float64") return torch::kFloat64;
  fail("unsupported dtype \"", name, "\" (supported: float32, bfloat16, float16, float64)");
}

// Tensors some checkpoints carry that are buffers, not weights.
bool ignorable_tensor(const std::string& name) {
  auto ends = [&](const std::string& s) {
    return name.size() >= s.size() && name.compare(name.size() - s.size(), s.size(), s) == 0;
  };
  return ends(".attn.bias") || ends(".attn.masked_bias") || ends("rotary_emb.inv_freq");
}

}  // namespace

std::shared_ptr<TransformerLM> create_model(const ModelConfig& config, uint64_t seed) {
  auto model = create_uninitialised(config);
  auto gen = at::detail::createCPUGenerator(seed);
  torch::NoGradGuard ng;
  for (auto& w : model->weights()) {
    if (is_norm_or_bias(w.name)) {
      if (w.name.size() > 5 && w.name.compare(w.name.size() - 5, 5, ".bias") == 0) w.tensor.zero_();
      else w.tensor.fill_(1.0);
    } else {
      w.tensor.normal_(0.0, 0.02, gen);
    }
  }
  return model;
}

namespace {
std::shared_ptr<TransformerLM> load_model_once(const std::string& dir, const LoadOptions& options) {
  ModelConfig cfg = load_model_config(dir);
  bool new_score_head = false, drop_lm_head = false;
  if (options.head == "score" && !cfg.is_classifier) {
    cfg.is_classifier = true;
    cfg.num_labels = options.num_labels;
    cfg.architecture = classifier_architecture(cfg.family);
    new_score_head = true;
    drop_lm_head = true;
  } else if (options.head == "lm" && cfg.is_classifier) {
    RLHF_CHECK(cfg.tie_word_embeddings, dir, ": ", cfg.architecture,
               " is a classifier with an untied head; it cannot be loaded as a causal LM");
    cfg.is_classifier = false;
    cfg.architecture = causal_lm_architecture(cfg.family);
  } else if (options.head != "auto" && options.head != "lm" && options.head != "score") {
    fail("load_model: head must be auto, lm or score, not \"", options.head, "\"");
  }
  auto model = create_uninitialised(cfg);

  std::map<std::string, std::string> source;
  auto tensors = io::load_checkpoint_tensors(dir, &source);
  std::set<std::string> used;
  {
    torch::NoGradGuard ng;
    for (auto& w : model->weights()) {
      if (w.name == "score.weight" && (new_score_head || !tensors.count(w.name))) {
        RLHF_CHECK(new_score_head, dir, ": tensor \"score.weight\" is missing (expected shape [",
                   cfg.num_labels, ", ", cfg.hidden_size, "])");
        if (options.score_init == "zeros") w.tensor.zero_();
        else {
          auto gen = at::detail::createCPUGenerator(0);
          w.tensor.normal_(0.0, 0.02, gen);
        }
        continue;
      }
      auto it = tensors.find(w.name);
      RLHF_CHECK(it != tensors.end(), dir, ": tensor \"", w.name, "\" is missing (expected shape ", w.tensor.sizes(),
                 "; hint: does config.json match the weights?)");
      const auto& src = it->second;
      RLHF_CHECK(src.sizes() == w.tensor.sizes(), source[w.name], ": tensor \"", w.name, "\" has shape ", src.sizes(),
                 " but config.json implies ", w.tensor.sizes());
      if (src.scalar_type() == w.tensor.scalar_type() && options.device.is_cpu() && src.is_contiguous()) {
        // Zero-copy: the parameter views the (copy-on-write) mapping; pages are read when first touched, so
        // loading costs what reading the file costs.
        w.tensor.set_data(src);
      } else {
        w.tensor.copy_(src);
      }
      model->saved_dtypes[w.name] = src.scalar_type();
      used.insert(w.name);
    }
  }
  std::vector<std::string> unused;
  for (const auto& [name, t] : tensors) {
    if (used.count(name) || ignorable_tensor(name)) continue;
    if (name == "lm_head.weight" && (drop_lm_head || cfg.tie_word_embeddings)) continue;
    unused.push_back(name);
  }
  if (!unused.empty()) {
    std::string list;
    for (size_t i = 0; i < unused.size() && i < 5; ++i) list += (i ? ", " : "") + unused[i];
    fail(dir, ": ", unused.size(), " tensor(s) not used by ", cfg.architecture, ": ", list,
         " (in ", source[unused[0]], "; hint: does config.json match the weights?)");
  }
  model->to(options.device, options.dtype);
  model->eval();
  return model;
}

// The folder at `dir` as it is now: device, inode and change time. A folder that a writer swapped in is another
// inode; the time guards against the number of a removed folder's inode being reused.
std::tuple<uint64_t, uint64_t, int64_t, int64_t> folder_identity(const std::string& dir) {
  struct stat st {};
  if (::stat(dir.c_str(), &st) != 0) return {0, 0, 0, 0};
  return {st.st_dev, st.st_ino, st.st_ctim.tv_sec, st.st_ctim.tv_nsec};
}
}  // namespace

// Another process may swap a new folder in while this one reads (save_model, save_checkpoint: common/atomic_dir.h);
// config.json, the shards and the index would then come from two folders. So a read during which the folder was
// replaced is done again: the model returned is wholly the old folder's or wholly the new one's.
std::shared_ptr<TransformerLM> load_model(const std::string& dir, const LoadOptions& options) {
  constexpr int kAttempts = 5;
  for (int attempt = 1;; ++attempt) {
    const auto before = folder_identity(dir);
    try {
      auto model = load_model_once(dir, options);
      if (folder_identity(dir) == before) return model;
    } catch (const std::exception&) {
      if (folder_identity(dir) == before || attempt == kAttempts) throw;  // an error of the folder, not of a swap
    }
    RLHF_CHECK(attempt < kAttempts, dir, ": replaced by another process while being read, ", kAttempts,
               " times in a row (hint: wait until the command writing it is done)");
  }
}

std::string save_dtype_from_flag(const std::string& flag) {
  if (flag.empty()) return "";
  if (flag == "fp32" || flag == "float32") return "float32";
  if (flag == "bf16" || flag == "bfloat16") return "bfloat16";
  fail("--save-dtype: \"", flag, "\" is not one of fp32, bf16 (or leave it out to keep the model's dtypes)");
}

uint64_t parse_shard_size(const std::string& text) {
  if (text.empty()) return 0;
  size_t digits = 0;
  while (digits < text.size() && (std::isdigit(static_cast<unsigned char>(text[digits])) || text[digits] == '.'))
    ++digits;
  const std::string number = text.substr(0, digits), unit = text.substr(digits);
  static const std::pair<const char*, double> kUnits[] = {{"", 1},          {"B", 1},           {"KB", 1e3},
                                                          {"MB", 1e6},      {"GB", 1e9},        {"TB", 1e12},
                                                          {"KiB", 1024.0},  {"MiB", 1048576.0}, {"GiB", 1073741824.0},
                                                          {"TiB", 1099511627776.0}};
  double scale = -1;
  for (const auto& [name, s] : kUnits)
    if (unit == name) scale = s;
  RLHF_CHECK(!number.empty() && number != "." && scale > 0, "--max-shard-size: \"", text,
             "\" is not a size (hint: 5GB, 500MB, 2GiB or a number of bytes; 0: one file)");
  return static_cast<uint64_t>(std::stod(number) * scale);
}

namespace {
const char* kTokenizerFiles[] = {"tokenizer.json",  "tokenizer_config.json", "special_tokens_map.json",
                                 "generation_config.json", "vocab.json", "merges.txt", "tokenizer.model",
                                 "chat_template.jinja"};
bool ends_with(const std::string& s, const std::string& tail) {
  return s.size() >= tail.size() && s.compare(s.size() - tail.size(), tail.size(), tail) == 0;
}
}  // namespace

bool is_model_file(const std::string& name) {
  if (name == "config.json" || name == "adapter_config.json") return true;
  if (ends_with(name, ".safetensors") || ends_with(name, ".safetensors.index.json")) return true;
  for (const char* f : kTokenizerFiles)
    if (name == f) return true;
  return false;
}

void replace_model_dir(const std::string& tmp, const std::string& target) {
  const fs::path dest(target);
  replace_dir(tmp, target, [&](const std::string& old) {
    for (const auto& e : fs::directory_iterator(old)) {
      const auto name = e.path().filename();
      if (!is_model_file(name.string()) && !fs::exists(dest / name)) fs::rename(e.path(), dest / name);
    }
  });
}

void copy_tokenizer_files(const std::string& source_dir, const std::string& target_dir, const std::string& tmp_dir) {
  if (source_dir.empty()) return;
  const fs::path target = fs::absolute(target_dir), tmp(tmp_dir);
  for (const char* f : kTokenizerFiles) {
    const fs::path src = fs::path(source_dir) / f;
    if (fs::exists(src) && fs::absolute(src) != target / f) fs::copy_file(src, tmp / f);
    else if (fs::exists(target / f) && fs::absolute(src) == target / f) fs::copy_file(target / f, tmp / f);
  }
}

void save_model(TransformerLM& model, const std::string& dir, const SaveOptions& options) {
  const ModelConfig& cfg = model.config();
  const std::string dtype_name = options.dtype.empty() ? cfg.dtype : options.dtype;
  const torch::ScalarType default_dtype = dtype_from_name(dtype_name);
  fs::path target = fs::absolute(dir);
  fs::create_directories(target.parent_path());
  const fs::path tmp = target.string() + ".tmp-" + std::to_string(::getpid());
  fs::remove_all(tmp);
  fs::create_directories(tmp);
  try {
    std::map<std::string, torch::Tensor> tensors;
    for (auto& w : model.weights()) {
      auto it = model.saved_dtypes.find(w.name);
      const auto dt = options.dtype.empty() && it != model.saved_dtypes.end() ? it->second : default_dtype;
      tensors[w.name] = w.tensor.detach().to(torch::kCPU).to(dt).contiguous();
    }
    io::save_checkpoint_tensors(tmp.string(), tensors, options.max_shard_bytes);

    auto j = cfg.to_json();
    j["dtype"] = dtype_name;
    if (j.contains("torch_dtype")) j["torch_dtype"] = dtype_name;
    {
      std::ofstream out(tmp / "config.json");
      out << j.dump(2) << "\n";
      out.flush();  // a full disk shows here, not in the destructor
      RLHF_CHECK(out, (tmp / "config.json").string(), ": write failed (disk full?)");
    }
    copy_tokenizer_files(options.source_dir, target.string(), tmp.string());
  } catch (...) {
    remove_temp_dir(tmp.string());  // a failed write (a full disk) leaves no half folder behind
    throw;
  }
  // Swap in the finished folder: readers and a crash see the old folder or the new one (common/atomic_dir.h).
  replace_dir(tmp.string(), target.string());
}

}  // namespace rlhf
