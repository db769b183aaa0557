#include "rlhf/demo_task.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <random>
#include <set>
#include <sstream>

#include "common/error.h"
#include "tokenizer/tokenizer.h"

using nlohmann::json;

namespace rlhf::demo {

namespace {

const std::vector<std::string> kDets = {"the", "my", "our", "that", "this"};
const std::vector<std::string> kNouns = {"cat", "dog", "sun", "day", "tree", "song", "town",
                                         "food", "park", "book", "film", "game", "room", "trip"};
const std::vector<std::string> kVerbs = {"was", "is", "seemed", "looked", "felt"};
const std::vector<std::string> kPositive = {"good", "great", "happy", "nice", "lovely", "bright",
                                            "warm", "kind", "fun", "calm", "sweet", "fresh"};
const std::vector<std::string> kNegative = {"bad", "sad", "dull", "cold", "awful", "grim",
                                            "dark", "rude", "boring", "noisy", "stale", "weak"};
const std::vector<std::string> kOther = {"and", "very", "quite", "but", "so"};

// GPT-2's byte -> printable unicode map (bytes_to_unicode), as UTF-8 strings.
std::vector<std::string> byte_to_unicode() {
  std::vector<int> bs;
  for (int b = '!'; b <= '~'; ++b) bs.push_back(b);
  for (int b = 0xA1; b <= 0xAC; ++b) bs.push_back(b);
  for (int b = 0xAE; b <= 0xFF; ++b) bs.push_back(b);
  std::vector<int> cs = bs;
  int n = 0;
  for (int b = 0; b < 256; ++b)
    if (std::find(bs.begin(), bs.end(), b) == bs.end()) {
      bs.push_back(b);
      cs.push_back(256 + n++);
    }
  std::vector<std::string> out(256);
  for (size_t i = 0; i < bs.size(); ++i) {
    const int c = cs[i];
    std::string s;
    if (c < 0x80) s.push_back(static_cast<char>(c));
    else {
      s.push_back(static_cast<char>(0xC0 | (c >> 6)));
      s.push_back(static_cast<char>(0x80 | (c & 0x3F)));
    }
    out[bs[i]] = s;
  }
  return out;
}

std::vector<std::string> words_of(const std::string& s) {
  std::vector<std::string> out;
  std::string cur;
  for (char c : s) {
    if (c == ' ' || c == ',' || c == '.') {
      if (!cur.empty()) out.push_back(cur);
      cur.clear();
      if (c != ' ') out.push_back(std::string(1, c));
    } else {
      cur.push_back(c);
    }
  }
  if (!cur.empty()) out.push_back(cur);
  return out;
}

bool contains(const std::vector<std::string>& v, const std::string& w) {
  return std::find(v.begin(), v.end(), w) != v.end();
}

// " a", " a and b", " a, b and c" with an optional "very"/"quite" before an adjective.
std::string make_completion(std::mt19937_64& rng, int max_adjectives) {
  std::uniform_int_distribution<int> n_dist(1, max_adjectives);
  std::bernoulli_distribution coin(0.5), intensifier(0.25);
  const int n = n_dist(rng);
  std::vector<std::string> chosen;
  while (static_cast<int>(chosen.size()) < n) {
    const auto& pool = coin(rng) ? kPositive : kNegative;
    const std::string& w = pool[std::uniform_int_distribution<size_t>(0, pool.size() - 1)(rng)];
    if (!contains(chosen, w)) chosen.push_back(w);  // demonstrations never repeat an adjective
  }
  std::string out;
  for (int i = 0; i < n; ++i) {
    if (i > 0) out += (i == n - 1) ? " and" : ",";
    if (intensifier(rng)) out += std::uniform_int_distribution<int>(0, 1)(rng) ? " very" : " quite";
    out += " " + chosen[i];
  }
  return out + ".";
}

void write_jsonl(const std::string& path, const std::vector<json>& rows) {
  std::ofstream out(path);
  for (const auto& r : rows) out << r.dump() << "\n";
  RLHF_CHECK(out, path, ": write failed");
}

}  // namespace

std::vector<std::string> all_prompts() {
  std::vector<std::string> out;
  for (const auto& d : kDets)
    for (const auto& n : kNouns)
      for (const auto& v : kVerbs) out.push_back(d + " " + n + " " + v);
  return out;
}

double gold_score(const std::string& prompt, const std::string& response) {
  (void)prompt;
  const auto words = words_of(response);
  if (words.empty()) return -2.0;
  double pos = 0, neg = 0, repeated = 0, adjectives = 0;
  bool malformed = words.back() != ".";
  std::set<std::string> seen;
  for (size_t i = 0; i < words.size(); ++i) {
    const auto& w = words[i];
    if (w == "." && i + 1 != words.size()) malformed = true;
    const bool is_pos = contains(kPositive, w), is_neg = contains(kNegative, w);
    if (is_pos || is_neg) {
      adjectives += 1;
      if (!seen.insert(w).second) repeated += 1;
      else if (is_pos) pos += 1;
      else neg += 1;
    } else if (w != "." && w != "," && !contains(kOther, w)) {
      malformed = true;
    }
  }
  return pos - neg - repeated - std::max(0.0, adjectives - 3) - (malformed ? 2.0 : 0.0);
}

void write_tokenizer(const std::string& dir) {
  std::vector<std::string> words;
  for (const auto* list : {&kDets, &kNouns, &kVerbs, &kPositive, &kNegative, &kOther})
    words.insert(words.end(), list->begin(), list->end());
  write_word_tokenizer(dir, words);
}

void write_word_tokenizer(const std::string& dir, const std::vector<std::string>& words) {
  std::filesystem::create_directories(dir);
  const auto b2u = byte_to_unicode();
  json vocab = json::object();
  std::vector<std::string> merges;
  std::set<std::string> merge_set;
  int next_id = 0;
  for (int b = 0; b < 256; ++b) vocab[b2u[b]] = next_id++;
  // Chains of merges that build each word left to right: first all " word" chains (Ġ...), then the bare
  // words, so a Ġ-chain is never cut by a bare-word merge of lower rank.
  for (const bool with_space : {true, false}) {
    for (const auto& w : words) {
      std::string cur = with_space ? b2u[' '] : "";
      for (char c : w) {
        const std::string ch = b2u[static_cast<unsigned char>(c)];
        if (cur.empty()) {
          cur = ch;
          continue;
        }
        const std::string merge = cur + " " + ch;
        cur += ch;
        if (merge_set.insert(merge).second) {
          merges.push_back(merge);
          if (!vocab.contains(cur)) vocab[cur] = next_id++;
        }
      }
    }
  }
  const int eos = next_id++;
  json tok = {
      {"version", "1.0"},
      {"truncation", nullptr},
      {"padding", nullptr},
      {"added_tokens",
       json::array({{{"id", eos},
                     {"content", "<|endoftext|>"},
                     {"single_word", false},
                     {"lstrip", false},
                     {"rstrip", false},
                     {"normalized", true},
                     {"special", true}}})},
      {"normalizer", nullptr},
      {"pre_tokenizer", {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"trim_offsets", true}, {"use_regex", true}}},
      {"post_processor", {{"type", "ByteLevel"}, {"add_prefix_space", true}, {"trim_offsets", false}, {"use_regex", true}}},
      {"decoder", {{"type", "ByteLevel"}, {"add_prefix_space", true}, {"trim_offsets", true}, {"use_regex", true}}},
      {"model",
       {{"type", "BPE"},
        {"dropout", nullptr},
        {"unk_token", nullptr},
        {"continuing_subword_prefix", ""},
        {"end_of_word_suffix", ""},
        {"fuse_unk", false},
        {"byte_fallback", false},
        {"ignore_merges", false},
        {"vocab", vocab},
        {"merges", merges}}},
  };
  std::ofstream(std::filesystem::path(dir) / "tokenizer.json") << tok.dump(1) << "\n";
  json cfg = {{"tokenizer_class", "GPT2Tokenizer"},  {"bos_token", "<|endoftext|>"}, {"eos_token", "<|endoftext|>"},
              {"pad_token", "<|endoftext|>"},       {"unk_token", "<|endoftext|>"}, {"add_bos_token", false},
              {"model_max_length", 64}};
  std::ofstream(std::filesystem::path(dir) / "tokenizer_config.json") << cfg.dump(2) << "\n";
}

