#!/usr/bin/env python3
"""The real trainers as the benchmark peer: TRL's SFTTrainer, RewardTrainer, DPOTrainer and GRPOTrainer, and
transformers' generate, on the workloads of `rlhf bench` (same model shapes, batch, lengths, hyperparameters,
threads; random weights and tokens), printing one JSON line with `rlhf bench`'s keys so that bench/compare.sh can
put the two side by side.

  python bench/trl/trl_bench.py --task sft --model gpt2-tiny --steps 3 --threads 2

Tasks (tokens counted as `rlhf bench` counts them):
  sft       SFTTrainer, B sequences of T tokens (pre-tokenized `input_ids`), loss on every token; B·T per step
  rm        RewardTrainer, B pairs (`chosen_ids`, `rejected_ids`) of T tokens, one forward of both; 2·B·T per step
  dpo       DPOTrainer (sigmoid, β 0.1, reference model computed every step: TRL's default), B pairs of a P-token
            prompt and two G-token responses; 2·B·(P+G) per step
  grpo      GRPOTrainer, B completions per step (B / group prompts × group generations), P + G tokens, temperature τ,
            β 0.04 (a reference model), scored by a reward model of the same shape on the token ids; B·(P+G)
  generate  model.generate(do_sample, temperature τ, top_k 0, top_p 1, KV cache), B prompts of P tokens, G new;
            new tokens per call
TRL 1.16 has no PPOTrainer (neither in trl nor trl.experimental); PPO's peer stays ../shared/bench/torch_ref.py,
TRL's PPO algorithm written out step by step, run by bench/trl/run.sh on the same torch.

Timing: one warm-up step, then --steps timed steps; a step's time runs from the end of the previous step to the end
of this one (Trainer's on_step_end), so it includes data loading and collation as the trainer does them. GRPO's step
is split into rollout (generate), scoring (reward model + reference log-probs) and training (the rest).
"""
import argparse
import copy
import json
import math
import os
import resource
import sys
import time

_early = argparse.ArgumentParser(add_help=False)
_early.add_argument("--threads", default="2")
_threads = _early.parse_known_args()[0].threads
for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ.setdefault(var, str(_threads))
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("WANDB_DISABLED", "true")

import torch  # noqa: E402
import transformers  # noqa: E402
from datasets import Dataset  # noqa: E402
from tokenizers import Tokenizer, models as tk_models, pre_tokenizers, decoders  # noqa: E402
from transformers import AutoConfig, AutoModelForCausalLM, AutoModelForSequenceClassification  # noqa: E402
from transformers import PreTrainedTokenizerFast, TrainerCallback  # noqa: E402
import trl  # noqa: E402

PAD, EOS = 0, 1  # as `rlhf bench`: data tokens drawn from [2, vocab)

# The shapes of src/rlhf/bench.cpp model_config_json (transformers' config fields).
CONFIGS = {
    "gpt2-tiny": dict(model_type="gpt2", n_layer=4, n_embd=256, n_head=4, vocab_size=8192, n_positions=512,
                      layer_norm_epsilon=1e-5, activation_function="gelu_new"),
    "gpt2-small": dict(model_type="gpt2", n_layer=12, n_embd=768, n_head=12, vocab_size=50257, n_positions=1024,
                       layer_norm_epsilon=1e-5, activation_function="gelu_new"),
    "llama-tiny": dict(model_type="llama", num_hidden_layers=4, hidden_size=256, num_attention_heads=8,
                       num_key_value_heads=2, intermediate_size=688, vocab_size=8192, rope_theta=10000.0,
                       rms_norm_eps=1e-6, hidden_act="silu", tie_word_embeddings=False),
}


def model_config(name):
    kw = dict(CONFIGS[name])
    mt = kw.pop("model_type")
    # No dropout anywhere (TRL disables it in its RL trainers; `rlhf bench` has none), pad/eos as the data's.
    drop = dict(resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0) if mt == "gpt2" else dict(attention_dropout=0.0)
    return AutoConfig.for_model(mt, pad_token_id=PAD, eos_token_id=EOS, bos_token_id=EOS, num_labels=1,
                                **drop, **kw)


def make_models(name, classifier, seed):
    torch.manual_seed(seed)
    cfg = model_config(name)
    cls = AutoModelForSequenceClassification if classifier else AutoModelForCausalLM
    return cls.from_config(cfg, attn_implementation="sdpa")


