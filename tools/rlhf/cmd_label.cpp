// `rlhf label serve|add-annotator|export|stats|auto`: people (or a judge) ranking model outputs. Parses flags and
// calls src/label; see src/label/server.h for the HTTP API.
#include <iostream>
#include <memory>

#include "command.h"
#include "label/candidates.h"
#include "label/export.h"
#include "label/judge.h"
#include "label/model_calls.h"
#include "label/server.h"
#include "label/stats.h"
#include "label/store.h"

namespace {

using namespace rlhf::label;

struct ServeOptions {
  std::string db;                 // SQLite file, created if absent
  std::string candidates;         // JSONL {"prompt", "responses"} to import, or
  std::string model, prompts;     // a model folder and JSONL {"prompt"} to generate candidates for
  int k = 4;                      // candidates per prompt when generating
  rlhf::SamplingOptions sampling;  // temperature 1, top-k off, top-p 1, 64 new tokens
  bool chat = false;              // format prompts with the tokenizer's chat template
  std::string device = "cpu";
  std::string host = "127.0.0.1";  // loopback only unless told otherwise
  int port = 8080;                 // 0: any free port (printed)

  void validate() const {
    RLHF_CHECK(candidates.empty() || model.empty(),
               "label serve: give either --candidates FILE or --model DIR --prompts FILE, not both");
    RLHF_CHECK(model.empty() == prompts.empty(), "label serve: --model and --prompts go together");
    RLHF_CHECK(k >= 2, "label serve: --k must be at least 2, got ", k);
    RLHF_CHECK(port >= 0 && port <= 65535, "label serve: --port must be in 0..65535, got ", port);
  }
};

// Imports --candidates or generates K candidates per --prompts prompt with --model (skipping prompts already
// stored, so a restart does not regenerate). Shared by `label serve` and `label import`.
void import_items(Store& store, const ServeOptions& o) {
  if (!o.candidates.empty()) {
    auto items = read_candidates_jsonl(o.candidates);
    int64_t added = store.add_items(items);
    std::cout << "imported " << added << " new items from " << o.candidates << " (" << items.size() - added
              << " already in the database)" << std::endl;
  }
  if (!o.model.empty()) {
    std::vector<std::string> todo;  // prompts not in the database yet: a restart does not regenerate
    for (const auto& p : read_prompts_jsonl(o.prompts))
      if (!store.has_prompt(p)) todo.push_back(p);
    if (!todo.empty()) {
      std::cout << "generating " << o.k << " candidates for each of " << todo.size() << " prompts with " << o.model
                << std::endl;
      int64_t added = store.add_items(generate_candidates(o.model, todo, o.k, o.sampling, o.chat, o.device));
      std::cout << "stored " << added << " new items" << std::endl;
    }
  }
}

int run_import(const ServeOptions& o) {
  o.validate();
  RLHF_CHECK(!o.candidates.empty() || !o.model.empty(),
             "label import: give --candidates FILE, or --model DIR --prompts FILE");
  Store store(o.db);
  import_items(store, o);
  std::cout << o.db << ": " << store.item_count() << " items" << std::endl;
  return 0;
}

int run_serve(const ServeOptions& o) {
  o.validate();
  Store store(o.db);
  import_items(store, o);
  RLHF_CHECK(store.item_count() > 0, "label serve: ", o.db,
             " has no items (hint: add --candidates FILE or --model DIR --prompts FILE)");
  if (store.annotators().empty())
    std::cout << "no annotators yet: create one with `rlhf label add-annotator --db " << o.db << " NAME`" << std::endl;
  if (o.host != "127.0.0.1" && o.host != "localhost" && o.host != "::1")
    std::cout << "warning: serving on " << o.host << " over plain HTTP: tokens and rankings travel unencrypted "
              << "(put a TLS proxy in front, or keep --host 127.0.0.1)" << std::endl;
  Server server(store);
  int port = server.bind(o.host, o.port);
  // Tests and scripts read this line to find the port when --port 0.
  std::cout << "serving " << store.item_count() << " items at http://" << o.host << ":" << port << "/ (db "
            << o.db << ")" << std::endl;
  server.serve();
  return 0;
}

struct AutoCliOptions {
  std::string db;
  rlhf::reward::RewardOptions judge;  // --judge SPEC (repeatable; reward/options.h) and its options
  std::string annotator;  // default "auto:" + the judges joined by "+"
  double noise = 0;       // swap probability of adjacent groups (a simulated, imperfect person)
  uint64_t seed = 0;
  int64_t limit = -1;     // at most this many items; -1: all pending
  std::string device = "cpu";
};

int run_auto(const AutoCliOptions& o) {
  Store store(o.db, Store::Open::existing);
  auto rewards = std::make_shared<rlhf::reward::RewardSet>(o.judge, o.device);
  std::string judges;
  for (const auto& j : o.judge.specs) judges += (judges.empty() ? "" : "+") + j;
  AutoOptions opts;
  opts.annotator = o.annotator.empty() ? "auto:" + judges : o.annotator;
  opts.noise = o.noise;
  opts.seed = o.seed;
  opts.limit = o.limit;
  int64_t n = auto_rank(store, reward_set_scorer(rewards), opts);
  std::cout << "ranked " << n << " items as \"" << opts.annotator << "\" with " << judges << " (noise " << o.noise
            << ")" << std::endl;
  return 0;
}

rlhf::cli::Command reg{"label", "Collect rankings of model outputs: labelling server, export, stats", [](CLI::App& app) {
  app.require_subcommand(1);

  auto serve = std::make_shared<ServeOptions>();
  CLI::App* s = app.add_subcommand("serve", "Serve the labelling page and JSON API");
  s->add_option("--db", serve->db, "SQLite database (created if absent)")->required();
  s->add_option("--candidates", serve->candidates, "JSONL of {\"prompt\", \"responses\": [...]} to import");
  s->add_option("--model", serve->model, "Model folder to generate candidates with");
  s->add_option("--prompts", serve->prompts, "JSONL of {\"prompt\"} to generate candidates for");
  s->add_option("--k", serve->k, "Candidates per prompt")->capture_default_str();
  s->add_option("--temperature", serve->sampling.temperature, "Sampling temperature")->capture_default_str();
  s->add_option("--top-k", serve->sampling.top_k, "Top-k (0: off)")->capture_default_str();
  s->add_option("--top-p", serve->sampling.top_p, "Top-p (1: off)")->capture_default_str();
  s->add_option("--max-new-tokens", serve->sampling.max_new_tokens, "Tokens per candidate")->capture_default_str();
  s->add_option("--seed", serve->sampling.seed, "Sampling seed")->capture_default_str();
  s->add_flag("--chat", serve->chat, "Format prompts with the tokenizer's chat template");
  s->add_option("--device", serve->device, "Device for generation")->capture_default_str();
  s->add_option("--host", serve->host, "Address to bind")->capture_default_str();
  s->add_option("--port", serve->port, "Port (0: any free port)")->capture_default_str();

  auto annot_db = std::make_shared<std::string>();
  auto annot_name = std::make_shared<std::string>();
  // label import: the same candidate sources as serve, without serving (the demo uses it; so can scripts).
  auto imp = std::make_shared<ServeOptions>();
  CLI::App* im = app.add_subcommand("import", "Store candidates (imported, or generated with a model) without serving");
  im->add_option("--db", imp->db, "SQLite database (created if absent)")->required();
  im->add_option("--candidates", imp->candidates, "JSONL of {\"prompt\", \"responses\": [...]} to import");
  im->add_option("--model", imp->model, "Model folder to generate candidates with");
  im->add_option("--prompts", imp->prompts, "JSONL of {\"prompt\"} to generate candidates for");
  im->add_option("--k", imp->k, "Candidates per prompt")->capture_default_str();
  im->add_option("--temperature", imp->sampling.temperature, "Sampling temperature")->capture_default_str();
  im->add_option("--top-k", imp->sampling.top_k, "Top-k (0: off)")->capture_default_str();
  im->add_option("--top-p", imp->sampling.top_p, "Top-p (1: off)")->capture_default_str();
  im->add_option("--max-new-tokens", imp->sampling.max_new_tokens, "Tokens per candidate")->capture_default_str();
  im->add_option("--seed", imp->sampling.seed, "Sampling seed")->capture_default_str();
  im->add_flag("--chat", imp->chat, "Format prompts with the tokenizer's chat template");
  im->add_option("--device", imp->device, "Device for generation")->capture_default_str();

  CLI::App* a = app.add_subcommand("add-annotator", "Create an annotator and print their token");
  a->add_option("--db", *annot_db, "SQLite database")->required();
  a->add_option("name", *annot_name, "Annotator name")->required();

  auto export_db = std::make_shared<std::string>();
  auto export_out = std::make_shared<std::string>();
  auto export_format = std::make_shared<std::string>("rankings");
  CLI::App* e = app.add_subcommand("export", "Write the rankings as JSONL for `rlhf reward` / `rlhf dpo`");
  e->add_option("--db", *export_db, "SQLite database")->required();
  e->add_option("--out", *export_out, "Output JSONL")->required();
  e->add_option("--format", *export_format, "rankings | pairs")->capture_default_str();

  auto stats_db = std::make_shared<std::string>();
  auto stats_json = std::make_shared<bool>(false);
  CLI::App* st = app.add_subcommand("stats", "Progress per annotator and inter-annotator agreement");
  st->add_option("--db", *stats_db, "SQLite database")->required();
  st->add_flag("--json", *stats_json, "Print JSON instead of a table");

  auto au = std::make_shared<AutoCliOptions>();
  CLI::App* at = app.add_subcommand("auto", "Rank pending items with a reward model or a rule");
  at->add_option("--db", au->db, "SQLite database")->required();
  at->add_option("--judge", au->judge.specs,
                 "reward-model folder (or reward:DIR) | http://HOST:PORT/PATH | exec:COMMAND | rule:NAME; repeat to "
                 "combine")->required();
  at->add_option("--judge-weights", au->judge.weights, "one weight per --judge (default 1 each)")->delimiter(',');
  at->add_option("--reward-timeout", au->judge.timeout_s, "seconds per HTTP request / exec batch")->capture_default_str();
  at->add_option("--reward-retries", au->judge.retries, "HTTP retries after a failure")->capture_default_str();
  at->add_option("--annotator", au->annotator, "Store the rankings as this annotator (default auto:JUDGE)");
  at->add_option("--noise", au->noise, "Probability of swapping each adjacent pair")->capture_default_str();
  at->add_option("--seed", au->seed, "Seed of the noise")->capture_default_str();
  at->add_option("--limit", au->limit, "Rank at most this many items (-1: all)")->capture_default_str();
  at->add_option("--device", au->device, "Device for the reward model")->capture_default_str();

  return [=]() -> int {
    if (s->parsed()) return run_serve(*serve);
    if (im->parsed()) return run_import(*imp);
    if (a->parsed()) {
      Store store(*annot_db);
      std::cout << store.add_annotator(*annot_name) << std::endl;
      return 0;
    }
    if (e->parsed()) {
      Store store(*export_db, Store::Open::existing);
      size_t n = export_jsonl(store, parse_export_format(*export_format), *export_out);
      std::cout << "wrote " << n << " lines to " << *export_out << std::endl;
      return 0;
    }
    if (st->parsed()) {
      Store store(*stats_db, Store::Open::existing);
      LabelStats stats = compute_stats(store);
      std::cout << (*stats_json ? stats_to_json(stats).dump(2) + "\n" : stats_to_text(stats));
      return 0;
    }
    if (at->parsed()) return run_auto(*au);
    rlhf::fail("label: choose one of serve, import, add-annotator, export, stats, auto");
  };
}};

}  // namespace
