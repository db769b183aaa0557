#include "rlhf/examples.h"

#include <algorithm>
#include <optional>

#include "common/error.h"
#include "train/jsonl.h"

using nlohmann::json;

namespace rlhf {

void DataOptions::validate() const {
  RLHF_CHECK(max_len >= 2, "--max-len must be >= 2, got ", max_len);
  RLHF_CHECK(overlong == "truncate" || overlong == "truncate-left" || overlong == "drop" || overlong == "error",
             "--overlong: \"", overlong, "\" is not one of truncate, truncate-left, drop, error");
}

std::string DataReport::summary() const {
  return cat(lines, " examples, ", truncated, " truncated, ", dropped, " dropped (overlong), ", skipped,
             " bad lines skipped", all_tied ? cat(", ", all_tied, " rankings skipped (all responses tied)") : "");
}

json DataReport::to_json() const {
  return {{"examples", lines}, {"truncated", truncated}, {"dropped", dropped}, {"skipped", skipped},
          {"all_tied", all_tied}};
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

// Tokens before the first loss token: the prompt (the whole sequence when there is no mask: plain LM text).
int64_t prompt_len(const train::TokenSeq& s) {
  if (s.loss_mask.empty()) return static_cast<int64_t>(s.ids.size());
  return std::find(s.loss_mask.begin(), s.loss_mask.end(), 1) - s.loss_mask.begin();
}

// How many prompt tokens "truncate-left" removes so that the longest of `seqs` fits, all with the same prompt:
//   P = prompt length, R = longest response, L = max_len, H = 1 when the prompt starts with BOS (kept), else 0.
//   The prompt keeps its last max(L - R, min(P, L/2)) tokens after the BOS (TRL's truncation_mode="keep_end" on
//   the prompt; the floor of L/2 stands in for TRL's max_prompt_length), and responses longer than what is left
//   are then cut from the right by fit().
int64_t left_cut(const std::vector<const train::TokenSeq*>& seqs, int64_t max_len, std::optional<int64_t> bos) {
  const auto& first = *seqs.front();
  const int64_t P = prompt_len(first);
  if (first.loss_mask.empty()) return 0;  // no prompt/response split: keep the start
  int64_t R = 0;
  for (const auto* s : seqs) R = std::max(R, static_cast<int64_t>(s->ids.size()) - prompt_len(*s));
  if (P + R <= max_len) return 0;
  const int64_t H = (bos && P > 0 && first.ids[0] == *bos) ? 1 : 0;
  const int64_t keep = std::min(P - H, std::max(max_len - H - R, std::min(P - H, max_len / 2)));
  return std::max<int64_t>(0, P - H - keep);
}

// Removes `cut` prompt tokens after the first `head` ones.
void cut_prompt(train::TokenSeq& s, int64_t head, int64_t cut) {
  if (cut <= 0) return;
  s.ids.erase(s.ids.begin() + head, s.ids.begin() + head + cut);
  s.loss_mask.erase(s.loss_mask.begin() + head, s.loss_mask.begin() + head + cut);
}

// Applies the overlong policy to a sequence whose prompt was already cut (truncate-left); false = drop.
bool fit(train::TokenSeq& s, const DataOptions& o, DataReport& r) {
  if (static_cast<int64_t>(s.ids.size()) <= o.max_len) return true;
  RLHF_CHECK(o.overlong != "error", "sequence of ", s.ids.size(), " tokens exceeds --max-len ", o.max_len,
             " (--overlong truncate|truncate-left|drop handles such examples)");
  if (o.overlong == "drop") return false;
  s.ids.resize(o.max_len);
  if (!s.loss_mask.empty()) {
    s.loss_mask.resize(o.max_len);
    if (std::count(s.loss_mask.begin() + 1, s.loss_mask.end(), 1) == 0) return false;
  }
  ++r.truncated;
  return true;
}

// All of a group's sequences (one prompt): the same prompt cut for each under truncate-left, then fit() each.
// The group counts once as truncated. False = drop.
bool fit_group(std::vector<train::TokenSeq>& seqs, const DataOptions& o, std::optional<int64_t> bos, DataReport& r) {
  const int64_t before = r.truncated;
  if (o.overlong == "truncate-left") {
    std::vector<const train::TokenSeq*> ptrs;
    for (const auto& s : seqs) ptrs.push_back(&s);
    const int64_t cut = left_cut(ptrs, o.max_len, bos);
    if (cut > 0) {
      const int64_t head = (bos && seqs[0].ids[0] == *bos) ? 1 : 0;
      for (auto& s : seqs) cut_prompt(s, head, cut);
      ++r.truncated;
    }
  }
  for (auto& s : seqs)
    if (!fit(s, o, r)) {
      r.truncated = before;
      return false;
    }
  r.truncated = std::min(r.truncated, before + 1);
  return true;
}

bool fit_one(train::TokenSeq& s, const DataOptions& o, std::optional<int64_t> bos, DataReport& r) {
  std::vector<train::TokenSeq> one{std::move(s)};
  const bool keep = fit_group(one, o, bos, r);
  s = std::move(one[0]);
  return keep;
}

std::optional<int64_t> bos_of(const Formatter& f) {
  if (auto b = f.tokenizer().bos_id()) return *b;
  return std::nullopt;
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
    // The prompt: "prompt", or "messages" = the conversation so far, ending with the user's turn.
    const bool conv = !train::has_field(j, "prompt") && train::has_field(j, "messages");
    const auto& p = conv ? j["messages"] : train::field(j, "prompt", "a string or a list of messages");
    check_prompt(p, conv ? "messages" : "prompt");
    RLHF_CHECK(!conv || (p.is_array() && !p.empty()), "field \"messages\": expected the conversation so far "
               "(a non-empty list of messages ending with the user's turn)");
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
std::vector<T> load(const std::string& path, const DataOptions& o, DataReport* report, Parse parse, Fit keep) {
  o.validate();
  DataReport r;
  std::vector<T> out;
  train::JsonlOptions jo;
  jo.skip_bad_lines = o.skip_bad_lines;
  auto rep = train::read_jsonl(path, jo, [&](const json& j, int64_t line) {
    T x = parse(j, line);
    if (keep(x, r)) out.push_back(std::move(x));
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
      [&, bos = bos_of(f)](train::TokenSeq& s, DataReport& r) { return fit_one(s, o, bos, r); });
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
      [&, bos = bos_of(f)](PreferenceGroup& g, DataReport& r) {
        if (g.pairs.empty()) {  // every response tied
          ++r.all_tied;
          r.no_pairs_flag = true;
          return false;
        }
        return fit_group(g.responses, o, bos, r);  // counted once, not per response
      });
}

std::vector<train::TokenSeq> load_scored_data(const std::string& path, const Formatter& f, const DataOptions& o,
                                              DataReport* report) {
  return load<train::TokenSeq>(
      path, o, report, [&](const json& j, int64_t) { return encode_scored_line(j, f); },
      [&, bos = bos_of(f)](train::TokenSeq& s, DataReport& r) { return fit_one(s, o, bos, r); });
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
