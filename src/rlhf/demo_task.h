// The demo's built-in task: a tiny language of one-sentence reviews, with a hidden "gold" preference.
//
//   prompt:    "<det> <noun> <verb>"                    e.g. "the cat was"
//   response:  " <adj>[, <adj>] [and <adj>]."           e.g. " warm, calm and very sweet."
//
// Demonstrations (SFT data) use 1-3 distinct adjectives, each positive or negative with probability 1/2: SFT
// learns the language and to stop, not what people prefer. The gold preference (the simulated person) is
//
//   gold(y) = (#positive - #negative adjectives) - 1·(#repeated adjectives) - 1·max(0, #adjectives - 3)
//             - 2·[malformed: unknown word, no final ".", or empty]
//
// so the best answers are three distinct positive adjectives. The reward model learns it from noisy rankings
// of SFT samples, which never repeat an adjective or use more than three: beyond that it must extrapolate,
// which is where over-optimisation shows (Gao et al. 2022).
#pragma once
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace rlhf::demo {

double gold_score(const std::string& prompt, const std::string& response);

// Writes a byte-level BPE tokenizer.json (GPT-2 style, one token per word of the language, plus every byte)
// and tokenizer_config.json into dir. <|endoftext|> is BOS, EOS and PAD.
void write_tokenizer(const std::string& dir);
// The same kind of tokenizer for any word list (empty: bytes only, plus <|endoftext|>).
void write_word_tokenizer(const std::string& dir, const std::vector<std::string>& words);

// The demos' base model: GPT-2 shaped, 2 layers × 64 wide, 4 heads, no dropout, tied embeddings, for the
// tokenizer in tokenizer_dir (its vocabulary size and BOS/EOS/PAD ids). A config.json object.
nlohmann::json base_model_config(const std::string& tokenizer_dir, int n_positions);

struct DataSizes {
  int pretrain_lines = 4000;  // plain text for the base model
  int sft_examples = 2000;    // prompt/completion demonstrations
  int train_prompts = 256;    // prompts for ranking and RL (drawn from the training prompts)
  int eval_prompts = 64;      // held-out prompts: never seen by SFT, the reward model or RL
};

// Writes pretrain.jsonl ({"text"}), sft.jsonl ({"prompt","completion"}), prompts.jsonl and eval_prompts.jsonl
// ({"prompt"}) into dir. Deterministic for a seed.
void write_data(const std::string& dir, const DataSizes& sizes, uint64_t seed);

// All prompts of the language, in a fixed order (for tests).
std::vector<std::string> all_prompts();

}  // namespace rlhf::demo