void write_data(const std::string& dir, const DataSizes& sizes, uint64_t seed) {
  std::filesystem::create_directories(dir);
  std::mt19937_64 rng(seed);
  auto prompts = all_prompts();
  std::shuffle(prompts.begin(), prompts.end(), rng);
  RLHF_CHECK(sizes.eval_prompts < static_cast<int>(prompts.size()) / 2, "demo: too many eval prompts");
  const std::vector<std::string> eval(prompts.begin(), prompts.begin() + sizes.eval_prompts);
  const std::vector<std::string> train(prompts.begin() + sizes.eval_prompts, prompts.end());
  auto pick = [&](const std::vector<std::string>& v) {
    return v[std::uniform_int_distribution<size_t>(0, v.size() - 1)(rng)];
  };
  std::vector<json> pretrain, sft, rl, ev;
  for (int i = 0; i < sizes.pretrain_lines; ++i) {
    // 1-3 sentences of the language, any sentiment, up to 4 adjectives (the base model's "web text").
    std::string text;
    const int n = std::uniform_int_distribution<int>(1, 3)(rng);
    for (int s = 0; s < n; ++s) text += (s ? " " : "") + pick(train) + make_completion(rng, 4);
    pretrain.push_back({{"text", text}});
  }
  for (int i = 0; i < sizes.sft_examples; ++i) sft.push_back({{"prompt", pick(train)}, {"completion", make_completion(rng, 3)}});
  // Distinct prompts for ranking and RL (the labelling store keeps one item per prompt).
  for (int i = 0; i < sizes.train_prompts && i < static_cast<int>(train.size()); ++i) rl.push_back({{"prompt", train[i]}});
  for (const auto& p : eval) ev.push_back({{"prompt", p}});
  const std::filesystem::path d(dir);
  write_jsonl((d / "pretrain.jsonl").string(), pretrain);
  write_jsonl((d / "sft.jsonl").string(), sft);
  write_jsonl((d / "prompts.jsonl").string(), rl);
  write_jsonl((d / "eval_prompts.jsonl").string(), ev);
}

nlohmann::json base_model_config(const std::string& tokenizer_dir, int n_positions) {
  auto tok = tok::Tokenizer::from_dir(tokenizer_dir);
  RLHF_CHECK(tok.bos_id() && tok.eos_id() && tok.pad_id(), tokenizer_dir, ": the demo tokenizer needs BOS, EOS, PAD");
  return {{"architectures", {"GPT2LMHeadModel"}},
          {"model_type", "gpt2"},
          {"activation_function", "gelu_new"},
          {"n_embd", 64},
          {"n_layer", 2},
          {"n_head", 4},
          {"n_inner", nullptr},
          {"n_positions", n_positions},
          {"n_ctx", n_positions},
          {"layer_norm_epsilon", 1e-5},
          {"vocab_size", tok.vocab_size()},
          {"bos_token_id", *tok.bos_id()},
          {"eos_token_id", *tok.eos_id()},
          {"pad_token_id", *tok.pad_id()},
          {"tie_word_embeddings", true},
          {"attn_pdrop", 0.0},
          {"embd_pdrop", 0.0},
          {"resid_pdrop", 0.0},
          {"dtype", "float32"}};
}

}  // namespace rlhf::demo
