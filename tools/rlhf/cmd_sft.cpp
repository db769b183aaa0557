// rlhf sft --model DIR --data FILE --out DIR [training flags] [--packing]
// Supervised fine-tuning on prompt/completion, messages or text lines (rlhf/examples.h).
#include "common/runtime.h"
#include "rlhf/sft.h"
#include "train/format.h"
#include "train_flags.h"

namespace {

struct SftOptions {
  rlhf::cli::TrainFlags train;
  bool packing = false;  // pack several examples into rows of --max-len tokens
};

int run_sft(SftOptions o) {
  o.train.validate();
  auto device = rlhf::resolve_device(rlhf::cli::runtime_flags().device);
  torch::manual_seed(o.train.seed);
  auto config = o.train.to_json();
  config["command"] = "sft";
  config["packing"] = o.packing;
  auto world = rlhf::cli::join_world(o.train.dist, device, config, {o.train.data, o.train.eval_data});
  if (world->is_main()) rlhf::cli::print_config("sft", config);

  auto fmt = rlhf::Formatter::from_dir(o.train.model, o.train.chat ? 1 : -1);
  rlhf::DataReport rep;
  auto data = rlhf::load_sft_data(o.train.data, fmt, o.train.data_options(), &rep);
  std::cerr << o.train.data << ": " << rep.summary() << "\n";
  rlhf::DataReport eval_rep;
  const rlhf::DataReport* eval_rep_ptr = o.train.eval_data.empty() ? nullptr : &eval_rep;
  auto [train_set, eval_set] = rlhf::cli::split_train_eval(std::move(data), o.train, [&](const std::string& path) {
    auto e = rlhf::load_sft_data(path, fmt, o.train.data_options(), &eval_rep);
    std::cerr << path << ": " << eval_rep.summary() << "\n";
    return e;
  });
  std::cerr << "sft: " << train_set.size() << " train, " << eval_set.size() << " eval examples\n";
  if (o.train.dry_run) {
    o.train.print_dry_run(rep, eval_rep_ptr, train_set.size(), eval_set.size());
    return 0;
  }

  rlhf::LoadOptions lo;
  lo.head = "lm";
  lo.device = device;
  auto [model, lora] = rlhf::cli::load_train_model(o.train, lo);
  rlhf::sft::SftConfig cfg;
  cfg.batch_size = o.train.batch_size;
  cfg.packing = o.packing;
  cfg.max_len = o.train.max_len;
  cfg.pad_id = fmt.pad_id();
  cfg.device = device;
  auto loop = o.train.loop("sft", config, fmt.options().to_json());
  loop.world = world.get();
  loop.lora = lora.get();
  auto res = rlhf::sft::train_sft(*model, train_set, eval_set, cfg, loop);
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

rlhf::cli::Command reg{"sft", "Supervised fine-tuning of a causal LM on demonstrations", [](CLI::App& app) {
                         auto o = std::make_shared<SftOptions>();
                         o->train.add(app);
                         app.add_flag("--packing", o->packing, "pack examples into rows of --max-len tokens");
                         return [o] { return run_sft(*o); };
                       }};

}  // namespace
