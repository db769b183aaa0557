#include "train/checkpoint.h"

#include <ATen/CPUGeneratorImpl.h>
#include <torch/torch.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "common/atomic_dir.h"
#include "common/error.h"
#include "io/safetensors.h"
#include "model/model_files.h"

namespace fs = std::filesystem;
using nlohmann::json;

namespace rlhf::train {

namespace {
const char* kStateFile = "trainer_state.json";
const char* kRngFile = "rng_state.safetensors";

fs::path temp_sibling(const fs::path& dir, const char* tag) {
  auto parent = dir.has_parent_path() ? dir.parent_path() : fs::path(".");
  return parent / ("." + dir.filename().string() + "." + tag + "-" + std::to_string(::getpid()));
}
void write_checkpoint_files(const fs::path& tmp, const Checkpoint& ck);  // everything but the swap
}  // namespace

void write_json_atomic(const std::string& path, const json& content) {
  const std::string tmp = path + ".tmp-" + std::to_string(::getpid());
  {
    std::ofstream out(tmp);
    RLHF_CHECK(out, tmp, ": cannot open for writing (does the folder exist and is it writable?)");
    out << content.dump(2) << "\n";
    out.flush();
    RLHF_CHECK(out, tmp, ": write failed (disk full?)");
  }
  fs::rename(tmp, path);
}

bool is_checkpoint(const std::string& dir) { return fs::exists(fs::path(dir) / kStateFile); }

void save_checkpoint(const std::string& dir_str, const Checkpoint& ck) {
  const fs::path dir(dir_str);
  if (dir.has_parent_path()) fs::create_directories(dir.parent_path());
  const fs::path tmp = temp_sibling(dir, "tmp");
  fs::remove_all(tmp);
  try {
    write_checkpoint_files(tmp, ck);
  } catch (...) {
    remove_temp_dir(tmp.string());  // a failed write (a full disk) leaves no half checkpoint behind
    throw;
  }
  // Swap in (common/atomic_dir.h): a crash or a reader sees the old checkpoint or the new one, never neither. Then
  // the entries of the old DIR that are not the model's (metrics.jsonl, checkpoints/ when DIR is the run's output
  // folder) move over into the new one; the old one is removed. The old model's files stay behind: the shards and
  // index of a model saved sharded before would otherwise sit beside the new model.safetensors, and loaders read
  // the index first (the old weights).
  replace_model_dir(tmp.string(), dir.string());
}

namespace {
void write_checkpoint_files(const fs::path& tmp, const Checkpoint& ck) {
  // Models first: save_model writes its own folder (atomically), which becomes the checkpoint's base.
  bool base_written = false;
  for (const auto& m : ck.models) {
    RLHF_CHECK(m.model != nullptr, "save_checkpoint: model \"", m.subdir, "\" is null");
    if (m.subdir.empty()) {
      save_model(*m.model, tmp.string(), m.save);
      base_written = true;
    }
  }
  for (const auto& a : ck.adapters) {
    RLHF_CHECK(a.model != nullptr && a.adapters != nullptr, "save_checkpoint: adapter \"", a.subdir, "\" is null");
    if (a.subdir.empty()) {
      RLHF_CHECK(!base_written, "save_checkpoint: both a model and an adapter in the checkpoint folder itself");
      lora::save_peft_adapter(*a.model, *a.adapters, tmp.string(), a.save);
      base_written = true;
    }
  }
  if (!base_written) fs::create_directories(tmp);
  for (const auto& m : ck.models)
    if (!m.subdir.empty()) save_model(*m.model, (tmp / m.subdir).string(), m.save);
  for (const auto& a : ck.adapters)
    if (!a.subdir.empty()) lora::save_peft_adapter(*a.model, *a.adapters, (tmp / a.subdir).string(), a.save);
  for (const auto& o : ck.optimizers) {
    RLHF_CHECK(o.optimizer != nullptr, "save_checkpoint: optimizer \"", o.name, "\" is null");
    io::save_safetensors((tmp / (o.name + ".safetensors")).string(), o.optimizer->state_dict());
  }
  if (ck.save_rng) {
    auto state = at::detail::getDefaultCPUGenerator().get_state();
    io::save_safetensors((tmp / kRngFile).string(), {{"cpu", state}});
  }
  for (const auto& [name, content] : ck.json_files) write_json_atomic((tmp / name).string(), content);
  json st = {{"step", ck.state.step},
             {"epoch", ck.state.epoch},
             {"data_position", ck.state.data_position},
             {"state", ck.state.state}};
  write_json_atomic((tmp / kStateFile).string(), st);
}
}  // namespace

TrainState load_checkpoint(const std::string& dir_str, const std::vector<CheckpointOptimizer>& optimizers,
                           bool restore_rng) {
  const fs::path dir(dir_str);
  const fs::path state_path = dir / kStateFile;
  RLHF_CHECK(fs::exists(state_path), dir_str, ": not a checkpoint (no ", kStateFile,
             "); --resume takes a folder written by a training command (e.g. OUT/checkpoints/step-000100)");
  json j;
  {
    std::ifstream in(state_path);
    try {
      j = json::parse(in);
    } catch (const json::exception& e) {
      fail(state_path.string(), ": not valid JSON (", e.what(), ")");
    }
  }
  TrainState st;
  try {
    st.step = j.at("step").get<int64_t>();
    st.epoch = j.at("epoch").get<int64_t>();
    st.data_position = j.at("data_position").get<int64_t>();
    st.state = j.value("state", json::object());
  } catch (const json::exception& e) {
    fail(state_path.string(), ": missing or mistyped field (", e.what(), "); expected step, epoch, data_position");
  }
  for (const auto& o : optimizers) {
    const auto path = (dir / (o.name + ".safetensors")).string();
    RLHF_CHECK(fs::exists(path), path, ": missing (the checkpoint has no state for optimizer \"", o.name, "\")");
    o.optimizer->load_state_dict(io::load_safetensors(path), path);
  }
  if (restore_rng) {
    const auto path = (dir / kRngFile).string();
    RLHF_CHECK(fs::exists(path), path, ": missing (no RNG state in the checkpoint)");
    auto t = io::load_safetensors(path);
    RLHF_CHECK(t.count("cpu"), path, ": no tensor \"cpu\"");
    at::Generator gen = at::detail::getDefaultCPUGenerator();  // a handle to the global generator
    gen.set_state(t["cpu"].clone());
  }
  return st;
}

}  // namespace rlhf::train
