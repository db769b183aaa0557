// Direct Preference Optimisation (Rafailov et al. 2023) and IPO (Azar et al. 2023).
//
//   π_w = log π_θ(y_w|x), π_l = log π_θ(y_l|x)       sums of the response tokens' log-probs
//   ρ_w = log π_ref(y_w|x), ρ_l = log π_ref(y_l|x)   from the frozen starting model, computed ONCE before training
//   h   = (π_w − ρ_w) − (π_l − ρ_l)
//   sigmoid: L = −log σ(β·h)        ipo: L = (h − 1/(2β))²      (mean over the batch)
//
// Logged as TRL does: rewards/chosen = β(π_w − ρ_w), rewards/rejected = β(π_l − ρ_l), rewards/margins = their
// difference, rewards/accuracies = mean[rewards/chosen > rewards/rejected], logps/chosen, logps/rejected.
// Rankings are used as their preference pairs (each pair one example).
#pragma once
#include <torch/types.h>

#include <string>
#include <vector>

#include "model/model.h"
#include "rlhf/examples.h"
#include "train/loop.h"

namespace rlhf::dpo {

struct DpoConfig {
  double beta = 0.1;              // β: strength of the KL anchor to the reference
  std::string loss = "sigmoid";   // sigmoid | ipo
  int64_t batch_size = 8;         // pairs per batch
  int64_t pad_id = 0;
  torch::Device device = torch::kCPU;
  void validate() const;
};

// One pair, prompt ++ response with the loss mask on the response.
struct DpoPair {
  train::TokenSeq chosen, rejected;
  double ref_chosen = 0, ref_rejected = 0;  // filled by compute_reference_logprobs
};

std::vector<DpoPair> pairs_from_groups(const std::vector<PreferenceGroup>& groups);

// The summed response log-probs of each sequence: (N,). One forward of a right-padded batch.
torch::Tensor response_logprobs(TransformerLM& model, const std::vector<const train::TokenSeq*>& seqs, int64_t pad_id,
                                torch::Device device);

// Fills ref_chosen/ref_rejected with the frozen reference model, batch by batch, without grad.
void compute_reference_logprobs(TransformerLM& ref, std::vector<DpoPair>& pairs, int64_t batch_size, int64_t pad_id,
                                torch::Device device);

// policy_*, ref_*: (B,). Returns the mean loss; fills TRL-style metrics when m is given.
torch::Tensor dpo_loss(const torch::Tensor& policy_chosen, const torch::Tensor& policy_rejected,
                       const torch::Tensor& ref_chosen, const torch::Tensor& ref_rejected, double beta,
                       const std::string& loss_type, train::Metrics* m = nullptr);

train::LoopResult train_dpo(TransformerLM& policy, const std::vector<DpoPair>& train_pairs,
                            const std::vector<DpoPair>& eval_pairs, const DpoConfig& cfg,
                            const train::LoopOptions& loop);

}  // namespace rlhf::dpo
