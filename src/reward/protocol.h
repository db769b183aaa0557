// The wire format shared by the HTTP and subprocess reward functions: OpenRLHF's remote reward-model protocol
// (openrlhf/utils/remote_rm_utils.py and openrlhf/cli/serve_rm.py), so that existing servers work unchanged.
//
//   request  {"query":   [str] (B,)  prompt + response, special tokens kept (what OpenRLHF decodes),
//             "prompts": [str] (B,)  the prompt as the policy saw it,
//             "labels":  [str] (B,)  the prompt line's label field (--label-key, default "answer"; "" if absent),
//             "responses": [str] (B,) the response alone (an addition: servers that ignore it are unaffected),
//             "iteration": int       the 1-based training iteration (0 outside training; also an addition)}
//   answer   {"rewards": [number] (B,) required, finite;
//             "scores": [number] (B,) optional (OpenRLHF uses it for filtering; ignored here);
//             "extra_logs": {name: [number] (B,) or number} optional, logged as reward/<component>/<name>}
#pragma once
#include <nlohmann/json.hpp>
#include <string>

#include "reward/batch.h"

namespace rlhf::reward {

nlohmann::json make_request(const Batch& batch);

// Reads an answer for a batch of B rows. `who` names the server or command in errors, e.g.
// "reward server http://127.0.0.1:5000/get_reward". Throws when it is not an object with B finite rewards.
Scores parse_answer(const std::string& body, size_t B, const std::string& who);

}  // namespace rlhf::reward
