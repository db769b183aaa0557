#include "demo_eval.h"

#include <cmath>
#include <fstream>
#include <iomanip>
#include <iostream>

#include "common/error.h"
#include "command.h"
#include "common/runtime.h"
#include "model/model.h"
#include "train/format.h"

namespace rlhf::cli {
namespace {

std::vector<std::string> read_prompts(const std::string& path) {
  std::vector<std::string> out;
  std::ifstream in(path);
  RLHF_CHECK(in, path, ": cannot open (the demo's held-out prompts)");
  std::string line;
  for (int64_t n = 1; std::getline(in, line); ++n)
    if (!line.empty()) {
      try {
        out.push_back(nlohmann::json::parse(line).at("prompt").get<std::string>());
      } catch (const nlohmann::json::exception& e) {
        fail(path, ":", n, ": expected {\"prompt\": str} (", e.what(), ")");
      }
    }
  return out;
}

void print_table(const nlohmann::json& policies) {
  std::cout << "\n" << std::left << std::setw(11) << "policy" << std::right << std::setw(8) << "gold" << std::setw(14)
            << "reward_model" << std::setw(11) << "kl_to_sft" << std::setw(8) << "length" << std::setw(12)
            << "win_vs_sft" << "\n";
  for (const char* name : {"base", "sft", "best_of_n", "dpo", "ppo"}) {
    if (!policies.contains(name)) continue;
    const auto& p = policies[name];
    std::cout << std::left << std::setw(11) << name << std::right << std::fixed << std::setprecision(3)
              << std::setw(8) << p["gold"].get<double>() << std::setw(14) << p["reward_model"].get<double>()
              << std::setw(11) << p["kl_to_sft"].get<double>() << std::setw(8) << std::setprecision(1)
              << p["length"].get<double>() << std::setw(12) << std::setprecision(3)
              << p["win_rate_vs_sft"].get<double>() << "\n";
  }
}

}  // namespace

nlohmann::json evaluate_demo(const DemoEvalOptions& o) {
  LoadOptions lo;
  lo.device = resolve_device(runtime_flags().device);
  auto sft = load_model(o.reference, lo), rm = load_model(o.reward, lo);
  auto fmt = Formatter::from_dir(o.reference);
  const auto prompts = read_prompts(o.prompts);
  const uint64_t eval_seed = o.seed * 1000 + 7;
  auto sft_samples = eval::sample_responses(*sft, fmt, prompts, o.repeats, o.max_new_tokens, eval_seed);
  auto sft_stats = eval::policy_stats(*sft, *sft, *rm, prompts, sft_samples, o.gold, nullptr);
  nlohmann::json policies;
  for (const auto& [name, dir] : o.policies) {
    auto m = load_model(dir, lo);
    auto samples = eval::sample_responses(*m, fmt, prompts, o.repeats, o.max_new_tokens, eval_seed + 1);
    auto st = eval::policy_stats(*m, *sft, *rm, prompts, samples, o.gold, &sft_stats.golds);
    policies[name] = st.to_json();
    if (name == "ppo") {  // side-by-side samples for the report
      const std::string path = o.run + "/samples.jsonl";
      std::ofstream out(path);
      for (size_t j = 0; j < std::min<size_t>(12, samples.size()); ++j)
        out << nlohmann::json({{"prompt", prompts[samples[j].prompt_index]},
                               {"sft", sft_samples[j].text},
                               {"ppo", samples[j].text},
                               {"sft_gold", sft_stats.golds[j]},
                               {"ppo_gold", st.golds[j]}})
                   .dump()
            << "\n";
      RLHF_CHECK(out, path, ": write failed");
    }
  }
  policies["sft"] = sft_stats.to_json();
  policies["sft"]["win_rate_vs_sft"] = 0.5;
  auto bon = eval::best_of_n(*sft, *rm, fmt, prompts, o.repeats, o.best_of, o.max_new_tokens, eval_seed + 2);
  const double n = o.best_of;
  policies["best_of_n"] =
      eval::policy_stats(*sft, *sft, *rm, prompts, bon, o.gold, &sft_stats.golds, std::log(n) - (n - 1) / n)
          .to_json();
  policies["best_of_n"]["n"] = o.best_of;
  nlohmann::json ev = {{"policies", policies},
                       {"eval_prompts", prompts.size()},
                       {"samples_per_prompt", o.repeats},
                       {"seed", o.seed}};
  if (o.extra.is_object()) ev.update(o.extra);
  const std::string path = o.run + "/eval.json";
  {
    std::ofstream out(path);
    out << ev.dump(2) << "\n";
    RLHF_CHECK(out, path, ": write failed");
  }
  print_table(policies);
  return ev;
}

}  // namespace rlhf::cli
