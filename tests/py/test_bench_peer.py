"""The benchmark against real TRL (bench/trl/trl_bench.py, issue 13 part 4) keeps running with the pinned libraries,
and it measures the same work as `rlhf bench`.

For every task both sides run one timed step on small shapes; they must count the same tokens for the same
workload (sft B·T, rm 2·B·T, dpo 2·B·(P+G), grpo B·(P+G), generate B·G unless a random-weight model samples EOS),
report the keys bench/compare.sh reads, and the GRPO split (rollout + scoring + training) must add up to the
iteration. DPO's loss on the first steps is log 2 by hand (policy = reference, so h = 0; one step of lr 1e-6 moves
it by < 1e-3). The speed figures themselves live in bench/RESULTS.md, never in a test.
Run: RLHF_BIN=build/rlhf bash tests/py/run.sh tests/py/test_bench_peer.py
"""
import json
import math
import os
import subprocess
import sys
import unittest

import rlhf_fixtures as fx

PEER = os.path.join(fx.RLHF_ROOT, "bench", "trl", "trl_bench.py")
SMALL = ["--batch", "4", "--prompt-len", "8", "--gen-len", "8", "--seq-len", "16", "--steps", "1", "--threads", "1"]


def last_json(text, what):
    lines = [l for l in text.splitlines() if l.startswith("{")]
    if not lines:
        raise AssertionError(f"{what} printed no JSON line:\n{text[-3000:]}")
    return json.loads(lines[-1])


def ours(task, *extra):
    p = subprocess.run([fx.RLHF_BIN, "bench", "--task", task, *SMALL, *extra], capture_output=True, text=True)
    if p.returncode != 0:
        raise AssertionError(f"rlhf bench --task {task} failed:\n{p.stderr[-3000:]}")
    return last_json(p.stdout, f"rlhf bench --task {task}")


def peer(task, *extra):
    p = subprocess.run([sys.executable, PEER, "--task", task, *SMALL, *extra], capture_output=True, text=True,
                       cwd=fx.OUT_DIR)
    if p.returncode != 0:
        raise AssertionError(f"trl_bench.py --task {task} failed:\n{p.stderr[-3000:]}")
    return last_json(p.stdout, f"trl_bench.py --task {task}")


class BenchPeer(unittest.TestCase):
    def check_pair(self, task, want_tokens, *extra):
        o, p = ours(task, *extra), peer(task, *extra)
        for r, side in ((o, "rlhf"), (p, "trl")):
            for k in ("tokens", "tokens_per_s", "step_s", "peak_rss_mb", "tokens_are"):
                self.assertIn(k, r, f"{side} {task}: key {k}")
            self.assertGreater(r["tokens_per_s"], 0)
        self.assertEqual(o["tokens_are"], p["tokens_are"], task)
        if task == "generate":  # a row stops early only when a random-weight model samples EOS
            self.assertLessEqual(o["tokens"], want_tokens)
            self.assertLessEqual(p["tokens"], want_tokens)
        else:
            self.assertEqual(o["tokens"], want_tokens, f"rlhf {task}")
            self.assertEqual(p["tokens"], want_tokens, f"trl {task}")
        return o, p

    def test_sft_rm(self):
        self.check_pair("sft", 4 * 16)
        self.check_pair("rm", 2 * 4 * 16)

    def test_dpo(self):
        o, p = self.check_pair("dpo", 2 * 4 * (8 + 8))
        self.assertTrue(p["impl"].startswith("trl-"))
        self.assertAlmostEqual(o["loss"], math.log(2), delta=1e-3)

    def test_grpo(self):
        o, p = self.check_pair("grpo", 4 * (8 + 8), "--group", "2")
        for r, side in ((o, "rlhf"), (p, "trl")):
            parts = r["rollout_s"] + r["scoring_s"] + r["train_s"]
            self.assertGreater(r["rollout_s"], 0, side)
            self.assertGreater(r["scoring_s"], 0, side)
            self.assertLessEqual(parts, r["iter_s"] * 1.05 + 0.05, side)
        self.assertEqual(o["group"], p["group"])

    def test_generate(self):
        o, p = self.check_pair("generate", 4 * 8)
        self.assertTrue(p["impl"].startswith("transformers-"))


if __name__ == "__main__":
    unittest.main()
