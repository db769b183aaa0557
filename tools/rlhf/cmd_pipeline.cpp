// rlhf pipeline --config FILE [--rerun]
//
// Runs the configured stages of RLHF on your own model and data, each as an ordinary `rlhf` command, from one
// config file in CLI11's format (TOML-like; one section per stage, keys are that command's long options):
//
//   [pipeline]                 out = "runs/mine"  (the run folder), device = "auto"
//   [pretrain]  -> rlhf sft    --out OUT/base
//   [sft]       -> rlhf sft    --out OUT/sft      --model defaults to OUT/base when [pretrain] ran
//   [reward]    -> rlhf reward --out OUT/reward   --model defaults to OUT/sft
//   [ppo]       -> rlhf ppo    --out OUT/ppo      --policy OUT/sft, --reward OUT/reward by default
//   [dpo]       -> rlhf dpo    --out OUT/dpo      --model OUT/sft by default
//   then        -> rlhf report OUT
// A stage whose output folder is complete (its config.json exists: folders are written atomically) is skipped,
// so a crashed pipeline restarts where it stopped. Unknown sections are an error naming them.
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>

#include "command.h"
#include "common/error.h"
#include "stage_runner.h"

namespace fs = std::filesystem;

namespace {

struct PipelineFlags {
  std::string config;
  bool rerun = false;
};

using Section = std::vector<std::pair<std::string, std::vector<std::string>>>;  // key -> values, in file order

std::map<std::string, Section> read_config(const std::string& path) {
  std::ifstream in(path);
  RLHF_CHECK(in, path, ": cannot open the pipeline config");
  CLI::ConfigTOML parser;
  std::vector<CLI::ConfigItem> items;
  try {
    items = parser.from_config(in);
  } catch (const std::exception& e) {
    rlhf::fail(path, ": cannot parse (", e.what(), ")");
  }
  std::map<std::string, Section> sections;
  for (const auto& it : items) {
    if (it.name == "--" || it.name == "++") continue;  // section markers
    const std::string section = it.parents.empty() ? "pipeline" : it.parents.front();
    RLHF_CHECK(it.parents.size() <= 1, path, ": nested section ", it.fullname(), " is not supported");
    sections[section].emplace_back(it.name, it.inputs);
  }
  static const char* kKnown[] = {"pipeline", "pretrain", "sft", "reward", "ppo", "dpo"};
  for (const auto& [name, _] : sections) {
    bool ok = false;
    for (const char* k : kKnown) ok |= name == k;
    RLHF_CHECK(ok, path, ": unknown section [", name, "] (known: pipeline, pretrain, sft, reward, ppo, dpo)");
  }
  return sections;
}

bool has_key(const Section& s, const std::string& key) {
  for (const auto& [k, v] : s)
    if (k == key) return true;
  return false;
}

std::string value_of(const Section& s, const std::string& key, const std::string& fallback) {
  for (const auto& [k, v] : s)
    if (k == key && !v.empty()) return v.front();
  return fallback;
}

// key = value -> --key value; key = true -> --key; key = false -> nothing; arrays -> repeated values.
std::vector<std::string> to_args(const Section& s) {
  std::vector<std::string> args;
  for (const auto& [k, values] : s) {
    if (values.size() == 1 && (values[0] == "true" || values[0] == "false")) {
      if (values[0] == "true") args.push_back("--" + k);
      continue;
    }
    args.push_back("--" + k);
    args.insert(args.end(), values.begin(), values.end());
  }
  return args;
}

int run_pipeline(const PipelineFlags& f) {
  auto sections = read_config(f.config);
  const Section& top = sections["pipeline"];
  const fs::path out = fs::absolute(value_of(top, "out", "runs/pipeline"));
  const std::string device = value_of(top, "device", rlhf::cli::runtime_flags().device);
  fs::create_directories(out);
  rlhf::cli::StageRunner runner(out.string(), f.rerun);
  auto O = [&](const std::string& rel) { return (out / rel).string(); };

  struct Plan {
    std::string section, command, out_dir;
    std::vector<std::pair<std::string, std::string>> defaults;  // flag -> default when the section lacks it
  };
  const bool pretrain = sections.count("pretrain") > 0;
  const std::vector<Plan> plans = {
      {"pretrain", "sft", O("base"), {}},
      {"sft", "sft", O("sft"), {{"model", pretrain ? O("base") : ""}}},
      {"reward", "reward", O("reward"), {{"model", O("sft")}}},
      {"ppo", "ppo", O("ppo"), {{"policy", O("sft")}, {"reward", O("reward")}}},
      {"dpo", "dpo", O("dpo"), {{"model", O("sft")}}},
  };
  std::vector<rlhf::cli::Stage> stages;
  for (const auto& p : plans) {
    if (!sections.count(p.section)) continue;
    Section s = sections[p.section];
    for (const auto& [flag, def] : p.defaults)
      if (!has_key(s, flag) && !def.empty()) s.emplace_back(flag, std::vector<std::string>{def});
    RLHF_CHECK(!has_key(s, "out"), f.config, ": [", p.section, "] sets out; the pipeline writes it to ", p.out_dir);
    std::vector<std::string> args = {p.command, "--out", p.out_dir};
    if (!has_key(s, "device")) args.insert(args.end(), {"--device", device});
    auto rest = to_args(s);
    args.insert(args.end(), rest.begin(), rest.end());
    // ppo writes its final policy to OUT/ppo/final (OUT/ppo keeps metrics and checkpoints).
    const std::string marker = p.section == "ppo" ? p.out_dir + "/final/config.json" : p.out_dir + "/config.json";
    stages.push_back({p.section, args, marker});
  }
  RLHF_CHECK(!stages.empty(), f.config, ": no stage configured (add a [sft], [reward], [ppo] or [dpo] section)");
  stages.push_back({"report", {"report", out.string()}, ""});
  int i = 1;
  for (const auto& s : stages) runner.run(s, i++, static_cast<int>(stages.size()));
  std::cout << "report: " << O("report.html") << "\n";
  return 0;
}

rlhf::cli::Command reg{"pipeline", "Run the configured RLHF stages on your model and data from one config file",
                       [](CLI::App& app) {
                         auto f = std::make_shared<PipelineFlags>();
                         app.add_option("--config", f->config, "pipeline config (see configs/)")->required();
                         app.add_flag("--rerun", f->rerun, "rerun stages whose outputs already exist");
                         return [f] { return run_pipeline(*f); };
                       }};

}  // namespace
