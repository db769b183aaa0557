// rlhf dpo --model DIR --data FILE --out DIR [--beta B] [--loss sigmoid|ipo] [training flags]
// Direct preference optimisation against the frozen starting model (its log-probs computed once up front; with
// --lora-r, the policy with its adapters off).
#include "common/runtime.h"
#include "rlhf/dpo.h"
#include "train/format.h"
#include "train_flags.h"

namespace {

struct DpoOptions {
  rlhf::cli::TrainFlags train;
  double beta = 0.1;             // β (TRL default 0.1)
  std::string loss = "sigmoid";  // sigmoid | ipo
};

int run_dpo(DpoOptions o) {
  o.train.validate();
  auto device = rlhf::resolve_device(rlhf::cli::runtime_flags().device);
  torch::manual_seed(o.train.seed);
  auto config = o.train.to_json();
  config["command"] = "dpo";
  config["beta"] = o.beta;
  config["loss"] = o.loss;
  auto world = rlhf::cli::join_world(o.train.dist, device, config, {o.train.data, o.train.eval_data});
  if (world->is_main()) rlhf::cli::print_config("dpo", config);

  auto fmt = rlhf::Formatter::from_dir(o.train.model, o.train.chat ? 1 : -1);
  rlhf::DataReport rep;
  auto groups = rlhf::load_preference_data(o.train.data, fmt, o.train.data_options(), &rep);
  std::cerr << o.train.data << ": " << rep.summary() << "\n";
  rlhf::DataReport eval_rep;
  const rlhf::DataReport* eval_rep_ptr = o.train.eval_data.empty() ? nullptr : &eval_rep;
  auto [train_groups, eval_groups] = rlhf::cli::split_train_eval(std::move(groups), o.train, [&](const std::string& path) {
    auto e = rlhf::load_preference_data(path, fmt, o.train.data_options(), &eval_rep);
    std::cerr << path << ": " << eval_rep.summary() << "\n";
    return e;
  });
  auto train_set = rlhf::dpo::pairs_from_groups(train_groups);
  auto eval_set = rlhf::dpo::pairs_from_groups(eval_groups);
  std::cerr << "dpo: " << train_set.size() << " train, " << eval_set.size() << " eval pairs\n";
  if (o.train.dry_run) {
    o.train.print_dry_run(rep, eval_rep_ptr, train_set.size(), eval_set.size());
    return 0;
  }

  rlhf::dpo::DpoConfig cfg;
  cfg.beta = o.beta;
  cfg.loss = o.loss;
  cfg.batch_size = o.train.batch_size;
  cfg.pad_id = fmt.pad_id();
  cfg.device = device;
  cfg.validate();

  rlhf::LoadOptions lo;
  lo.head = "lm";
  lo.device = device;
  // The reference is always the starting model (also when resuming); its log-probs are computed once. With LoRA it
  // is the policy itself with its adapters off (the base bit for bit, lora/adapters.h): no second copy is loaded.
  auto reference_logprobs = [&](rlhf::TransformerLM& ref) {
    rlhf::dpo::compute_reference_logprobs(ref, train_set, cfg.batch_size, cfg.pad_id, device);
    rlhf::dpo::compute_reference_logprobs(ref, eval_set, cfg.batch_size, cfg.pad_id, device);
  };
  if (!o.train.lora.enabled()) {
    auto ref = rlhf::load_model(o.train.model, lo);
    if (o.train.memory.frozen_bf16()) {
      for (auto& p : ref->parameters()) p.set_requires_grad(false);
      ref->store_frozen_weights(torch::kBFloat16);
    }
    reference_logprobs(*ref);
  }
  auto [policy, lora] = rlhf::cli::load_train_model(o.train, lo);
  if (lora) {
    rlhf::lora::AdaptersOff off(*policy);
    reference_logprobs(*policy);
  }
  auto loop = o.train.loop("dpo", config, fmt.options().to_json());
  loop.world = world.get();
  loop.lora = lora.get();
  auto res = rlhf::dpo::train_dpo(*policy, train_set, eval_set, cfg, loop);
  world->finish();
  if (!world->is_main()) return 0;  // rank 0 reports
  std::cout << nlohmann::json{{"steps", res.steps},
                              {"train", rlhf::cli::metrics_json(res.last_train)},
                              {"eval", rlhf::cli::metrics_json(res.last_eval)},
                              {"seconds", res.seconds},
                              {"memory", rlhf::cli::memory_json()}}
                   .dump()
            << "\n";
  return 0;
}

rlhf::cli::Command reg{"dpo", "Direct preference optimisation (DPO / IPO) of a causal LM", [](CLI::App& app) {
                         auto o = std::make_shared<DpoOptions>();
                         o->train.add(app);
                         app.add_option("--beta", o->beta, "beta: strength of the anchor to the reference")
                             ->capture_default_str();
                         app.add_option("--loss", o->loss, "sigmoid | ipo")->capture_default_str();
                         return [o] { return run_dpo(*o); };
                       }};

}  // namespace
