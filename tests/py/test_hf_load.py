"""transformers loads what rlhf writes (issue 13, part 1).

Runs the real commands for a few steps on the tiny fixtures of tests/data/models (all four families: gpt2, llama,
qwen2, qwen3; LM and reward heads; sft, reward, dpo, ppo and grpo `final`; fp32, bf16 via --save-dtype, the bf16
fixture kept as bf16, and sharded saves via --max-shard-size), then loads every output folder with
AutoModelForCausalLM / AutoModelForSequenceClassification.from_pretrained (no missing, unexpected or mismatched
tensors) and AutoTokenizer, and checks:
  * logits / scores of transformers (float32 compute, explicit position_ids) equal `rlhf forward` on the same ids:
    max |ours − transformers| / max |transformers| <= 1e-5 over the real (attention_mask = 1) positions;
  * the stored dtypes (BF16 tensors and config dtype "bfloat16" for bf16 saves; shards and their index);
  * AutoTokenizer encodes like `rlhf tokenize` (the tiny BPE and the real GPT-2 tokenizer of gpt2-e2e).
Run: RLHF_BIN=build/rlhf bash tests/py/run.sh tests/py/test_hf_load.py
"""
import json
import os
import unittest

import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file
from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification, AutoTokenizer
from transformers.utils import logging as hf_logging

import rlhf_fixtures as fx

REL_TOL = 1e-5
ROOT = os.path.join(fx.OUT_DIR, "hf_load")
TRAIN = ["--max-steps", "3", "--batch-size", "4", "--lr", "1e-2", "--eval-fraction", "0", "--max-len", "64"]
RL = ["--iterations", "2", "--batch-size", "4", "--max-new-tokens", "8", "--ppo-epochs", "1", "--lr", "1e-2",
      "--critic-lr", "1e-2", "--save-every", "0", "--samples-every", "0", "--temperature", "1.0"]


inputs = fx.inputs
relative_diff = fx.relative_diff


