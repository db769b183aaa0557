"""LoRA in PEFT's format, against PyPI's peft (issue 14, part 2).

Both directions, on the tiny fixtures of tests/data/models (gpt2 with its Conv1D, llama, qwen2, qwen3; LM and
reward heads):
  * ours -> PEFT: `rlhf sft|reward|dpo --lora-r ...` writes an adapter folder; PeftModel.from_pretrained loads it
    onto transformers' base model with every tensor used (get_peft_model_state_dict equals our file, name for name
    and bit for bit), and its logits / scores equal `rlhf forward --adapter` to 1e-5 (max |ours − PEFT| / max |PEFT|
    over real positions). Our adapter_config.json has exactly the fields PEFT's own save writes.
  * PEFT -> ours: get_peft_model(..., init_lora_weights=False: B random, so the adapter changes the logits) +
    save_pretrained; `rlhf forward --adapter` gives PEFT's logits to 1e-5 (also with use_rslora and dropout).
  * merge: `rlhf merge` equals PEFT's merge_and_unload, weight for weight (1e-6) and in logits (1e-5).
Run: RLHF_BIN=build/rlhf bash tests/py/run.sh tests/py/test_peft.py
"""
import json
import os
import unittest

import torch
from peft import LoraConfig, PeftModel, get_peft_model
from peft.utils import get_peft_model_state_dict
from safetensors.torch import load_file, save_file
from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification
from transformers.utils import logging as hf_logging

import rlhf_fixtures as fx

REL_TOL = 1e-5
ROOT = os.path.join(fx.OUT_DIR, "peft")
TRAIN = ["--max-steps", "3", "--batch-size", "4", "--lr", "1e-2", "--eval-fraction", "0", "--max-len", "64"]


inputs = fx.inputs
relative_diff = fx.relative_diff


def base_model(folder, head):
    cls = AutoModelForCausalLM if head == "lm" else AutoModelForSequenceClassification
    hf_logging.set_verbosity_error()  # a classifier made from an LM has a new score head (expected)
    extra = {} if head == "lm" else {"num_labels": 1}  # an LM's config would give a classifier 2 labels
    m = cls.from_pretrained(folder, dtype=torch.float32, **extra)
    hf_logging.set_verbosity_warning()
    return m.eval()


def hf_outputs(model, ids, mask, head):
    pos = (mask.cumsum(-1) - 1).clamp(min=0)
    with torch.no_grad():
        return model(input_ids=ids, attention_mask=mask, position_ids=pos).logits


def rlhf_outputs(base, adapter, ids, mask, tag, head):
    in_path, out_path = os.path.join(ROOT, f"{tag}.in.safetensors"), os.path.join(ROOT, f"{tag}.out.safetensors")
    save_file({"input_ids": ids, "attention_mask": mask}, in_path)
    args = ["forward", "--model", base, "--input", in_path, "--output", out_path]
    if adapter:
        args += ["--adapter", adapter]
    fx.run_rlhf(*args)
    return load_file(out_path)["logits" if head == "lm" else "scores"]


def compare(test, ours, theirs, mask, head, what):
    if head == "lm":
        real = mask.bool()
        test.assertEqual(ours.shape, theirs.shape)
        diff = relative_diff(ours[real], theirs[real])
    else:
        diff = relative_diff(ours, theirs)
    test.assertLessEqual(diff, REL_TOL, f"{what}: max |ours − PEFT| / max |PEFT| = {diff:.3e}")
    return diff


