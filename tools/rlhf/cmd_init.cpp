// rlhf init --config CONFIG.json --out DIR [--tokenizer DIR] [--seed S]
//   A randomly initialised model (transformers' init: normal(0, 0.02), norms 1, biases 0) from a config.json of a
//   supported architecture, saved as a Hugging Face folder: the start of pretraining from scratch.
// rlhf inspect --model DIR
//   Loads a folder and prints what it is: architecture, shapes, parameters, dtypes, and the load time.
#include <chrono>
#include <fstream>
#include <iostream>

#include "command.h"
#include "common/error.h"
#include "common/runtime.h"
#include "model/model.h"

namespace {

struct InitFlags {
  std::string config, out, tokenizer;
  uint64_t seed = 0;
};

int run_init(const InitFlags& f) {
  std::ifstream in(f.config);
  RLHF_CHECK(in, f.config, ": cannot open");
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(in);
  } catch (const nlohmann::json::exception& e) {
    rlhf::fail(f.config, ": not valid JSON (", e.what(), ")");
  }
  auto model = rlhf::create_model(rlhf::parse_model_config(j, f.config), f.seed);
  rlhf::SaveOptions so;
  so.source_dir = f.tokenizer;
  rlhf::save_model(*model, f.out, so);
  std::cout << model->config().architecture << " with " << model->parameter_count() << " parameters saved to " << f.out << "\n";
  return 0;
}

int run_inspect(const std::string& dir) {
  rlhf::LoadOptions lo;
  lo.device = rlhf::resolve_device(rlhf::cli::runtime_flags().device);
  const auto t0 = std::chrono::steady_clock::now();
  auto model = rlhf::load_model(dir, lo);
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  // Parameters view the file's mapping and are read when first touched: read every byte once (a checksum) to
  // time loading plus reading, the figure to compare with `cat FILE`.
  double checksum = 0;
  {
    torch::NoGradGuard ng;
    for (const auto& p : model->parameters()) checksum += p.sum().item<double>();
  }
  const double read_secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const auto& c = model->config();
  const int64_t n = model->parameter_count();
  nlohmann::json info = {{"architecture", c.architecture}, {"family", c.family},     {"parameters", n},
                         {"layers", c.num_layers},         {"hidden", c.hidden_size}, {"heads", c.num_heads},
                         {"kv_heads", c.num_kv_heads},     {"head_dim", c.head_dim},  {"vocab", c.vocab_size},
                         {"dtype", c.dtype},               {"tied", c.tie_word_embeddings},
                         {"load_s", secs},                {"load_and_read_s", read_secs},
                         {"checksum", checksum}};
  std::cout << info.dump() << "\n";
  return 0;
}

rlhf::cli::Command init_reg{"init", "Create a randomly initialised model from a config.json", [](CLI::App& app) {
  auto f = std::make_shared<InitFlags>();
  app.add_option("--config", f->config, "config.json of a supported architecture")->required();
  app.add_option("--out", f->out, "output folder")->required();
  app.add_option("--tokenizer", f->tokenizer, "folder whose tokenizer files are copied into the output");
  app.add_option("--seed", f->seed, "initialisation seed")->capture_default_str();
  return [f] { return run_init(*f); };
}};

rlhf::cli::Command inspect_reg{"inspect", "Load a model folder and print its shape, size and load time",
                               [](CLI::App& app) {
                                 auto dir = std::make_shared<std::string>();
                                 app.add_option("--model", *dir, "Hugging Face model folder")->required();
                                 return [dir] { return run_inspect(*dir); };
                               }};

}  // namespace