class HfLoad(unittest.TestCase):
    results = {}

    @classmethod
    def setUpClass(cls):
        os.makedirs(ROOT, exist_ok=True)
        m = lambda name: fx.tiny_model(name, ROOT)
        sft = fx.write_jsonl(os.path.join(ROOT, "sft.jsonl"), fx.sft_rows())
        pairs = fx.write_jsonl(os.path.join(ROOT, "pairs.jsonl"), fx.pair_rows())
        prompts = fx.write_jsonl(os.path.join(ROOT, "prompts.jsonl"), fx.prompt_rows())
        out = lambda name: os.path.join(ROOT, "out", name)
        # name -> (command line, folder to load, head, expectations)
        cls.runs = {
            "sft-gpt2": (["sft", "--model", m("gpt2-tiny"), "--data", sft], out("sft-gpt2"), "lm", {}),
            "sft-gpt2-e2e": (["sft", "--model", os.path.join(fx.DATA, "models", "gpt2-e2e"), "--data", sft],
                             out("sft-gpt2-e2e"), "lm", {}),
            "sft-llama-bf16": (["sft", "--model", m("llama-tiny"), "--data", sft, "--save-dtype", "bf16"],
                               out("sft-llama-bf16"), "lm", {"dtype": "bfloat16"}),
            "sft-llama-bf16-kept": (["sft", "--model", m("llama-tiny-bf16"), "--data", sft],
                                    out("sft-llama-bf16-kept"), "lm", {"dtype": "bfloat16"}),
            "sft-qwen2": (["sft", "--model", m("qwen2-tiny"), "--data", sft], out("sft-qwen2"), "lm", {}),
            "sft-qwen3-sharded": (["sft", "--model", m("qwen3-tiny-sharded"), "--data", sft,
                                   "--max-shard-size", "100KB"], out("sft-qwen3-sharded"), "lm", {"sharded": True}),
            "reward-llama": (["reward", "--model", m("llama-tiny-rm"), "--data", pairs], out("reward-llama"),
                             "score", {}),
            "reward-gpt2-new-head-bf16": (["reward", "--model", m("gpt2-tiny"), "--data", pairs, "--save-dtype",
                                           "bf16", "--normalize", "mean", "--max-shard-size", "200KB"],
                                          out("reward-gpt2-new-head-bf16"), "score",
                                          {"dtype": "bfloat16", "sharded": True}),
            "dpo-qwen2": (["dpo", "--model", m("qwen2-tiny"), "--data", pairs], out("dpo-qwen2"), "lm", {}),
            "ppo-gpt2-final-sharded": (["ppo", "--policy", m("gpt2-tiny"), "--reward", m("gpt2-tiny-rm"),
                                        "--prompts", prompts, "--max-shard-size", "200KB"],
                                       os.path.join(out("ppo-gpt2-final-sharded"), "final"), "lm", {"sharded": True}),
            "grpo-qwen3-final-bf16": (["ppo", "--algo", "grpo", "--group-size", "2", "--policy",
                                       m("qwen3-tiny-sharded"), "--reward", m("llama-tiny-rm"), "--prompts",
                                       prompts, "--save-dtype", "bf16"],
                                      os.path.join(out("grpo-qwen3-final-bf16"), "final"), "lm",
                                      {"dtype": "bfloat16"}),
        }
        cls.seconds = {}
        for name, (args, _, _, _) in cls.runs.items():
            extra = RL if args[0] == "ppo" else TRAIN
            _, cls.seconds[name] = fx.run_rlhf(*args, "--out", out(name), *extra)

    @classmethod
    def tearDownClass(cls):
        print("\nrlhf vs transformers, max |ours - hf| / max |hf|:")
        for name, r in sorted(cls.results.items()):
            print(f"  {name:28s} {r:.3e}   (command {cls.seconds[name]:.1f} s)")

    def check_folder(self, name):
        _, folder, head, expect = self.runs[name]
        config = json.load(open(os.path.join(folder, "config.json")))
        files = sorted(f for f in os.listdir(folder) if f.startswith("model") and f.endswith(".safetensors"))
        if expect.get("sharded"):
            self.assertGreater(len(files), 1, files)
            index = json.load(open(os.path.join(folder, "model.safetensors.index.json")))
            self.assertEqual(sorted(set(index["weight_map"].values())), files)
        else:
            self.assertEqual(files, ["model.safetensors"])
        want_dtype = expect.get("dtype", "float32")
        self.assertEqual(config["dtype"], want_dtype)
        for f in files:
            with safe_open(os.path.join(folder, f), "pt") as st:
                for k in st.keys():
                    self.assertEqual(str(st.get_slice(k).get_dtype()), {"float32": "F32", "bfloat16": "BF16"}[want_dtype], k)

        cls = AutoModelForCausalLM if head == "lm" else AutoModelForSequenceClassification
        # dtype="auto" keeps what the folder stores (bf16 stays bf16 in transformers).
        auto = cls.from_pretrained(folder, dtype="auto")
        self.assertEqual(auto.dtype, getattr(torch, want_dtype))
        del auto
        model, info = cls.from_pretrained(folder, dtype=torch.float32, output_loading_info=True)
        for k in ("missing_keys", "unexpected_keys", "mismatched_keys", "error_msgs"):
            self.assertFalse(info.get(k), f"{name}: transformers reports {k}: {info.get(k)}")
        model.eval()
        ids, mask = inputs(config["vocab_size"])
        pos = (mask.cumsum(-1) - 1).clamp(min=0)
        in_path, out_path = os.path.join(ROOT, f"{name}.in.safetensors"), os.path.join(ROOT, f"{name}.out.safetensors")
        save_file({"input_ids": ids, "attention_mask": mask}, in_path)
        fx.run_rlhf("forward", "--model", folder, "--input", in_path, "--output", out_path)
        ours = load_file(out_path)
        with torch.no_grad():
            theirs = model(input_ids=ids, attention_mask=mask, position_ids=pos).logits
        if head == "lm":
            real = mask.bool()
            self.assertEqual(ours["logits"].shape, theirs.shape)
            diff = relative_diff(ours["logits"][real], theirs[real])
        else:
            self.assertEqual(ours["scores"].shape, theirs.shape)
            diff = relative_diff(ours["scores"], theirs)
        self.results[name] = diff
        self.assertLessEqual(diff, REL_TOL, f"{name}: max |ours − transformers| / max |transformers| = {diff:.3e}")

        # The trained weights moved away from the start (a test of the saved model, not of the fixture).
        start = self.runs[name][0][self.runs[name][0].index("--model" if "--model" in self.runs[name][0] else "--policy") + 1]
        hf_logging.set_verbosity_error()  # a reward model trained from an LM: its start has no score head (expected)
        start_model = cls.from_pretrained(start, dtype=torch.float32).eval()
        hf_logging.set_verbosity_warning()
        with torch.no_grad():
            before = start_model(input_ids=ids, attention_mask=mask, position_ids=pos).logits
        self.assertGreater((before - theirs).abs().max().item(), 1e-4, f"{name}: the saved model equals its start")

        # The tokenizer: AutoTokenizer encodes like `rlhf tokenize`.
        tok = AutoTokenizer.from_pretrained(folder)
        texts = ["Name animal 3: the fox", "Say something 2 good good good", " the  owl\n", "ünïcödé yak"]
        text_file = os.path.join(ROOT, f"{name}.texts.jsonl")
        fx.write_jsonl(text_file, texts)
        out, _ = fx.run_rlhf("tokenize", "--tokenizer", folder, "--input", text_file)
        ours_ids = [json.loads(line) for line in out.splitlines() if line.strip()]
        self.assertEqual(ours_ids, [tok.encode(t, add_special_tokens=False) for t in texts])


def _make_test(name):
    return lambda self: self.check_folder(name)


for _name in ["sft-gpt2", "sft-gpt2-e2e", "sft-llama-bf16", "sft-llama-bf16-kept", "sft-qwen2", "sft-qwen3-sharded",
              "reward-llama", "reward-gpt2-new-head-bf16", "dpo-qwen2", "ppo-gpt2-final-sharded",
              "grpo-qwen3-final-bf16"]:
    setattr(HfLoad, "test_" + _name.replace("-", "_"), _make_test(_name))

if __name__ == "__main__":
    unittest.main()
