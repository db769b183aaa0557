// rlhf reward --model DIR --data FILE --out DIR [training flags] [--center-coef C] [--normalize none|mean|mean-std]
// Trains a reward model (*ForSequenceClassification, num_labels = 1) on preference pairs or rankings.
#include <filesystem>

#include "common/runtime.h"
#include "rlhf/reward.h"
#include "train/checkpoint.h"
#include "train/format.h"
#include "train_flags.h"

namespace {

struct RewardOptions {
  rlhf::cli::TrainFlags train;
  double center_coef = 0.0;        // c·mean((r_w + r_l)²) (TRL: 0.01 when used)
  std::string normalize = "none";  // none | mean | mean-std: after training, on --normalize-data
  std::string normalize_data;      // {"prompt","response"} JSONL; default: every response of the training data

  void validate() const {
    train.validate();
    RLHF_CHECK(center_coef >= 0, "--center-coef must be >= 0, got ", center_coef);
    RLHF_CHECK(normalize == "none" || normalize == "mean" || normalize == "mean-std", "--normalize: \"", normalize,
               "\" is not one of none, mean, mean-std");
  }
};

int run_reward(RewardOptions o) {
  o.validate();
  auto device = rlhf::resolve_device(rlhf::cli::runtime_flags().device);
  torch::manual_seed(o.train.seed);
  auto config = o.train.to_json();
  config["command"] = "reward";
  config["center_coef"] = o.center_coef;
  config["normalize"] = o.normalize;
  config["normalize_data"] = o.normalize_data;
  auto world = rlhf::cli::join_world(o.train.dist, device, config, {o.train.data, o.train.eval_data});
  if (world->is_main()) rlhf::cli::print_config("reward", config);

  auto fmt = rlhf::Formatter::from_dir(o.train.model, o.train.chat ? 1 : -1);
  rlhf::DataReport rep;
  auto data = rlhf::load_preference_data(o.train.data, fmt, o.train.data_options(), &rep);
  std::cerr << o.train.data << ": " << rep.summary() << "\n";
  rlhf::DataReport eval_rep;
  const rlhf::DataReport* eval_rep_ptr = o.train.eval_data.empty() ? nullptr : &eval_rep;
  auto [train_set, eval_set] = rlhf::cli::split_train_eval(std::move(data), o.train, [&](const std::string& path) {
    auto e = rlhf::load_preference_data(path, fmt, o.train.data_options(), &eval_rep);
    std::cerr << path << ": " << eval_rep.summary() << "\n";
    return e;
  });
  std::cerr << "reward: " << train_set.size() << " train, " << eval_set.size() << " eval prompts\n";
  if (o.train.dry_run) {
    o.train.print_dry_run(rep, eval_rep_ptr, train_set.size(), eval_set.size());
    return 0;
  }

  rlhf::LoadOptions lo;
  lo.head = "score";
  lo.num_labels = 1;
  lo.score_init = "normal";
  lo.device = device;
  auto [model, lora] = rlhf::cli::load_train_model(o.train, lo);
  RLHF_CHECK(o.normalize == "none" || !lora, "--normalize ", o.normalize,
             " with --lora-r: the offset goes into a base weight (the final norm's bias), which a PEFT adapter does "
             "not carry (hint: leave --normalize out, or train without --lora-r)");
  // Checked before training, not after: the offset needs a bias after the final norm (see rlhf/reward.h).
  RLHF_CHECK(o.normalize == "none" || model->config().family == "gpt2", "--normalize ", o.normalize, ": ",
             model->config().family, " models have no bias after the final norm to hold the offset (GPT-2 only)");
  rlhf::reward::RewardConfig cfg;
  cfg.batch_size = o.train.batch_size;
  cfg.center_coef = o.center_coef;
  cfg.pad_id = fmt.pad_id();
  cfg.device = device;
  auto loop = o.train.loop("reward", config, fmt.options().to_json());
  loop.world = world.get();
  loop.lora = lora.get();
  auto res = rlhf::reward::train_reward(*model, train_set, eval_set, cfg, loop);
  nlohmann::json out{{"steps", res.steps},
                     {"train", rlhf::cli::metrics_json(res.last_train)},
                     {"eval", rlhf::cli::metrics_json(res.last_eval)},
                     {"seconds", res.seconds}};
  if (o.normalize != "none") {
    std::vector<rlhf::train::TokenSeq> ref;
    if (!o.normalize_data.empty()) ref = rlhf::load_scored_data(o.normalize_data, fmt, o.train.data_options());
    else
      for (const auto& g : train_set)
        for (const auto& s : g.responses) ref.push_back(s);
    auto nr = rlhf::reward::normalize_scores(*model, ref, o.normalize == "mean-std", o.train.batch_size, fmt.pad_id(),
                                             device);
    std::cerr << "normalized on " << ref.size() << " responses: mean " << nr.mean_before << " -> " << nr.mean_after
              << ", std " << nr.std_before << " -> " << nr.std_after << "\n";
    out["normalize"] = {{"mean_before", nr.mean_before}, {"std_before", nr.std_before},
                        {"mean_after", nr.mean_after},   {"std_after", nr.std_after}};
    // Rewrite the final model with the normalised weights (optimizer state is kept from training).
    // With the final save's dtype and shard size: the weight files (one model.safetensors, or the shards and
    // their index) replace the old ones, whose shard count may differ.
    namespace fs = std::filesystem;
    world->finish();  // every rank normalised its copy the same way; rank 0 writes
    if (!world->is_main()) return 0;
    const fs::path out_dir = o.train.out, tmp = out_dir / ".normalized";
    rlhf::save_model(*model, tmp.string(), rlhf::SaveOptions{o.train.model, loop.max_shard_bytes, loop.save_dtype});
    auto is_weights = [](const fs::path& p) { return p.filename().string().rfind("model", 0) == 0; };
    for (const auto& e : fs::directory_iterator(out_dir))
      if (e.is_regular_file() && is_weights(e.path())) fs::remove(e.path());
    for (const auto& e : fs::directory_iterator(tmp))
      if (is_weights(e.path()) || e.path().filename() == "config.json") fs::rename(e.path(), out_dir / e.path().filename());
    fs::remove_all(tmp);
  }
  world->finish();
  if (!world->is_main()) return 0;  // rank 0 reports
  std::cout << out.dump() << "\n";
  return 0;
}

rlhf::cli::Command reg{"reward", "Train a reward model on preference pairs or K-wise rankings", [](CLI::App& app) {
                         auto o = std::make_shared<RewardOptions>();
                         o->train.add(app);
                         app.add_option("--center-coef", o->center_coef, "c of c·mean((r_w + r_l)^2)")
                             ->capture_default_str();
                         app.add_option("--normalize", o->normalize,
                                        "none | mean | mean-std: normalise scores on a reference set after training")
                             ->capture_default_str();
                         app.add_option("--normalize-data", o->normalize_data,
                                        "reference set ({\"prompt\",\"response\"} JSONL); default: training responses");
                         return [o] { return run_reward(*o); };
                       }};

}  // namespace