def word_tokenizer(vocab_size):
    """A word-level tokenizer over the model's whole vocabulary ("w0" … "w{V-1}", split on spaces), so that a prompt
    text of P words is exactly P ids and ids decode back to the same words (GRPOTrainer takes prompts as text)."""
    vocab = {f"w{i}": i for i in range(vocab_size)}
    tok = Tokenizer(tk_models.WordLevel(vocab, unk_token="w0"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tok.decoder = decoders.WordPiece(prefix="##", cleanup=False)  # joins words with spaces
    t = PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="w0", eos_token="w1", bos_token="w1",
                                unk_token="w0")
    t.padding_side = "left"
    return t


def rand_ids(gen, vocab, *shape):
    return torch.randint(2, vocab, shape, generator=gen)


class StepTimer(TrainerCallback):
    """Wall time between consecutive on_step_end calls; the first (warm-up) step is dropped."""

    def __init__(self):
        self.ends = []

    def on_train_begin(self, args, state, control, **kw):
        self.ends = [time.perf_counter()]

    def on_step_end(self, args, state, control, **kw):
        self.ends.append(time.perf_counter())

    def times(self):
        d = [b - a for a, b in zip(self.ends, self.ends[1:])]
        return d[1:]  # drop the warm-up step


def common_args(a):
    return dict(output_dir=f"/tmp/trl-bench-{os.getpid()}", per_device_train_batch_size=a.batch, max_steps=1 + a.steps,
                learning_rate=1e-5, lr_scheduler_type="constant", warmup_steps=0, weight_decay=0.0,
                adam_epsilon=1e-8, max_grad_norm=a.max_grad_norm, logging_steps=1_000_000, save_strategy="no",
                eval_strategy="no", report_to="none", disable_tqdm=True, use_cpu=a.device == "cpu",
                dataloader_num_workers=0, seed=a.seed, data_seed=a.seed, bf16=False, fp16=False,
                remove_unused_columns=False, gradient_checkpointing=a.gradient_checkpointing)


def run_trainer(trainer, timer):
    trainer.add_callback(timer)
    trainer.train()
    return timer.times()


def task_sft(a, gen):
    model = make_models(a.model, False, a.seed)
    V = model.config.vocab_size
    ids = rand_ids(gen, V, (1 + a.steps) * a.batch, a.seq_len)
    ds = Dataset.from_dict({"input_ids": ids.tolist()})
    args = trl.SFTConfig(max_length=a.seq_len, packing=False, dataset_num_proc=None, **common_args(a))
    trainer = trl.SFTTrainer(model=model, args=args, train_dataset=ds, processing_class=word_tokenizer(V))
    t = run_trainer(trainer, StepTimer())
    return dict(step_times=t, tokens=a.batch * a.seq_len * a.steps, params=model.num_parameters())


def task_rm(a, gen):
    model = make_models(a.model, True, a.seed)
    V = model.config.vocab_size
    n = (1 + a.steps) * a.batch
    ds = Dataset.from_dict({"chosen_ids": rand_ids(gen, V, n, a.seq_len).tolist(),
                            "rejected_ids": rand_ids(gen, V, n, a.seq_len).tolist()})
    args = trl.RewardConfig(max_length=a.seq_len, **common_args(a))
    trainer = trl.RewardTrainer(model=model, args=args, train_dataset=ds, processing_class=word_tokenizer(V))
    t = run_trainer(trainer, StepTimer())
    return dict(step_times=t, tokens=2 * a.batch * a.seq_len * a.steps, params=model.num_parameters())


def task_dpo(a, gen):
    model = make_models(a.model, False, a.seed)
    ref = copy.deepcopy(model)
    V = model.config.vocab_size
    n = (1 + a.steps) * a.batch
    # DPOTrainer 1.16 tokenizes text itself: words of the word-level tokenizer, one id each (see word_tokenizer).
    words = lambda ids, lead: [lead + " ".join(f"w{i}" for i in row) for row in ids.tolist()]
    ds = Dataset.from_dict({"prompt": words(rand_ids(gen, V, n, a.prompt_len), ""),
                            "chosen": words(rand_ids(gen, V, n, a.gen_len), " "),
                            "rejected": words(rand_ids(gen, V, n, a.gen_len), " ")})
    args = trl.DPOConfig(beta=0.1, loss_type=["sigmoid"], max_length=a.prompt_len + a.gen_len,
                         precompute_ref_log_probs=False, **common_args(a))
    trainer = trl.DPOTrainer(model=model, ref_model=ref, args=args, train_dataset=ds,
                             processing_class=word_tokenizer(V))
    t = run_trainer(trainer, StepTimer())
    return dict(step_times=t, tokens=2 * a.batch * (a.prompt_len + a.gen_len) * a.steps,
                params=model.num_parameters())


class Phases:
    """Accumulated seconds per phase, attributed to the step in which they ran (GRPO)."""

    def __init__(self):
        self.cur = {"rollout_s": 0.0, "scoring_s": 0.0}
        self.per_step = []

    def wrap(self, obj, name, phase):
        fn = getattr(obj, name)

        def timed(*args, **kw):
            t = time.perf_counter()
            try:
                return fn(*args, **kw)
            finally:
                self.cur[phase] += time.perf_counter() - t

        setattr(obj, name, timed)

    def close_step(self):
        self.per_step.append(self.cur)
        self.cur = {"rollout_s": 0.0, "scoring_s": 0.0}


class PhaseTimer(StepTimer):
    def __init__(self, phases):
        super().__init__()
        self.phases = phases

    def on_step_end(self, args, state, control, **kw):
        super().on_step_end(args, state, control, **kw)
        self.phases.close_step()


def task_grpo(a, gen):
    assert a.batch % a.group == 0, "--batch (completions per step) must be a multiple of --group"
    # GRPOTrainer builds its reference model from the policy's path (beta > 0): the policy goes in as a folder.
    model_dir = f"/tmp/trl-bench-grpo-{os.getpid()}"
    make_models(a.model, False, a.seed).save_pretrained(model_dir)
    rm = make_models(a.model, True, a.seed + 7).eval()
    V = rm.config.vocab_size
    n_prompts = (1 + a.steps) * (a.batch // a.group)
    pids = rand_ids(gen, V, n_prompts, a.prompt_len).tolist()
    ds = Dataset.from_dict({"prompt": [" ".join(f"w{i}" for i in p) for p in pids], "pids": pids})

    def reward_model(prompts, completions, completion_ids, pids, **kw):
        # The reward model on prompt ++ completion ids, right-padded, at the last real token (as `rlhf` scores a
        # rollout; TRL's own model-reward path would detokenize and retokenize the text).
        seqs = [p + c for p, c in zip(pids, completion_ids)]
        T = max(len(s) for s in seqs)
        ids = torch.full((len(seqs), T), PAD, dtype=torch.long)
        mask = torch.zeros_like(ids)
        for i, s in enumerate(seqs):
            ids[i, : len(s)] = torch.tensor(s)
            mask[i, : len(s)] = 1
        with torch.inference_mode():
            return rm(input_ids=ids, attention_mask=mask).logits[:, 0].tolist()

    args = trl.GRPOConfig(num_generations=a.group, max_completion_length=a.gen_len, temperature=a.temperature,
                          top_k=0, top_p=1.0, beta=0.04, num_iterations=1, epsilon=0.2, loss_type="dapo",
                          scale_rewards="group", model_init_kwargs={"dtype": torch.float32}, **common_args(a))
    trainer = trl.GRPOTrainer(model=model_dir, reward_funcs=[reward_model], args=args, train_dataset=ds,
                              processing_class=word_tokenizer(V))
    model = trainer.model
    assert trainer.ref_model is not None
    ph = Phases()
    ph.wrap(trainer, "_generate_single_turn", "rollout_s")
    ph.wrap(trainer, "_calculate_rewards", "scoring_s")
    inner = trainer._get_per_token_logps_and_entropies

    def ref_or_old_logps(m, *args, **kw):  # outside compute_loss: the reference (and old policy) log-probs
        if m is trainer.ref_model or not torch.is_grad_enabled():
            t = time.perf_counter()
            try:
                return inner(m, *args, **kw)
            finally:
                ph.cur["scoring_s"] += time.perf_counter() - t
        return inner(m, *args, **kw)

    trainer._get_per_token_logps_and_entropies = ref_or_old_logps
    t = run_trainer(trainer, PhaseTimer(ph))
    steps = ph.per_step[1:]
    out = dict(step_times=t, tokens=a.batch * (a.prompt_len + a.gen_len) * a.steps, params=model.num_parameters())
    out["rollout_s"] = sum(s["rollout_s"] for s in steps) / a.steps
    out["scoring_s"] = sum(s["scoring_s"] for s in steps) / a.steps
    out["train_s"] = sum(t) / a.steps - out["rollout_s"] - out["scoring_s"]
    out["group"] = a.group
    return out


def task_generate(a, gen):
    model = make_models(a.model, False, a.seed).eval()
    V = model.config.vocab_size
    times, tokens, checksum = [], 0, 0
    for i in range(1 + a.steps):
        ids = rand_ids(gen, V, a.batch, a.prompt_len)
        t = time.perf_counter()
        with torch.inference_mode():
            out = model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), do_sample=True,
                                 temperature=a.temperature + 1e-7, top_k=0, top_p=1.0, max_new_tokens=a.gen_len,
                                 eos_token_id=EOS, pad_token_id=PAD, use_cache=True)
        dt = time.perf_counter() - t
        if i > 0:
            times.append(dt)
            tokens += a.batch * (out.shape[1] - a.prompt_len)
            checksum += int((out * torch.arange(1, out.shape[1] + 1)).sum())
    return dict(step_times=times, tokens=tokens, params=model.num_parameters(), output_checksum=checksum)


