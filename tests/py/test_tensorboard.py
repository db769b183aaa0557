"""`--report-to tensorboard` writes event files that PyPI's tensorboard reads back (issue 13, part 5).

A short sft (with an eval every 2 steps) and a short ppo run with --report-to tensorboard; their OUT/runs/ files
are read with tensorboard's own EventAccumulator (which checks every record's masked CRC-32C), and every tag
("<split>/<name>"), step and value must equal metrics.jsonl: the values to float32 rounding (TensorBoard stores
simple_value as a float), the steps exactly. A run without the flag writes no runs/ folder.
Run: RLHF_BIN=build/rlhf bash tests/py/run.sh tests/py/test_tensorboard.py
"""
import math
import os
import unittest

import numpy as np
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

import rlhf_fixtures as fx

ROOT = os.path.join(fx.OUT_DIR, "tensorboard")


def expected_scalars(metrics_path):
    """{tag: [(step, value)]} from metrics.jsonl, tag = split/name (non-finite values, null in JSON, skipped)."""
    want = {}
    for row in fx.read_jsonl(metrics_path):
        split = row.get("split", "train")
        for k, v in row.items():
            if k in ("step", "split") or v is None:
                continue
            want.setdefault(f"{split}/{k}", []).append((row["step"], float(v)))
    return want


class TensorBoard(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        os.makedirs(ROOT, exist_ok=True)
        cls.sft_model = fx.tiny_model("gpt2-tiny", ROOT)
        cls.rm = fx.tiny_model("gpt2-tiny-rm", ROOT)
        cls.sft_data = fx.write_jsonl(os.path.join(ROOT, "sft.jsonl"), fx.sft_rows(24))
        cls.prompts = fx.write_jsonl(os.path.join(ROOT, "prompts.jsonl"), fx.prompt_rows())

    def check_run(self, out):
        runs = os.path.join(out, "runs")
        files = [f for f in os.listdir(runs) if f.startswith("events.out.tfevents.")]
        self.assertEqual(len(files), 1, files)
        acc = EventAccumulator(runs, size_guidance={"scalars": 0})  # 0: keep every event
        acc.Reload()
        want = expected_scalars(os.path.join(out, "metrics.jsonl"))
        got_tags = set(acc.Tags()["scalars"])
        self.assertEqual(got_tags, set(want), f"tags differ: only tensorboard {got_tags - set(want)}, "
                                              f"only metrics.jsonl {set(want) - got_tags}")
        worst = 0.0
        for tag, rows in want.items():
            events = acc.Scalars(tag)
            self.assertEqual([e.step for e in events], [s for s, _ in rows], tag)
            for e, (_, v) in zip(events, rows):
                f32 = float(np.float32(v))
                if math.isinf(f32):  # beyond float32: TensorBoard stores inf, as float(v) would be
                    self.assertEqual(e.value, f32, tag)
                    continue
                self.assertEqual(e.value, f32, f"{tag}: tensorboard {e.value} vs metrics.jsonl {v}")
                worst = max(worst, abs(e.value - v) / max(abs(v), 1e-30))
        return len(want), sum(len(r) for r in want.values()), worst

    def test_sft(self):
        out = os.path.join(ROOT, "sft")
        _, secs = fx.run_rlhf("sft", "--model", self.sft_model, "--data", self.sft_data, "--out", out,
                              "--max-steps", "6", "--batch-size", "4", "--eval-fraction", "0.25", "--eval-every", "2",
                              "--lr", "1e-3", "--report-to", "tensorboard")
        tags, points, worst = self.check_run(out)
        self.assertEqual({r["split"] for r in fx.read_jsonl(os.path.join(out, "metrics.jsonl"))}, {"train", "eval"})
        print(f"\nsft: {tags} tags, {points} points equal metrics.jsonl (max rel. diff {worst:.1e}, float32 "
              f"rounding); command {secs:.1f} s")

    def test_ppo(self):
        out = os.path.join(ROOT, "ppo")
        _, secs = fx.run_rlhf("ppo", "--policy", self.sft_model, "--reward", self.rm, "--prompts", self.prompts,
                              "--out", out, "--iterations", "3", "--batch-size", "4", "--max-new-tokens", "6",
                              "--ppo-epochs", "1", "--lr", "1e-3", "--save-every", "0", "--samples-every", "0",
                              "--report-to", "tensorboard")
        tags, points, worst = self.check_run(out)
        self.assertGreaterEqual(tags, 10)
        print(f"\nppo: {tags} tags, {points} points equal metrics.jsonl (max rel. diff {worst:.1e}); "
              f"command {secs:.1f} s")

    def test_default_writes_no_event_files(self):
        out = os.path.join(ROOT, "plain")
        fx.run_rlhf("sft", "--model", self.sft_model, "--data", self.sft_data, "--out", out, "--max-steps", "1",
                    "--batch-size", "4", "--eval-fraction", "0")
        self.assertTrue(os.path.exists(os.path.join(out, "metrics.jsonl")))
        self.assertFalse(os.path.exists(os.path.join(out, "runs")))


if __name__ == "__main__":
    unittest.main()
