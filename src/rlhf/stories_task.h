// The task of `rlhf demo --base DIR`: RLHF on a model someone else pretrained on children's stories (stories260K,
// Karpathy's Llama trained on TinyStories), with a hidden "gold" preference for cheerful stories.
//
//   prompt:    the opening of a story                  e.g. "Once upon a time, there was a little dog named Max."
//   response:  the model's continuation (plain text, up to --max-new-tokens)
//
//   gold(y) = #distinct cheerful words - #distinct gloomy words - 0.5·#repeats of a cheerful word
//             - 1·[fewer than 3 words]
//
// over lower-cased words (letters only). The simulated person ranks the base model's continuations by gold plus
// noise; the reward model learns from those rankings only and never sees the rule, and PPO is scored on it on
// held-out openings. Repeats are penalised so that spamming one happy word is not the optimum: over-optimising a
// reward model that rewards "happy" shows up as a gold that stops rising while the proxy climbs.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace rlhf::demo {

double stories_gold(const std::string& prompt, const std::string& response);

// Every story opening of the task, in a fixed order (names × characters × openings: a few hundred).
std::vector<std::string> story_prompts();

// Writes prompts.jsonl (train_prompts) and eval_prompts.jsonl (eval_prompts, held out) of {"prompt"} into dir,
// disjoint, deterministic for a seed.
void write_story_prompts(const std::string& dir, int train_prompts, int eval_prompts, uint64_t seed);

}  // namespace rlhf::demo