TASKS = {"sft": task_sft, "rm": task_rm, "dpo": task_dpo, "grpo": task_grpo, "generate": task_generate}
TOKENS_ARE = {"sft": "B*T", "rm": "2*B*T (chosen+rejected)", "dpo": "2*B*(P+G) (chosen+rejected)",
              "grpo": "B*(P+G) per iteration (B completions)", "generate": "new tokens"}


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--task", choices=list(TASKS), default="sft")
    p.add_argument("--model", choices=list(CONFIGS), default="gpt2-tiny")
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--prompt-len", type=int, default=64)
    p.add_argument("--gen-len", type=int, default=64)
    p.add_argument("--seq-len", type=int, default=None, help="sft/rm sequence length T (default prompt+gen)")
    p.add_argument("--steps", type=int, default=3, help="timed steps after one warm-up")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--temperature", type=float, default=0.7)
    p.add_argument("--group", type=int, default=4, help="grpo: generations per prompt (num_generations)")
    p.add_argument("--max-grad-norm", type=float, default=1.0)
    p.add_argument("--device", default="cpu")
    p.add_argument("--gradient-checkpointing", action="store_true",
                   help="TRL 1.16's default; off here so that both sides do the same work (`rlhf` recomputes nothing)")
    a = p.parse_args()
    if a.seq_len is None:
        a.seq_len = a.prompt_len + a.gen_len
    return a


