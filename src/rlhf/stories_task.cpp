#include "rlhf/stories_task.h"

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <random>
#include <set>

#include "common/error.h"

namespace rlhf::demo {
namespace {

// Words of TinyStories' register (the model knows them); the stems cover the inflections the stories use.
const std::set<std::string> kCheerful = {"happy", "happily", "smile", "smiled", "smiles", "laugh", "laughed",
                                         "fun", "love", "loved", "loves", "friend", "friends", "kind", "nice",
                                         "hug", "hugged", "glad", "joy", "play", "played", "together", "best"};
const std::set<std::string> kGloomy = {"sad", "cry", "cried", "crying", "angry", "mad", "scared", "afraid",
                                       "hurt", "bad", "broke", "broken", "lost", "mean", "sorry", "alone"};

const std::vector<std::string> kNames = {"Lily", "Tom", "Ben", "Sue", "Max", "Mia", "Tim", "Anna"};
const std::vector<std::string> kCharacters = {"girl", "boy", "dog", "cat", "bird", "bunny"};
// {N} = name, {C} = character.
const std::vector<std::string> kOpenings = {
    "Once upon a time, there was a little {C} named {N}.",
    "One day, a {C} named {N} went to the park.",
    "{N} was a little {C} who lived in a big house.",
    "There once was a {C} called {N}.",
    "{N} the {C} woke up early one morning.",
    "Once upon a time, {N} the {C} found a box.",
};

std::string fill(std::string s, const std::string& name, const std::string& ch) {
  for (auto [key, val] : {std::pair<std::string, std::string>{"{N}", name}, {"{C}", ch}})
    for (size_t p; (p = s.find(key)) != std::string::npos;) s.replace(p, key.size(), val);
  return s;
}

std::vector<std::string> lower_words(const std::string& text) {
  std::vector<std::string> out;
  std::string cur;
  for (char c : text + " ") {
    if (std::isalpha(static_cast<unsigned char>(c))) cur += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    else if (!cur.empty()) {
      out.push_back(cur);
      cur.clear();
    }
  }
  return out;
}

}  // namespace

double stories_gold(const std::string& prompt, const std::string& response) {
  (void)prompt;
  const auto words = lower_words(response);
  std::map<std::string, int> cheerful;
  std::set<std::string> gloomy;
  for (const auto& w : words) {
    if (kCheerful.count(w)) ++cheerful[w];
    if (kGloomy.count(w)) gloomy.insert(w);
  }
  double repeats = 0;
  for (const auto& [w, n] : cheerful) repeats += n - 1;
  return static_cast<double>(cheerful.size()) - static_cast<double>(gloomy.size()) - 0.5 * repeats -
         (words.size() < 3 ? 1.0 : 0.0);
}

std::vector<std::string> story_prompts() {
  std::vector<std::string> out;
  for (const auto& o : kOpenings)
    for (const auto& c : kCharacters)
      for (const auto& n : kNames) out.push_back(fill(o, n, c));
  return out;
}

void write_story_prompts(const std::string& dir, int train_prompts, int eval_prompts, uint64_t seed) {
  auto prompts = story_prompts();
  RLHF_CHECK(train_prompts + eval_prompts <= static_cast<int>(prompts.size()), "demo --base: ", train_prompts,
             " + ", eval_prompts, " prompts asked, the task has ", prompts.size());
  std::mt19937_64 rng(seed);
  std::shuffle(prompts.begin(), prompts.end(), rng);
  std::filesystem::create_directories(dir);
  auto write = [&](const std::string& name, size_t from, size_t n) {
    const std::string path = dir + "/" + name, tmp = path + ".tmp";
    {
      std::ofstream out(tmp);
      for (size_t i = from; i < from + n; ++i) out << nlohmann::json{{"prompt", prompts[i]}}.dump() << "\n";
      RLHF_CHECK(out, tmp, ": write failed (hint: is the disk full?)");
    }
    std::filesystem::rename(tmp, path);
  };
  write("eval_prompts.jsonl", 0, eval_prompts);
  write("prompts.jsonl", eval_prompts, train_prompts);
}

}  // namespace rlhf::demo
