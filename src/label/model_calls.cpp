// The model call site of the labelling tool; see model_calls.h.
#include "label/model_calls.h"

#include <nlohmann/json.hpp>

#include "common/error.h"

namespace rlhf::label {

std::vector<NewItem> generate_candidates(const std::string& model_dir, const std::vector<std::string>& prompts, int k,
                                         const SamplingOptions& sampling, bool chat, const std::string& device) {
  RLHF_CHECK(k >= 2, "label serve: --k must be at least 2 (a ranking of one candidate says nothing), got ", k);
  auto texts = generate_texts(model_dir, prompts, k, sampling, chat, device);
  RLHF_CHECK(texts.size() == prompts.size(), "generate_texts returned ", texts.size(), " lists for ", prompts.size(),
             " prompts");
  const std::string settings = nlohmann::json{{"temperature", sampling.temperature},
                                              {"top_k", sampling.top_k},
                                              {"top_p", sampling.top_p},
                                              {"max_new_tokens", sampling.max_new_tokens},
                                              {"greedy", sampling.greedy},
                                              {"seed", sampling.seed},
                                              {"chat", chat}}
                                   .dump();
  std::vector<NewItem> out;
  for (size_t i = 0; i < prompts.size(); ++i) out.push_back({prompts[i], texts[i], model_dir, settings});
  return out;
}

}  // namespace rlhf::label