def main():
    a = parse_args()
    torch.set_num_threads(a.threads)
    transformers.logging.set_verbosity_error()
    gen = torch.Generator().manual_seed(a.seed + 1)
    r = TASKS[a.task](a, gen)
    t = r.pop("step_times")
    wall = sum(t)
    res = {"impl": f"trl-{trl.__version__}" if a.task != "generate" else f"transformers-{transformers.__version__}",
           "torch": torch.__version__, "transformers": transformers.__version__, "trl": trl.__version__,
           "task": a.task, "model": a.model, "threads": a.threads, "seed": a.seed, "device": a.device,
           "dtype": "fp32", "batch": a.batch, "gradient_checkpointing": a.gradient_checkpointing, "steps": a.steps, "torch_threads": torch.get_num_threads(),
           "blas": "mkl" if torch.backends.mkl.is_available() else "other",
           "env": {k: os.environ.get(k) for k in ("OPENBLAS_CORETYPE", "OMP_NUM_THREADS", "MKL_NUM_THREADS")}}
    if a.task in ("sft", "rm"):
        res["seq_len"] = a.seq_len
    else:
        res.update(prompt_len=a.prompt_len, gen_len=a.gen_len)
    res.update(r)
    res["tokens_are"] = TOKENS_ARE[a.task]
    res["wall_s"] = round(wall, 4)
    res["step_s"] = round(wall / a.steps, 4)
    res["step_s_min"] = round(min(t), 4)
    res["step_s_median"] = round(sorted(t)[len(t) // 2], 4)
    res["tokens_per_s"] = round(r["tokens"] / wall, 1)
    if a.task == "grpo":
        res["iter_s"] = res["step_s"]
        for k in ("rollout_s", "scoring_s", "train_s"):
            res[k] = round(res[k], 4)
    res["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    print(json.dumps(res))


if __name__ == "__main__":
    sys.exit(main())
