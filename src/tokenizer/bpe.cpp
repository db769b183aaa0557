#include "tokenizer/bpe.h"

#include <atomic>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <queue>

#include "common/error.h"
#include "tokenizer/byte_level.h"
#include "tokenizer/utf8.h"

namespace rlhf::tok {

namespace {
const std::string kMetaspace = "\xE2\x96\x81";  // '▁' U+2581
constexpr size_t kCacheMaxWordBytes = 256;
constexpr size_t kCacheCapacity = 1 << 16;  // words per thread; the cache is emptied when full

std::atomic<uint64_t> next_cache_key{1};

using WordCache = std::unordered_map<std::string, std::vector<BpeToken>>;
WordCache& thread_cache(uint64_t key) {
  // Per thread and per model: no locks on the encode path. Keys are never reused, so a cache can't outlive
  // its model's meaning; a thread keeps the caches of models it used until it exits.
  thread_local std::unordered_map<uint64_t, WordCache> caches;
  return caches[key];
}
}  // namespace

Bpe::Bpe(const nlohmann::json& model, const std::string& where) : cache_key_(next_cache_key++) {
  RLHF_CHECK(model.value("type", std::string("BPE")) == "BPE", where, ": unsupported model type ",
             model.value("type", std::string()), " (only BPE is implemented)");
  RLHF_CHECK(model.value("dropout", nlohmann::json()).is_null() || model["dropout"].get<double>() == 0.0, where,
             ".dropout: must be null (BPE dropout is a training-time option)");
  const auto& vocab = model.at("vocab");
  RLHF_CHECK(vocab.is_object(), where, ".vocab: expected an object {token: id}");
  vocab_.reserve(vocab.size() * 2);
  for (auto it = vocab.begin(); it != vocab.end(); ++it) {
    int32_t id = it.value().get<int32_t>();
    RLHF_CHECK(id >= 0, where, ".vocab: negative id for token ", it.key());
    vocab_[it.key()] = id;
    if ((size_t)id >= vocab_r_.size()) vocab_r_.resize(id + 1);
    vocab_r_[id] = it.key();
  }
  auto opt_str = [&](const char* k) {
    return model.contains(k) && model[k].is_string() ? model[k].get<std::string>() : std::string();
  };
  prefix_ = opt_str("continuing_subword_prefix");
  suffix_ = opt_str("end_of_word_suffix");
  byte_fallback_ = model.value("byte_fallback", false);
  fuse_unk_ = model.value("fuse_unk", false);
  ignore_merges_ = model.value("ignore_merges", false);
  if (model.contains("unk_token") && model["unk_token"].is_string()) {
    auto it = vocab_.find(model["unk_token"].get<std::string>());
    RLHF_CHECK(it != vocab_.end(), where, ".unk_token: ", model["unk_token"].get<std::string>(),
               " is not in the vocab");
    unk_id_ = it->second;
  }
  const ByteLevelTable& bl = byte_level_table();
  for (int b = 0; b < 256; ++b) {
    auto it = vocab_.find(bl.byte_to_utf8[b]);
    byte_char_id_[b] = it == vocab_.end() ? -1 : it->second;
    char name[8];
    std::snprintf(name, sizeof name, "<0x%02X>", b);
    it = vocab_.find(name);
    byte_fallback_id_[b] = it == vocab_.end() ? -1 : it->second;
  }

  const auto& merges = model.at("merges");
  merges_.reserve(merges.size() * 2);
  for (size_t r = 0; r < merges.size(); ++r) {
    std::string a, b;
    const auto& m = merges[r];
    if (m.is_string()) {  // "a b"
      const std::string& s = m.get_ref<const std::string&>();
      size_t sp = s.find(' ');
      RLHF_CHECK(sp != std::string::npos && s.find(' ', sp + 1) == std::string::npos, where, ".merges[", r,
                 "]: expected \"a b\" with one space, got \"", s, "\"");
      a = s.substr(0, sp), b = s.substr(sp + 1);
    } else {  // ["a", "b"]
      RLHF_CHECK(m.is_array() && m.size() == 2, where, ".merges[", r, "]: expected \"a b\" or [\"a\", \"b\"]");
      a = m[0].get<std::string>(), b = m[1].get<std::string>();
    }
    auto ia = vocab_.find(a), ib = vocab_.find(b);
    RLHF_CHECK(ia != vocab_.end() && ib != vocab_.end(), where, ".merges[", r, "]: token ",
               ia == vocab_.end() ? a : b, " is not in the vocab");
    // The merged token drops b's continuing_subword_prefix: "a" + "##b" -> "ab".
    std::string merged = a + (prefix_.size() && b.compare(0, prefix_.size(), prefix_) == 0 ? b.substr(prefix_.size()) : b);
    auto im = vocab_.find(merged);
    RLHF_CHECK(im != vocab_.end(), where, ".merges[", r, "]: merged token ", merged, " is not in the vocab");
    uint64_t key = ((uint64_t)(uint32_t)ia->second << 32) | (uint32_t)ib->second;
    merges_.emplace(key, std::make_pair((int32_t)r, im->second));  // first (lowest) rank wins on duplicates
  }

  // May words be cut before '▁' runs? Only if '▁' is itself a token (never byte fallback or unk), there is no
  // prefix/suffix decoration, and no merge joins "…x" + "▁…" with x != '▁'.
  auto ends_with = [](const std::string& s, const std::string& t) {
    return s.size() >= t.size() && s.compare(s.size() - t.size(), t.size(), t) == 0;
  };
  cut_before_metaspace_ = vocab_.count(kMetaspace) && prefix_.empty() && suffix_.empty();
  for (const auto& [key, rank_id] : merges_) {
    if (!cut_before_metaspace_) break;
    const std::string& a = vocab_r_[key >> 32];
    const std::string& b = vocab_r_[key & 0xFFFFFFFFu];
    if (b.compare(0, kMetaspace.size(), kMetaspace) == 0 && !ends_with(a, kMetaspace)) cut_before_metaspace_ = false;
  }
}

std::optional<int32_t> Bpe::token_to_id(const std::string& token) const {
  auto it = vocab_.find(token);
  if (it == vocab_.end()) return std::nullopt;
  return it->second;
}

const std::string* Bpe::id_to_token(int32_t id) const {
  if (id < 0 || (size_t)id >= vocab_r_.size() || (vocab_r_[id].empty() && !vocab_.count(""))) return nullptr;
  return &vocab_r_[id];
}

void Bpe::initial_symbols(std::string_view word, bool byte_level, std::vector<Symbol>& out) const {
  const ByteLevelTable& bl = byte_level_table();
  const bool plain = prefix_.empty() && suffix_.empty();
  std::optional<Symbol> unk;  // pending unknown run (fused when fuse_unk)
  std::string s;
  size_t i = 0;
  while (i < word.size()) {
    size_t n = byte_level ? 1 : utf8_len((unsigned char)word[i]);
    if (i + n > word.size()) n = word.size() - i;
    const uint32_t b = (uint32_t)i, e = (uint32_t)(i + n);
    int32_t id = -1;
    if (byte_level && plain) {
      id = byte_char_id_[(unsigned char)word[i]];
      if (id < 0) s = bl.byte_to_utf8[(unsigned char)word[i]];
    } else {
      s = byte_level ? bl.byte_to_utf8[(unsigned char)word[i]] : std::string(word.substr(i, n));
      if (i > 0) s = prefix_ + s;
      if (e == word.size()) s += suffix_;
      auto it = vocab_.find(s);
      if (it != vocab_.end()) id = it->second;
    }
    i += n;
    if (id >= 0) {
      if (unk) out.push_back(*unk), unk.reset();
      out.push_back({id, b, e});
      continue;
    }
    if (byte_fallback_) {
      bool all = true;
      for (unsigned char c : s) all &= byte_fallback_id_[c] >= 0;
      if (all) {
        // As in the tokenizers library: one token per byte of the (prefixed) char, each of length 1 in the word.
        uint32_t p = b;
        for (unsigned char c : s) {
          out.push_back({byte_fallback_id_[c], p, std::min<uint32_t>(p + 1, e)});
          if (p + 1 < e) ++p;
        }
        continue;
      }
    }
    if (unk_id_) {
      if (unk && fuse_unk_) {
        unk->end = e;
      } else {
        if (unk) out.push_back(*unk);
        unk = Symbol{*unk_id_, b, e};
      }
    }
    // no unk_token: the char is dropped, as in the tokenizers library
  }
  if (unk) out.push_back(*unk);
}

void Bpe::merge(std::vector<Symbol>& sym, std::vector<BpeToken>& out) const {
  const int n = (int)sym.size();
  std::vector<int> prev(n), next(n);
  std::vector<char> alive(n, 1);
  for (int k = 0; k < n; ++k) prev[k] = k - 1, next[k] = k + 1 < n ? k + 1 : -1;
  struct Cand {
    int32_t rank;
    int pos;
    int32_t new_id;
    bool operator>(const Cand& o) const { return rank != o.rank ? rank > o.rank : pos > o.pos; }
  };
  std::priority_queue<Cand, std::vector<Cand>, std::greater<Cand>> heap;
  auto push_pair = [&](int k) {
    if (k < 0 || next[k] < 0) return;
    if (const auto* m = find_merge(sym[k].id, sym[next[k]].id)) heap.push({m->first, k, m->second});
  };
  for (int k = 0; k + 1 < n; ++k) push_pair(k);
  while (!heap.empty()) {
    Cand c = heap.top();
    heap.pop();
    // Lazy deletion: skip candidates whose pair no longer exists.
    if (!alive[c.pos] || next[c.pos] < 0) continue;
    int r = next[c.pos];
    const auto* m = find_merge(sym[c.pos].id, sym[r].id);
    if (!m || m->second != c.new_id || m->first != c.rank) continue;
    sym[c.pos].id = c.new_id;
    sym[c.pos].end = sym[r].end;
    alive[r] = 0;
    next[c.pos] = next[r];
    if (next[r] >= 0) prev[next[r]] = c.pos;
    push_pair(prev[c.pos]);
    push_pair(c.pos);
  }
  for (int k = 0; k >= 0 && k < n; k = next[k]) out.push_back({sym[k].id, sym[k].begin, sym[k].end});
}

void Bpe::tokenize(std::string_view word, bool byte_level, std::vector<BpeToken>& out) const {
  if (word.empty()) return;
  if (ignore_merges_) {
    // A word that is itself in the vocab is one token, whatever the merges would do (Llama 3).
    std::string key;
    if (byte_level) {
      const ByteLevelTable& bl = byte_level_table();
      for (unsigned char c : word) key += bl.byte_to_utf8[c];
    } else {
      key = word;
    }
    auto it = vocab_.find(key);
    if (it != vocab_.end()) return out.push_back({it->second, 0, (uint32_t)word.size()});
  }
  if (cut_before_metaspace_ && !byte_level) {
    // Parts start at a '▁' that follows a non-'▁' char (see bpe.h).
    size_t start = 0;
    for (size_t p = word.find(kMetaspace, 1); p != std::string_view::npos; p = word.find(kMetaspace, p + 1)) {
      bool after_metaspace =
          p >= kMetaspace.size() && word.compare(p - kMetaspace.size(), kMetaspace.size(), kMetaspace) == 0;
      if (after_metaspace) continue;  // inside a run of '▁'
      tokenize_cached(word.substr(start, p - start), byte_level, (uint32_t)start, out);
      start = p;
    }
    tokenize_cached(word.substr(start), byte_level, (uint32_t)start, out);
    return;
  }
  tokenize_cached(word, byte_level, 0, out);
}

void Bpe::tokenize_cached(std::string_view word, bool byte_level, uint32_t shift, std::vector<BpeToken>& out) const {
  if (word.empty()) return;
  const size_t start = out.size();
  const bool cacheable = word.size() <= kCacheMaxWordBytes;
  WordCache* cache = nullptr;
  if (cacheable) {
    thread_local uint64_t last_key = 0;
    thread_local WordCache* last_cache = nullptr;
    if (last_key != cache_key_) last_key = cache_key_, last_cache = &thread_cache(cache_key_);
    cache = last_cache;
    // The byte_level flag is fixed per tokenizer, so the word alone is the key.
    auto it = cache->find(std::string(word));
    if (it != cache->end()) out.insert(out.end(), it->second.begin(), it->second.end());
  }
  if (out.size() == start) {
    thread_local std::vector<Symbol> symbols;
    symbols.clear();
    initial_symbols(word, byte_level, symbols);
    merge(symbols, out);
    if (cache) {
      if (cache->size() >= kCacheCapacity) cache->clear();
      cache->emplace(std::string(word), std::vector<BpeToken>(out.begin() + start, out.end()));
    }
  }
  if (shift)
    for (size_t k = start; k < out.size(); ++k) out[k].begin += shift, out[k].end += shift;
}

void Bpe::tokenize_reference(std::string_view word, bool byte_level, std::vector<BpeToken>& out) const {
  if (word.empty()) return;
  if (ignore_merges_) {
    std::string key;
    if (byte_level) {
      for (unsigned char c : word) key += byte_level_table().byte_to_utf8[c];
    } else {
      key = word;
    }
    auto it = vocab_.find(key);
    if (it != vocab_.end()) return out.push_back({it->second, 0, (uint32_t)word.size()});
  }
  std::vector<Symbol> sym;
  initial_symbols(word, byte_level, sym);
  for (;;) {
    int best = -1;
    int32_t best_rank = 0, best_id = 0;
    for (size_t k = 0; k + 1 < sym.size(); ++k) {
      const auto* m = find_merge(sym[k].id, sym[k + 1].id);
      if (m && (best < 0 || m->first < best_rank)) best = (int)k, best_rank = m->first, best_id = m->second;
    }
    if (best < 0) break;
    sym[best].id = best_id;
    sym[best].end = sym[best + 1].end;
    sym.erase(sym.begin() + best + 1);
  }
  for (const Symbol& s : sym) out.push_back({s.id, s.begin, s.end});
}

}  // namespace rlhf::tok
