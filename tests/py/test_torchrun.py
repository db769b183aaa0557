"""Real launchers start rlhf as users do (issue 15, part 1): PyPI torch's `torchrun --nproc-per-node 2 --no-python
rlhf ...` for sft and ppo, against the same command as one process. torchrun's agent serves the rendezvous store
itself (TORCHELASTIC_USE_AGENT_STORE=True): rank 0 must join it as a client, not serve a second one on its port.
The 2-process runs must give the 1-process losses per step to 1e-5 relative and the final weights to 1e-4 (the
tolerances of tests/test_dist.cpp, which launches with the same variables set by hand).
Run: RLHF_BIN=build/rlhf bash tests/py/run.sh tests/py/test_torchrun.py
"""
import os
import shutil
import socket
import subprocess
import sys
import unittest

import numpy as np
from safetensors.numpy import load_file

import rlhf_fixtures as fx

ROOT = os.path.join(fx.OUT_DIR, "torchrun")
TORCHRUN = os.path.join(os.path.dirname(sys.executable), "torchrun")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def torchrun(*args, timeout=600):
    """torchrun --nproc-per-node 2 --no-python rlhf ARGS (one thread per rank, on the CPU)."""
    cmd = [TORCHRUN, "--nproc-per-node", "2", "--master-addr", "127.0.0.1", "--master-port", str(free_port()),
           "--no-python", fx.RLHF_BIN, *map(str, args), "--threads", "1", "--device", "cpu"]
    env = dict(os.environ, OMP_NUM_THREADS="1")
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)
    if p.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} exited {p.returncode}:\n{p.stdout}\n{p.stderr}")
    return p.stdout + p.stderr


def train_rows(path):
    return [r for r in fx.read_jsonl(path) if r.get("split", "train") == "train"]


class Torchrun(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        if os.path.exists(ROOT):
            shutil.rmtree(ROOT)
        os.makedirs(ROOT)
        cls.model = os.path.join(fx.DATA, "models", "gpt2-e2e")
        cls.sft_data = fx.write_jsonl(os.path.join(ROOT, "sft.jsonl"), fx.sft_rows(12))
        cls.prompts = fx.write_jsonl(os.path.join(ROOT, "prompts.jsonl"), fx.prompt_rows(8))

    def same_run(self, one, two, keys, weights):
        a, b = train_rows(os.path.join(one, "metrics.jsonl")), train_rows(os.path.join(two, "metrics.jsonl"))
        self.assertEqual(len(a), len(b))
        self.assertTrue(a)
        for x, y in zip(a, b):
            for k in keys:
                self.assertAlmostEqual(x[k], y[k], delta=1e-5 * max(1.0, abs(x[k])), msg=f"{k} at step {x['step']}")
        wa, wb = load_file(os.path.join(one, weights)), load_file(os.path.join(two, weights))
        self.assertEqual(set(wa), set(wb))
        worst = max(float(np.abs(wa[k].astype(np.float64) - wb[k].astype(np.float64)).max()) for k in wa)
        self.assertLess(worst, 1e-4)
        print(f"max |w_1proc - w_torchrun| = {worst:.2e}", file=sys.stderr)

    def test_sft(self):
        args = ["sft", "--model", self.model, "--data", self.sft_data, "--eval-fraction", "0", "--batch-size", "4",
                "--max-steps", "4", "--lr", "1e-3", "--seed", "3", "--log-every", "1"]
        one, two = os.path.join(ROOT, "sft-one"), os.path.join(ROOT, "sft-two")
        fx.run_rlhf(*args, "--out", one)
        log = torchrun(*args, "--out", two)
        self.assertIn("torchrun", log)  # the launcher named in "dist: rank 1 of 2 (local 1 of 2, torchrun, ...)"
        self.same_run(one, two, ["loss", "grad_norm"], "model.safetensors")

    def test_grpo(self):
        args = ["ppo", "--algo", "grpo", "--policy", self.model, "--reward", "rule:length", "--prompts", self.prompts,
                "--batch-size", "4", "--group-size", "2", "--iterations", "2", "--max-new-tokens", "6",
                "--num-minibatches", "2", "--lr", "1e-3", "--seed", "1"]
        one, two = os.path.join(ROOT, "grpo-one"), os.path.join(ROOT, "grpo-two")
        fx.run_rlhf(*args, "--out", one)
        torchrun(*args, "--out", two)
        self.same_run(one, two, ["score", "kl", "policy_loss", "grad_norm"], "final/model.safetensors")


if __name__ == "__main__":
    unittest.main()