class Peft(unittest.TestCase):
    results = {}

    @classmethod
    def setUpClass(cls):
        os.makedirs(ROOT, exist_ok=True)
        m = lambda name: fx.tiny_model(name, ROOT)
        sft = fx.write_jsonl(os.path.join(ROOT, "sft.jsonl"), fx.sft_rows())
        pairs = fx.write_jsonl(os.path.join(ROOT, "pairs.jsonl"), fx.pair_rows())
        out = lambda name: os.path.join(ROOT, "out", name)
        lora = lambda targets, r="4", alpha="8": ["--lora-r", r, "--lora-alpha", alpha, "--lora-targets", targets]
        # name -> (command line, base folder, head)
        cls.ours = {
            "sft-gpt2-all-linear": (["sft", "--model", m("gpt2-tiny"), "--data", sft, *lora("all-linear")],
                                    m("gpt2-tiny"), "lm"),
            "sft-llama-qv-dropout": (["sft", "--model", m("llama-tiny"), "--data", sft, "--lora-dropout", "0.1",
                                      *lora("q_proj,v_proj", "2", "16")], m("llama-tiny"), "lm"),
            "sft-qwen3-mlp-rslora": (["sft", "--model", m("qwen3-tiny-sharded"), "--data", sft, "--lora-rslora",
                                      *lora("gate_proj,up_proj,down_proj")], m("qwen3-tiny-sharded"), "lm"),
            "dpo-qwen2-all-linear": (["dpo", "--model", m("qwen2-tiny"), "--data", pairs, *lora("all-linear")],
                                     m("qwen2-tiny"), "lm"),
            "reward-llama-new-head": (["reward", "--model", m("llama-tiny"), "--data", pairs, *lora("all-linear")],
                                      m("llama-tiny"), "score"),
            "reward-gpt2-rm": (["reward", "--model", m("gpt2-tiny-rm"), "--data", pairs, *lora("c_attn,c_proj")],
                               m("gpt2-tiny-rm"), "score"),
        }
        cls.seconds = {}
        for name, (args, _, _) in cls.ours.items():
            _, cls.seconds[name] = fx.run_rlhf(*args, "--out", out(name), *TRAIN)
        cls.out_root = os.path.join(ROOT, "out")

    @classmethod
    def tearDownClass(cls):
        print("\nmax relative difference to PEFT:")
        for name, r in sorted(cls.results.items()):
            print(f"  {name:36s} {r:.3e}")

    # ---- ours -> PEFT ----
    def check_ours(self, name):
        _, base, head = self.ours[name]
        folder = os.path.join(self.out_root, name)
        ours_cfg = json.load(open(os.path.join(folder, "adapter_config.json")))
        # PEFT's own save of a config like ours: the same fields, nothing more, nothing less.
        task = "CAUSAL_LM" if head == "lm" else "SEQ_CLS"
        ref_dir = os.path.join(ROOT, "peft-fields", name)
        ref = get_peft_model(base_model(base, head), LoraConfig(r=ours_cfg["r"], lora_alpha=ours_cfg["lora_alpha"],
                                                                target_modules=ours_cfg["target_modules"],
                                                                task_type=task))
        ref.save_pretrained(ref_dir)
        ref_cfg = json.load(open(os.path.join(ref_dir, "adapter_config.json")))
        self.assertEqual(sorted(ours_cfg), sorted(ref_cfg))
        for k in ("peft_type", "task_type", "bias", "fan_in_fan_out", "inference_mode", "modules_to_save"):
            self.assertEqual(ours_cfg[k], ref_cfg[k], k)
        self.assertEqual(sorted(load_file(os.path.join(folder, "adapter_model.safetensors"))),
                         sorted(load_file(os.path.join(ref_dir, "adapter_model.safetensors"))))

        model = PeftModel.from_pretrained(base_model(base, head), folder).eval()
        # Every tensor of our file landed in PEFT's model, unchanged.
        saved = load_file(os.path.join(folder, "adapter_model.safetensors"))
        loaded = get_peft_model_state_dict(model)
        self.assertEqual(sorted(saved), sorted(loaded))
        for k, t in saved.items():
            self.assertTrue(torch.equal(t, loaded[k].cpu()), k)
        # Training moved the adapters (B is no longer 0).
        self.assertGreater(max(t.abs().max().item() for k, t in saved.items() if "lora_B" in k), 0)

        ids, mask = inputs(model.config.vocab_size)
        theirs = hf_outputs(model, ids, mask, head)
        ours = rlhf_outputs(base, folder, ids, mask, name, head)
        self.results[name] = compare(self, ours, theirs, mask, head, name)
        with model.disable_adapter():
            off = hf_outputs(model, ids, mask, head)
        if head == "lm":  # adapters off is the base (a classifier's head is trained in full, so not for it)
            self.assertGreater((off - theirs).abs().max().item(), 1e-5, f"{name}: the adapter changes nothing")

    # ---- PEFT -> ours, and merging ----
    def check_theirs(self, name, fixture, head, config):
        base = fx.tiny_model(fixture, ROOT)
        torch.manual_seed(0)
        task = "CAUSAL_LM" if head == "lm" else "SEQ_CLS"
        model = get_peft_model(base_model(base, head), LoraConfig(task_type=task, init_lora_weights=False, **config))
        if head == "score":  # a head that differs from the base's: the saved modules_to_save must be used
            with torch.no_grad():
                model.base_model.model.score.modules_to_save["default"].weight.add_(0.05)
        folder = os.path.join(ROOT, "theirs", name)
        model.save_pretrained(folder)
        model.eval()
        ids, mask = inputs(model.config.vocab_size)
        theirs = hf_outputs(model, ids, mask, head)
        ours = rlhf_outputs(base, folder, ids, mask, name, head)
        self.results["peft->ours " + name] = compare(self, ours, theirs, mask, head, name)
        plain = rlhf_outputs(base, None, ids, mask, name + ".base", head)
        self.assertGreater((plain - ours).abs().max().item(), 1e-4, f"{name}: the adapter changes nothing")

        merged_dir = os.path.join(ROOT, "merged", name)
        fx.run_rlhf("merge", "--model", base, "--adapter", folder, "--out", merged_dir)
        peft_merged = model.merge_and_unload()
        ours_merged = base_model(merged_dir, head)
        theirs_sd, ours_sd = peft_merged.state_dict(), ours_merged.state_dict()
        for k, t in theirs_sd.items():
            if k in ours_sd:
                d = (ours_sd[k] - t).abs().max().item()
                self.assertLessEqual(d, 1e-6, f"{name}: merged {k} differs by {d:.3e}")
        merged_out = hf_outputs(ours_merged, ids, mask, head)
        self.results["merge " + name] = compare(self, merged_out, hf_outputs(peft_merged, ids, mask, head), mask, head,
                                                "merge " + name)

    def test_theirs_gpt2_all_linear(self):
        self.check_theirs("gpt2-all-linear", "gpt2-tiny", "lm", dict(r=4, lora_alpha=8, target_modules="all-linear"))

    def test_theirs_llama_rslora_dropout(self):
        self.check_theirs("llama-rslora", "llama-tiny", "lm",
                          dict(r=3, lora_alpha=6, lora_dropout=0.1, use_rslora=True,
                               target_modules=["q_proj", "k_proj", "o_proj", "down_proj"]))

    def test_theirs_qwen2_default_targets(self):
        self.check_theirs("qwen2-default", "qwen2-tiny", "lm", dict(r=2, lora_alpha=4))

    def test_theirs_llama_reward(self):
        self.check_theirs("llama-rm", "llama-tiny-rm", "score", dict(r=4, lora_alpha=8, target_modules="all-linear"))


def _make_test(name):
    return lambda self: self.check_ours(name)


for _name in ["sft-gpt2-all-linear", "sft-llama-qv-dropout", "sft-qwen3-mlp-rslora", "dpo-qwen2-all-linear",
              "reward-llama-new-head", "reward-gpt2-rm"]:
    setattr(Peft, "test_ours_" + _name.replace("-", "_"), _make_test(_name))

if __name__ == "__main__":
    unittest.main()
