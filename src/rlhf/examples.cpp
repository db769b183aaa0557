#include "rlhf/examples.h"

#include <algorithm>

#include "common/error.h"
#include "train/jsonl.h"

using nlohmann::json;

namespace rlhf {

void DataOptions::validate() const {
  RLHF_CHECK(max_len >= 2, "--max-len must be >= 2, got ", max_len);
  RLHF_CHECK(overlong == "truncate" || overlong == "drop" || overlong == "error", "--overlong: \"", overlong,
             "\" is not one of truncate, drop, error");
}

std::string DataReport::summary() const {
  return cat(lines, " examples, ", truncated, " truncated, ", dropped, " dropped (overlong), ", skipped,
             " bad lines skipped", all_tied ? cat(", ", all_tied, " rankings skipped (all responses tied)") : "");
}

namespace {

train::TokenSeq join(const TokenizedPair& p) {
  train::TokenSeq s;
  s.ids = p.prompt;
  s.ids.insert(s.ids.end(), p.response.begin(), p.response.end());
  s.loss_mask.assign(p.prompt.size(), 0);
  s.loss_mask.insert(s.loss_mask.end(), p.response.size(), 1);
  return s;
}

void check_prompt(const json& p, const std::string& key) {
  RLHF_CHECK(p.is_string() || p.is_array(), "field \"", key, "\": expected a string or a list of messages, got ",
             p.type_name());
}

// A response given as a string, or as messages ending with the assistant's turn (earlier ones extend the prompt).
std::pair<json, std::string> split_response(const json& prompt, const json& resp, const std::string& key) {
  if (resp.is_string()) return {prompt, resp.get<std::string>()};
  RLHF_CHECK(resp.is_array() && !resp.empty(), "field \"", key,
             "\": expected a string or a non-empty list of messages, got ", resp.dump().substr(0, 80));
  const auto& last = resp.back();
  RLHF_CHECK(last.is_object() && last.value("role", "") == "assistant" && last.contains("content") &&
                 last["content"].is_string(),
             "field \"", key, "\": the last message must be {\"role\": \"assistant\", \"content\": str}");
  json p = prompt.is_string() ? json::array({{{"role", "user"}, {"content", prompt}}}) : prompt;
  if (prompt.is_null()) p = json::array();
  for (size_t i = 0; i + 1 < resp.size(); ++i) p.push_back(resp[i]);
  return {p, last["content"].get<std::string>()};
}

// HH-RLHF: the shared prefix of two dialogues is the prompt.
std::tuple<json, std::string, std::string> split_shared_prefix(const json& a, const json& b) {
  if (a.is_string() && b.is_string()) {
    const auto &x = a.get_ref<const std::string&>(), &y = b.get_ref<const std::string&>();
    size_t n = 0;
    while (n < x.size() && n < y.size() && x[n] == y[n]) ++n;
    const std::string tag = "\n\nAssistant:";
    auto cut = x.substr(0, n).rfind(tag);
    if (cut != std::string::npos) n = cut + tag.size();
    RLHF_CHECK(n < x.size() || n < y.size(), "fields \"chosen\" and \"rejected\": identical texts");
    return {json(x.substr(0, n)), x.substr(n), y.substr(n)};
  }
  RLHF_CHECK(a.is_array() && b.is_array(), "fields \"chosen\"/\"rejected\" without \"prompt\": expected two strings "
             "or two message lists (HH-RLHF style dialogues)");
  json prompt = json::array();
  auto [p1, ra] = split_response(prompt, a, "chosen");
  auto [p2, rb] = split_response(prompt, b, "rejected");
  RLHF_CHECK(p1 == p2, "fields \"chosen\"/\"rejected\": the dialogues must share all messages but the last");
  return {p1, ra, rb};
}

// Applies the overlong policy; false = drop.
bool fit(train::TokenSeq& s, const DataOptions& o, DataReport& r) {
  if (static_cast<int64_t>(s.ids.size()) <= o.max_len) return true;
  RLHF_CHECK(o.overlong != "error", "sequence of ", s.ids.size(), " tokens exceeds --max-len ", o.max_len,
             " (--overlong truncate|drop handles such examples)");
  if (o.overlong == "drop") return false;
  s.ids.resize(o.max_len);
  if (!s.loss_mask.empty()) {
    s.loss_mask.resize(o.max_len);
    if (std::count(s.loss_mask.begin() + 1, s.loss_mask.end(), 1) == 0) return false;
  }
  ++r.truncated;
  return true;
}

}  // namespace

train::TokenSeq encode_sft_line(const json& j, const Formatter& f) {
  if (train::has_field(j, "messages")) {
    const auto& m = j["messages"];
    RLHF_CHECK(m.is_array() && !m.empty(), "field \"messages\": expected a non-empty list of messages");
    auto [ids, mask] = f.encode_conversation(m);
    RLHF_CHECK(std::count(mask.begin(), mask.end(), 1) > 0, "field \"messages\": no assistant message to learn");
    return {ids, mask};
  }
  if (train::has_field(j, "prompt") || train::has_field(j, "completion")) {
    const auto& p = train::field(j, "prompt", "a string or a list of messages");
    check_prompt(p, "prompt");
    return join(f.encode(p, train::string_field(j, "completion")));
  }
  if (train::has_field(j, "text")) {
    train::TokenSeq s;
    for (auto id : f.tokenizer().encode(train::string_field(j, "text"), /*add_special_tokens=*/true))
      s.ids.push_back(id);
    if (auto e = f.tokenizer().eos_id()) s.ids.push_back(*e);
    return s;
  }
  fail("expected one of the fields \"prompt\"+\"completion\", \"messages\" or \"text\"");
}

PreferenceGroup encode_preference_line(const json& j, const Formatter& f) {
  PreferenceGroup g;
  if (train::has_field(j, "responses")) {
    const auto& p = train::field(j, "prompt", "a string or a list of messages");
    check_prompt(p, "prompt");
    const auto& rs = j["responses"];
    RLHF_CHECK(rs.is_array() && rs.size() >= 2, "field \"responses\": expected a list of at least 2 strings");
    const int K = static_cast<int>(rs.size());
    std::vector<int> rank(K, -1);  // lower = better; -1 = unranked (no pairs)
    if (train::has_field(j, "ranking")) {
      const auto& r = j["ranking"];
      RLHF_CHECK(r.is_array(), "field \"ranking\": expected a list of response indices, best first");
      for (size_t pos = 0; pos < r.size(); ++pos) {
        RLHF_CHECK(r[pos].is_number_integer() && r[pos].get<int>() >= 0 && r[pos].get<int>() < K,
                   "field \"ranking\": entry ", pos, " is not an index in [0, ", K, ")");
        RLHF_CHECK(rank[r[pos].get<int>()] < 0, "field \"ranking\": index ", r[pos].get<int>(), " appears twice");
        rank[r[pos].get<int>()] = static_cast<int>(pos);
      }
    } else {
      const auto& r = train::field(j, "ranks", "\"ranking\" (indices best first) or \"ranks\" (rank per response)");
      RLHF_CHECK(r.is_array() && static_cast<int>(r.size()) == K, "field \"ranks\": expected ", K,
                 " numbers (one per response, lower is better)");
      for (int i = 0; i < K; ++i) {
        RLHF_CHECK(r[i].is_number_integer() && r[i].get<int>() >= 0, "field \"ranks\": entry ", i,
                   " must be an integer >= 0");
        rank[i] = r[i].get<int>();
      }
    }
    for (int i = 0; i < K; ++i) {
      RLHF_CHECK(rs[i].is_string(), "field \"responses\": entry ", i, " must be a string");
      g.responses.push_back(join(f.encode(p, rs[i].get<std::string>())));
    }
    // All C(K,2) ordered pairs; ties (equal rank) and unranked responses give none.
    for (int a = 0; a < K; ++a)
      for (int b = 0; b < K; ++b)
        if (rank[a] >= 0 && rank[b] >= 0 && rank[a] < rank[b]) {
          g.pairs.push_back({a, b});
          g.margins.push_back(0.0);
        }
    // All tied: a valid ranking that carries no preference; load_preference_data counts and skips it.
    return g;
  }
  const auto& c = train::field(j, "chosen", "a string or a list of messages");
  const auto& r = train::field(j, "rejected", "a string or a list of messages");
  json prompt;
  std::string rc, rr;
  if (train::has_field(j, "prompt")) {
    check_prompt(j["prompt"], "prompt");
    auto [pc, sc] = split_response(j["prompt"], c, "chosen");
    auto [pr, sr] = split_response(j["prompt"], r, "rejected");
    RLHF_CHECK(pc == pr, "fields \"chosen\"/\"rejected\": their message lists must share all messages but the last");
    prompt = pc;
    rc = sc;
    rr = sr;
  } else {
    std::tie(prompt, rc, rr) = split_shared_prefix(c, r);
  }
  g.responses.push_back(join(f.encode(prompt, rc)));
  g.responses.push_back(join(f.encode(prompt, rr)));
  g.pairs.push_back({0, 1});
  double m = 0.0;
  if (train::has_field(j, "margin")) {
    RLHF_CHECK(j["margin"].is_number(), "field \"margin\": expected a number");
    m = j["margin"].get<double>();
  }
  g.margins.push_back(m);
  return g;
}

train::TokenSeq encode_scored_line(const json& j, const Formatter& f) {
  const auto& p = train::field(j, "prompt", "a string or a list of messages");
  check_prompt(p, "prompt");
  const auto& r = train::field(j, "response", "a string or a list of messages ending with the assistant's answer");
  auto [prompt, resp] = split_response(p, r, "response");
  return join(f.encode(prompt, resp));
}

namespace {
template <typename T, typename Parse, typename Fit>
std::vector<T> load(const std::string& path, const DataOptions& o, DataReport* report, Parse parse, Fit fit_one) {
  o.validate();
  DataReport r;
  std::vector<T> out;
  train::JsonlOptions jo;
  jo.skip_bad_lines = o.skip_bad_lines;
  auto rep = train::read_jsonl(path, jo, [&](const json& j, int64_t line) {
    T x = parse(j, line);
    if (fit_one(x, r)) out.push_back(std::move(x));
    else if (!r.no_pairs_flag) ++r.dropped;
    r.no_pairs_flag = false;
  });
  r.skipped = rep.skipped;
  r.lines = static_cast<int64_t>(out.size());
  RLHF_CHECK(!out.empty(), path, ": no examples left (", r.summary(), ")");
  if (report) *report = r;
  return out;
}
}  // namespace

std::vector<train::TokenSeq> load_sft_data(const std::string& path, const Formatter& f, const DataOptions& o,
                                           DataReport* report) {
  return load<train::TokenSeq>(
      path, o, report, [&](const json& j, int64_t) { return encode_sft_line(j, f); },
      [&](train::TokenSeq& s, DataReport& r) { return fit(s, o, r); });
}

std::vector<PreferenceGroup> load_preference_data(const std::string& path, const Formatter& f, const DataOptions& o,
                                                  DataReport* report) {
  return load<PreferenceGroup>(
      path, o, report,
      [&](const json& j, int64_t line) {
        auto g = encode_preference_line(j, f);
        g.line = line;
        return g;
      },
      [&](PreferenceGroup& g, DataReport& r) {
        if (g.pairs.empty()) {  // every response tied
          ++r.all_tied;
          r.no_pairs_flag = true;
          return false;
        }
        const int64_t before = r.truncated;  // count the group once, not each response
        for (auto& s : g.responses)
          if (!fit(s, o, r)) return false;
        r.truncated = std::min(r.truncated, before + 1);
        return true;
      });
}

std::vector<train::TokenSeq> load_scored_data(const std::string& path, const Formatter& f, const DataOptions& o,
                                              DataReport* report) {
  return load<train::TokenSeq>(
      path, o, report, [&](const json& j, int64_t) { return encode_scored_line(j, f); },
      [&](train::TokenSeq& s, DataReport& r) { return fit(s, o, r); });
}

std::pair<std::vector<int64_t>, std::vector<int64_t>> split_indices(int64_t n, double eval_fraction, uint64_t seed) {
  RLHF_CHECK(eval_fraction >= 0 && eval_fraction < 1, "--eval-fraction must be in [0, 1), got ", eval_fraction);
  auto idx = train::shuffled_indices(n, seed, /*epoch=*/-1);
  int64_t n_eval = static_cast<int64_t>(eval_fraction * static_cast<double>(n) + 0.5);
  if (eval_fraction > 0 && n_eval == 0 && n > 1) n_eval = 1;
  std::vector<int64_t> tr(idx.begin(), idx.end() - n_eval), ev(idx.end() - n_eval, idx.end());
  return {tr, ev};
}

}  // namespace rlhf
