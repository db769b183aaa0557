"""TRL's own loss code on identical inputs (issue 13, part 3): ours equal TRL 1.16's to 1e-6, in float64.

Our side: the C++ functions (src/rlhf/dpo.h, reward.h, ppo.h, grpo.h) through the test-only tests/tools/loss_probe.cpp
(JSON in, JSON out, float64). TRL's side: TRL's own methods, called unbound on a stub `self` that carries only the
attributes they read (an Accelerator stand-in for one process, the trainer's options) and a stub model that returns
the given log-probs / scores, so that the math that runs is TRL's text, not a copy:

  DPO sigmoid   trl.trainer.dpo_trainer.DPOTrainer._compute_loss, loss_type "sigmoid", reference log-probs
                precomputed (ref_chosen_logps / ref_rejected_logps in the batch). Loss and the logged rewards/*.
  DPO IPO       the same, loss_type "ipo". Convention difference: TRL divides each sequence's log-ratio by its
                number of completion tokens (its comment: as the IPO authors confirmed); the anchor (RLHF.md, IPO
                eq. 17) and our dpo_loss use the summed log-ratios. Ours equals TRL's when given the per-token means.
  Reward        trl.trainer.reward_trainer.RewardTrainer.compute_loss with a per-pair "margin" and
                center_rewards_coefficient 0.01: −log σ(r_w − r_l − m) + c·mean((r_w + r_l)²). TRL's batch is all
                chosen then all rejected; ours is pair after pair (one pairwise group each).
  PPO clipped   TRL 1.16 has no PPO trainer any more (trl/experimental/ppo is gone), so the clipped surrogate is
  surrogate     checked against GRPOTrainer._compute_loss with per-token (B, T) advantages (its documented hook for
                subclasses), beta 0, loss_type "dapo" (TRL's default; one process, one micro-batch: the sum over
                valid tokens / their count, i.e. our mean over valid tokens), ε 0.2.
  GRPO loss     GRPOTrainer._compute_loss, loss_type "dapo", beta 0.04: −min(ρA, clip(ρ)A) + β·k3 per token, the
                same token mean; our grpo_loss adds β·mean_valid(k3) to the clipped mean: identical.
  GRPO          the advantage lines of GRPOTrainer._generate_and_score_completions (scale_rewards "group"), cut out
  advantages    of TRL's source between two of its own lines and executed: (s − mean_g)/(std_g + 1e-4), std with
                Bessel's correction (TRL's nanstd); ours with grpo_eps 1e-4.
Not covered: PPO's per-token KL reward, GAE and value loss have no counterpart in TRL 1.16 to call.
Run: RLHF_BIN=build/rlhf bash tests/py/run.sh tests/py/test_trl_losses.py
"""
import inspect
import json
import os
import subprocess
import textwrap
import unittest
from collections import defaultdict
from types import SimpleNamespace

import torch
from trl.trainer.dpo_trainer import DPOTrainer
from trl.trainer.grpo_trainer import GRPOTrainer
from trl.trainer.reward_trainer import RewardTrainer
from trl.trainer.utils import nanstd

TOL = 1e-6
PROBE = os.environ["RLHF_LOSS_PROBE"]
torch.set_default_dtype(torch.float64)


def ours(op, **inputs):
    """The C++ function through rlhf_loss_probe; tensors go as nested lists of float64."""
    req = {"op": op}
    for k, v in inputs.items():
        req[k] = v.tolist() if isinstance(v, torch.Tensor) else v
    p = subprocess.run([PROBE], input=json.dumps(req), capture_output=True, text=True)
    if p.returncode != 0:
        raise AssertionError(f"rlhf_loss_probe {op}: {p.stderr}")
    return json.loads(p.stdout)


class OneProcess:
    """accelerate.Accelerator as TRL's loss code uses it, for one process."""
    device = torch.device("cpu")
    num_processes = 1
    sync_gradients = True
    is_main_process = True

    def gather(self, x):
        return x

    gather_for_metrics = gather

    def reduce(self, x, reduction="sum"):
        return x


def stub_trainer(**attrs):
    return SimpleNamespace(accelerator=OneProcess(), model=SimpleNamespace(training=True),
                           _metrics={"train": defaultdict(list), "eval": defaultdict(list)}, _total_train_tokens=0,
                           _tp_size=1, aux_loss_enabled=False, **attrs)


def lengths_mask(B, T, g, min_len=2):
    """(B, T) 0/1: a prefix of random length >= min_len per row."""
    n = torch.randint(min_len, T + 1, (B,), generator=g)
    return (torch.arange(T).unsqueeze(0) < n.unsqueeze(1)).double()


