// rlhf score --model RM_DIR --data FILE --out FILE
// For each line {"prompt": str | messages, "response": str | messages} writes {"score": float}, one line per input
// line, formatted and tokenized exactly as `rlhf reward` did in training (the folder's rlhf_format.json).
#include <fstream>

#include "common/runtime.h"
#include "rlhf/reward.h"
#include "train/format.h"
#include "train_flags.h"

namespace {

struct ScoreOptions {
  std::string model, data, out;
  int64_t batch_size = 16;           // sequences per forward
  int64_t max_len = 0;               // 0: the model's max positions (or 4096); longer inputs per --overlong
  std::string overlong = "error";    // truncate | drop | error (drop writes {"score": null})
  bool skip_bad_lines = false;       // bad lines give {"score": null, "error": ...}
};

int run_score(const ScoreOptions& o) {
  RLHF_CHECK(o.batch_size >= 1, "--batch-size must be >= 1, got ", o.batch_size);
  RLHF_CHECK(o.overlong == "truncate" || o.overlong == "drop" || o.overlong == "error", "--overlong: \"",
             o.overlong, "\" is not one of truncate, drop, error");
  const auto device = rlhf::resolve_device(rlhf::cli::runtime_flags().device);
  rlhf::LoadOptions lo;
  lo.head = "auto";
  lo.device = device;
  auto model = rlhf::load_model(o.model, lo);
  RLHF_CHECK(model->has_score_head() && model->config().num_labels == 1, o.model,
             ": not a reward model (needs *ForSequenceClassification with num_labels = 1; train one with rlhf reward)");
  const int64_t max_len = o.max_len > 0 ? o.max_len
                                        : (model->config().max_position > 0 ? model->config().max_position : 4096);
  auto fmt = rlhf::Formatter::from_dir(o.model);

  // Read every line first: a per-line result (sequence or error), so output line i answers input line i.
  std::vector<rlhf::train::TokenSeq> seqs;
  std::vector<std::string> errors;  // "" = scored
  std::vector<int64_t> line_of;
  std::ifstream in(o.data);
  RLHF_CHECK(in, o.data, ": cannot open (expected JSONL with {\"prompt\", \"response\"} per line)");
  std::string line;
  int64_t lineno = 0;
  while (std::getline(in, line)) {
    ++lineno;
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    std::string err;
    rlhf::train::TokenSeq s;
    try {
      s = rlhf::encode_scored_line(nlohmann::json::parse(line), fmt);
      if (static_cast<int64_t>(s.ids.size()) > max_len) {
        RLHF_CHECK(o.overlong != "error", "sequence of ", s.ids.size(), " tokens exceeds --max-len ", max_len,
                   " (--overlong truncate|drop)");
        if (o.overlong == "drop") err = "dropped: longer than --max-len";
        else s.ids.resize(max_len);
      }
    } catch (const nlohmann::json::exception& e) {
      err = rlhf::cat("malformed JSON (", e.what(), ")");
    } catch (const rlhf::Error& e) {
      err = e.what();
    }
    if (!err.empty() && !o.skip_bad_lines && err.rfind("dropped", 0) != 0) rlhf::fail(o.data, ":", lineno, ": ", err);
    seqs.push_back(std::move(s));
    errors.push_back(err);
    line_of.push_back(lineno);
  }
  RLHF_CHECK(!seqs.empty(), o.data, ": empty dataset");

  std::vector<double> scores(seqs.size(), 0.0);
  std::vector<int64_t> todo, lengths;
  for (size_t i = 0; i < seqs.size(); ++i)
    if (errors[i].empty()) todo.push_back(static_cast<int64_t>(i));
  for (auto i : todo) lengths.push_back(static_cast<int64_t>(seqs[i].ids.size()));
  {
    torch::NoGradGuard ng;
    model->eval();
    // Sorted by length so that padding is small; results go back to their lines.
    std::vector<int64_t> order(todo.size());
    for (size_t k = 0; k < order.size(); ++k) order[k] = static_cast<int64_t>(k);
    std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) { return lengths[a] < lengths[b]; });
    for (size_t s = 0; s < order.size(); s += o.batch_size) {
      std::vector<const rlhf::train::TokenSeq*> batch;
      for (size_t k = s; k < std::min(order.size(), s + o.batch_size); ++k) batch.push_back(&seqs[todo[order[k]]]);
      auto r = rlhf::reward::score_sequences(*model, batch, fmt.pad_id(), device).to(torch::kFloat64).cpu();
      for (size_t k = s; k < std::min(order.size(), s + o.batch_size); ++k)
        scores[todo[order[k]]] = r[static_cast<int64_t>(k - s)].item<double>();
    }
  }
  std::ofstream out(o.out);
  RLHF_CHECK(out, o.out, ": cannot open for writing");
  int64_t bad = 0;
  for (size_t i = 0; i < seqs.size(); ++i) {
    nlohmann::json j;
    if (errors[i].empty()) j["score"] = scores[i];
    else {
      j["score"] = nullptr;
      j["error"] = errors[i];
      ++bad;
    }
    out << j.dump() << "\n";
  }
  RLHF_CHECK(out, o.out, ": write failed");
  std::cerr << "scored " << (seqs.size() - bad) << " lines" << (bad ? rlhf::cat(", ", bad, " without a score") : "")
            << " -> " << o.out << "\n";
  return 0;
}

rlhf::cli::Command reg{"score", "Score prompt/response lines with a reward model", [](CLI::App& app) {
                         auto o = std::make_shared<ScoreOptions>();
                         app.add_option("--model", o->model, "reward model folder")->required();
                         app.add_option("--data", o->data, "JSONL of {\"prompt\", \"response\"}")->required();
                         app.add_option("--out", o->out, "JSONL of {\"score\"} to write")->required();
                         app.add_option("--batch-size", o->batch_size, "sequences per forward")->capture_default_str();
                         app.add_option("--max-len", o->max_len, "max tokens (0: the model's limit)")
                             ->capture_default_str();
                         app.add_option("--overlong", o->overlong, "truncate | drop | error")->capture_default_str();
                         app.add_flag("--skip-bad-lines", o->skip_bad_lines,
                                      "write {\"score\": null, \"error\"} for bad lines instead of stopping");
                         return [o] { return run_score(*o); };
                       }};

}  // namespace
