#include "tokenizer/tokenizer.h"

#include <algorithm>
#include <atomic>
#include <exception>
#include <fstream>
#include <mutex>
#include <sstream>
#include <thread>

#include "common/error.h"
#include "tokenizer/added_vocabulary.h"
#include "tokenizer/bpe.h"
#include "tokenizer/decoder.h"
#include "tokenizer/normalizer.h"
#include "tokenizer/post_processor.h"
#include "tokenizer/pre_tokenizer.h"
#include "tokenizer/utf8.h"

namespace rlhf::tok {

struct Tokenizer::State {
  nlohmann::json config = nlohmann::json::object();
  Normalizer normalizer;
  PreTokenizer pre_tokenizer;
  std::unique_ptr<Bpe> model;
  PostProcessor post_processor;
  Decoder decoder;
  AddedVocabulary added;
  int32_t vocab_size = 0;
  std::string bos, eos, pad, unk;  // from the config, "" when absent
};

namespace {

nlohmann::json read_json(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  RLHF_CHECK(f.good(), path, ": cannot open file (hint: is the path right and readable?)");
  std::stringstream ss;
  ss << f.rdbuf();
  try {
    return nlohmann::json::parse(ss.str());
  } catch (const nlohmann::json::parse_error& e) {
    fail(path, ": invalid JSON at byte ", e.byte, ": ", e.what());
  } catch (const nlohmann::json::exception& e) {  // out_of_range: a number beyond double
    fail(path, ": invalid JSON: ", e.what());
  }
}

// bos_token etc. are a string, an AddedToken object {"content": ...}, or null.
std::string special_from_config(const nlohmann::json& config, const char* key, const std::string& where) {
  if (!config.contains(key) || config[key].is_null()) return "";
  const auto& v = config[key];
  if (v.is_string()) return v.get<std::string>();
  RLHF_CHECK(v.is_object() && v.contains("content") && v["content"].is_string(), where, ": ", key,
             " must be a string or an object with \"content\"");
  return v["content"].get<std::string>();
}

}  // namespace

Tokenizer Tokenizer::from_dir(const std::string& dir) {
  std::string tj = dir + "/tokenizer.json", cj = dir + "/tokenizer_config.json";
  RLHF_CHECK(std::ifstream(tj).good(), dir, ": no tokenizer.json (hint: give the folder of a Hugging Face model ",
             "saved with a fast tokenizer; tokenizer.model / vocab.json-only folders are not supported)");
  return from_files(tj, std::ifstream(cj).good() ? cj : "");
}

Tokenizer Tokenizer::from_files(const std::string& tokenizer_json, const std::string& tokenizer_config_json) {
  auto s = std::make_shared<State>();
  const std::string& w = tokenizer_json;
  nlohmann::json j = read_json(tokenizer_json);
  try {
    s->normalizer = normalizer_from_json(j.value("normalizer", nlohmann::json()), w + ": normalizer");
    s->pre_tokenizer = pre_tokenizer_from_json(j.value("pre_tokenizer", nlohmann::json()), w + ": pre_tokenizer");
    RLHF_CHECK(j.contains("model"), w, ": missing \"model\"");
    s->model = std::make_unique<Bpe>(j["model"], w + ": model");
    s->added = AddedVocabulary(j.value("added_tokens", nlohmann::json()), s->normalizer, w + ": added_tokens");
    s->decoder = decoder_from_json(j.value("decoder", nlohmann::json()), w + ": decoder");
    const State* raw = s.get();
    s->post_processor = post_processor_from_json(j.value("post_processor", nlohmann::json()), w + ": post_processor",
                                                 [raw](int32_t id) {
                                                   if (const AddedToken* t = raw->added.by_id(id)) return t->content;
                                                   const std::string* m = raw->model->id_to_token(id);
                                                   return m ? *m : std::string();
                                                 });
  } catch (const nlohmann::json::exception& e) {
    fail(w, ": unexpected structure: ", e.what(), " (hint: is this a tokenizers-library tokenizer.json?)");
  }
  s->vocab_size = s->model->max_id() + 1;
  for (const auto& t : s->added.tokens()) s->vocab_size = std::max(s->vocab_size, t.id + 1);

  if (!tokenizer_config_json.empty()) {
    s->config = read_json(tokenizer_config_json);
    RLHF_CHECK(s->config.is_object(), tokenizer_config_json, ": expected a JSON object");
    s->bos = special_from_config(s->config, "bos_token", tokenizer_config_json);
    s->eos = special_from_config(s->config, "eos_token", tokenizer_config_json);
    s->pad = special_from_config(s->config, "pad_token", tokenizer_config_json);
    s->unk = special_from_config(s->config, "unk_token", tokenizer_config_json);
  }
  return Tokenizer(std::move(s));
}

void Tokenizer::encode_into(std::string_view text, bool add_special_tokens, Encoding& out) const {
  const State& s = *s_;
  // Invalid UTF-8: tokenize the U+FFFD-substituted text, map offsets back at the end.
  std::string clean;
  std::vector<size_t> to_input;
  const bool sanitized = !utf8_is_valid(text);
  if (sanitized) {
    clean = utf8_sanitize(text, to_input);
    text = clean;
  }
  thread_local std::vector<BpeToken> tokens;
  auto model_word = [&](NormalizedString&& word) {
    tokens.clear();
    s.model->tokenize(word.text(), s.pre_tokenizer.byte_level, tokens);
    for (const BpeToken& t : tokens) {
      Span sp = word.original_span(t.begin, t.end);
      out.ids.push_back(t.id);
      out.offsets.emplace_back(sp.begin, sp.end);
    }
  };
  auto pre_and_model = [&](NormalizedString&& piece) {
    if (piece.empty()) return;
    if (s.pre_tokenizer.run) s.pre_tokenizer.run(std::move(piece), model_word);
    else model_word(std::move(piece));
  };

  std::vector<AddedSplit> raw_splits, norm_splits;
  if (s.added.has(false)) s.added.split(text, false, raw_splits);
  else raw_splits.push_back({0, text.size(), std::nullopt});
  for (const AddedSplit& r : raw_splits) {
    if (r.id) {
      out.ids.push_back(*r.id);
      out.offsets.emplace_back(r.begin, r.end);
      continue;
    }
    if (r.end == r.begin) continue;
    NormalizedString ns(text, r.begin, r.end);
    if (s.normalizer) s.normalizer(ns);
    if (!s.added.has(true)) {
      pre_and_model(std::move(ns));
      continue;
    }
    norm_splits.clear();
    s.added.split(ns.text(), true, norm_splits);
    for (const AddedSplit& n : norm_splits) {
      if (n.id) {
        Span sp = ns.original_span(n.begin, n.end);
        out.ids.push_back(*n.id);
        out.offsets.emplace_back(sp.begin, sp.end);
      } else if (n.end > n.begin) {
        pre_and_model(ns.slice(n.begin, n.end));
      }
    }
  }
  if (s.post_processor) s.post_processor(out, add_special_tokens);
  if (sanitized) {
    for (auto& [b, e] : out.offsets) {
      if (e == 0) continue;  // (0, 0): a post-processor token
      b = to_input[b], e = to_input[e];
    }
  }
}

std::vector<int32_t> Tokenizer::encode(std::string_view text, bool add_special_tokens) const {
  Encoding e;
  encode_into(text, add_special_tokens, e);
  return std::move(e.ids);
}

Encoding Tokenizer::encode_with_offsets(std::string_view text, bool add_special_tokens) const {
  Encoding e;
  encode_into(text, add_special_tokens, e);
  return e;
}

std::vector<std::vector<int32_t>> Tokenizer::encode_batch(const std::vector<std::string>& texts,
                                                          bool add_special_tokens, int threads) const {
  std::vector<std::vector<int32_t>> out(texts.size());
  size_t n = threads > 0 ? (size_t)threads : std::max(1u, std::thread::hardware_concurrency());
  n = std::min(n, texts.size());
  if (n <= 1) {
    for (size_t k = 0; k < texts.size(); ++k) out[k] = encode(texts[k], add_special_tokens);
    return out;
  }
  // Each worker takes the next text until none is left; the first error is rethrown here.
  std::atomic<size_t> next{0};
  std::exception_ptr error;
  std::mutex error_mutex;
  std::vector<std::thread> pool;
  for (size_t t = 0; t < n; ++t) {
    pool.emplace_back([&] {
      for (size_t k; (k = next++) < texts.size();) {
        try {
          out[k] = encode(texts[k], add_special_tokens);
        } catch (...) {
          std::lock_guard<std::mutex> lock(error_mutex);
          if (!error) error = std::current_exception();
          next = texts.size();
        }
      }
    });
  }
  for (auto& th : pool) th.join();
  if (error) std::rethrow_exception(error);
  return out;
}

std::string Tokenizer::decode(const std::vector<int32_t>& ids, bool skip_special_tokens) const {
  const State& s = *s_;
  std::vector<std::string> tokens;
  tokens.reserve(ids.size());
  for (int32_t id : ids) {
    if (const AddedToken* t = s.added.by_id(id)) {
      if (!(skip_special_tokens && t->special)) tokens.push_back(t->content);
    } else if (const std::string* m = s.model->id_to_token(id)) {
      const AddedToken* same = skip_special_tokens ? s.added.by_content(*m) : nullptr;
      if (!(same && same->special)) tokens.push_back(*m);
    }
    // else: an id in neither table is dropped, as the tokenizers library does
  }
  if (!s.decoder) {
    std::string out;
    for (size_t k = 0; k < tokens.size(); ++k) out += (k ? " " : "") + tokens[k];
    return out;
  }
  s.decoder(tokens);
  std::string out;
  for (const auto& t : tokens) out += t;
  return out;
}

std::string Tokenizer::id_to_token(int32_t id) const {
  if (const AddedToken* t = s_->added.by_id(id)) return t->content;
  const std::string* m = s_->model->id_to_token(id);
  RLHF_CHECK(m, "id_to_token: id ", id, " is not in the vocab (vocab_size ", s_->vocab_size, ")");
  return *m;
}

std::optional<int32_t> Tokenizer::token_to_id(const std::string& tok) const {
  if (const AddedToken* t = s_->added.by_content(tok)) return t->id;
  return s_->model->token_to_id(tok);
}

int32_t Tokenizer::vocab_size() const { return s_->vocab_size; }

static std::optional<int32_t> id_of(const Tokenizer& t, const std::string& tok) {
  if (tok.empty()) return std::nullopt;
  return t.token_to_id(tok);
}
std::optional<int32_t> Tokenizer::bos_id() const { return id_of(*this, s_->bos); }
std::optional<int32_t> Tokenizer::eos_id() const { return id_of(*this, s_->eos); }
std::optional<int32_t> Tokenizer::pad_id() const { return id_of(*this, s_->pad); }
std::optional<int32_t> Tokenizer::unk_id() const { return id_of(*this, s_->unk); }
std::string Tokenizer::bos_token() const { return s_->bos; }
std::string Tokenizer::eos_token() const { return s_->eos; }
std::string Tokenizer::pad_token() const { return s_->pad; }

bool Tokenizer::is_special(int32_t id) const {
  const AddedToken* t = s_->added.by_id(id);
  return t && t->special;
}

std::string Tokenizer::chat_template(const std::string& name) const {
  const auto& c = s_->config;
  if (!c.contains("chat_template") || c["chat_template"].is_null()) return "";
  const auto& ct = c["chat_template"];
  if (ct.is_string()) return name == "default" ? ct.get<std::string>() : "";
  RLHF_CHECK(ct.is_array(), "tokenizer_config.json: chat_template must be a string or a list of {name, template}");
  for (const auto& e : ct)
    if (e.is_object() && e.value("name", std::string()) == name) return e.value("template", std::string());
  return "";
}

const nlohmann::json& Tokenizer::config() const { return s_->config; }

}  // namespace rlhf::tok