class Report:
    worst = {}

    @classmethod
    def add(cls, name, a, b):
        d = max(abs(x - y) for x, y in zip(a, b))
        cls.worst[name] = max(cls.worst.get(name, 0.0), d)
        return d


class TrlLosses(unittest.TestCase):
    @classmethod
    def tearDownClass(cls):
        print("\nmax |ours − TRL| over 5 seeds each:")
        for k, v in Report.worst.items():
            print(f"  {k:22s} {v:.2e}")

    # ---------------------------------------------------------------- DPO
    def dpo_case(self, loss_type, seed, beta):
        g = torch.Generator().manual_seed(seed)
        B, T = 6, 10
        # TRL's batch is [chosen; rejected]; completion_mask covers the response (position 0 is the prompt),
        # log_probs are per predicted token (T − 1 of them), 0 off the completion as the fused head gives them.
        completion_mask = torch.zeros(2 * B, T, dtype=torch.long)
        shift = lengths_mask(2 * B, T - 1, g, min_len=1).long()
        completion_mask[:, 1:] = shift
        per_token = -torch.rand(2 * B, T - 1, generator=g) * 3 * shift
        ref = -torch.rand(2 * B, generator=g) * 3 * shift.sum(1)
        outputs = SimpleNamespace(log_probs=per_token, entropy=torch.rand(2 * B, T - 1, generator=g),
                                  mean_logits=torch.rand(2 * B, T - 1, generator=g),
                                  is_top1=torch.zeros(2 * B, T - 1, dtype=torch.bool))
        trainer = stub_trainer(beta=beta, loss_types=[loss_type], loss_weights=[1.0], ld_alpha=None,
                               precompute_ref_logps=True, f_divergence_type="reverse_kl", use_weighting=False,
                               label_smoothing=0.0)
        inputs = {"input_ids": torch.randint(3, 50, (2 * B, T), generator=g), "attention_mask": torch.ones(2 * B, T),
                  "completion_mask": completion_mask, "ref_chosen_logps": ref[:B], "ref_rejected_logps": ref[B:]}
        theirs = DPOTrainer._compute_loss(trainer, lambda **kw: outputs, inputs, return_outputs=False).item()
        seq = per_token.sum(1)
        if loss_type == "ipo":  # TRL's per-token mean (see the top); our dpo_loss takes sums, so give it the means
            n = completion_mask.sum(1).double()
            seq, ref = seq / n, ref / n
        mine = ours("dpo", policy_chosen=seq[:B], policy_rejected=seq[B:], ref_chosen=ref[:B], ref_rejected=ref[B:],
                    beta=beta, loss_type=loss_type)
        self.assertLessEqual(Report.add(f"dpo {loss_type} loss", [mine["loss"]], [theirs]), TOL)
        if loss_type == "sigmoid":
            for k in ("rewards/chosen", "rewards/rejected", "rewards/margins", "rewards/accuracies", "logps/chosen",
                      "logps/rejected"):
                self.assertLessEqual(Report.add("dpo metrics", [mine[k]], [trainer._metrics["train"][k][-1]]), TOL, k)

    def test_dpo_sigmoid(self):
        for seed in range(5):
            self.dpo_case("sigmoid", seed, beta=0.1)

    def test_dpo_ipo(self):
        for seed in range(5):
            self.dpo_case("ipo", seed, beta=0.5)

    # ---------------------------------------------------------------- reward model
    def test_reward_pairwise_margin_center(self):
        for seed in range(5):
            g = torch.Generator().manual_seed(seed)
            B = 7
            chosen, rejected = torch.randn(B, generator=g) * 2, torch.randn(B, generator=g) * 2
            margin = torch.rand(B, generator=g)
            trainer = stub_trainer(args=SimpleNamespace(center_rewards_coefficient=0.01))
            logits = torch.cat([chosen, rejected]).unsqueeze(-1)  # (2B, 1): TRL's [chosen; rejected]
            inputs = {"margin": margin, "attention_mask": torch.ones(2 * B, 4)}
            theirs = RewardTrainer.compute_loss(trainer, lambda **kw: SimpleNamespace(logits=logits), inputs).item()
            scores = torch.stack([chosen, rejected], 1).reshape(-1)  # ours: pair after pair
            groups = [{"size": 2, "pairs": [[0, 1]], "margins": [m]} for m in margin.tolist()]
            mine = ours("reward", scores=scores, groups=groups, center_coef=0.01)
            self.assertLessEqual(Report.add("reward loss", [mine["loss"]], [theirs]), TOL)
            self.assertLessEqual(Report.add("reward metrics", [mine["accuracy"], mine["margin"]],
                                            [trainer._metrics["train"]["accuracy"][-1],
                                             trainer._metrics["train"]["margin"][-1]]), TOL)

    # ---------------------------------------------------------------- clipped surrogate (PPO, GRPO)
    def grpo_trl(self, logp, old, ref, adv, mask, beta):
        trainer = stub_trainer(
            beta=beta, loss_type="dapo", epsilon_low=0.2, epsilon_high=0.2, importance_sampling_level="token",
            top_entropy_quantile=1.0, off_policy_mask_threshold=None, use_vllm=False,
            vllm_importance_sampling_correction=False, current_gradient_accumulation_steps=1,
            _entropy_bonus_enabled=False, max_completion_length=mask.size(1),
            args=SimpleNamespace(use_bias_correction_kl=False, delta=None, steps_per_generation=1),
            _get_per_token_logps_and_entropies=lambda *a, **kw: (logp, torch.zeros_like(logp), None))
        inputs = {"prompt_ids": torch.ones(logp.size(0), 2, dtype=torch.long),
                  "prompt_mask": torch.ones(logp.size(0), 2, dtype=torch.long),
                  "completion_ids": torch.ones(logp.size(0), logp.size(1), dtype=torch.long),
                  "completion_mask": mask, "advantages": adv, "old_per_token_logps": old,
                  "num_items_in_batch": mask.sum()}
        if beta:
            inputs["ref_per_token_logps"] = ref
        loss = GRPOTrainer._compute_loss(trainer, None, inputs).item()
        return loss, trainer._metrics["train"]

    def random_logps(self, g, B, T):
        old = -torch.rand(B, T, generator=g) * 4
        logp = old + torch.randn(B, T, generator=g) * 0.3  # ratios spread over both sides of [0.8, 1.2]
        ref = old + torch.randn(B, T, generator=g) * 0.3
        return logp, old, ref, lengths_mask(B, T, g)

    def test_ppo_clipped_surrogate(self):
        for seed in range(5):
            g = torch.Generator().manual_seed(100 + seed)
            logp, old, _, mask = self.random_logps(g, 5, 9)
            adv = torch.randn(5, 9, generator=g) * mask
            theirs, _ = self.grpo_trl(logp, old, None, adv, mask, beta=0.0)
            mine = ours("ppo_policy_loss", logp=logp, old_logp=old, advantages=adv, mask=mask, clip_eps=0.2)
            self.assertLessEqual(Report.add("ppo clipped surrogate", [mine["loss"]], [theirs]), TOL)

    def test_grpo_loss(self):
        for seed in range(5):
            g = torch.Generator().manual_seed(200 + seed)
            logp, old, ref, mask = self.random_logps(g, 6, 8)
            adv = torch.randn(6, generator=g)
            theirs, metrics = self.grpo_trl(logp, old, ref, adv, mask, beta=0.04)
            mine = ours("grpo_loss", logp=logp, old_logp=old, ref_logp=ref, advantages=adv, mask=mask, clip_eps=0.2,
                        beta=0.04)
            self.assertLessEqual(Report.add("grpo loss", [mine["loss"]], [theirs]), TOL)
            self.assertLessEqual(Report.add("grpo kl (k3)", [mine["kl"]], [metrics["kl"][-1]]), TOL)

    def test_grpo_advantages(self):
        # TRL's own lines, from the first to the last line of its "group" scaling, run on our scores.
        src = inspect.getsource(GRPOTrainer._generate_and_score_completions).splitlines()
        first = next(i for i, l in enumerate(src) if "mean_grouped_rewards = torch.nanmean(" in l)
        last = next(i for i, l in enumerate(src) if i > first and "is_std_zero = torch.isclose(" in l)
        block = textwrap.dedent("\n".join(src[first:last + 1]))
        for seed in range(5):
            g = torch.Generator().manual_seed(300 + seed)
            G = 4
            rewards = torch.randn(5 * G, generator=g)
            scope = {"torch": torch, "nanstd": nanstd, "rewards": rewards, "num_generations": G,
                     "self": SimpleNamespace(scale_rewards="group")}
            exec(block, scope)
            mine = ours("grpo_advantages", scores=rewards, group_size=G, eps=1e-4)["advantages"]
            self.assertLessEqual(Report.add("grpo advantages", mine, scope["advantages"].tolist()), TOL)


if __name__ == "__main__":
    unittest.main()
