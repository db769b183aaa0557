"""Reward functions from outside the binary, end to end through `rlhf ppo` (issue 18), against
examples/reward_server.py (Python's standard library only) as the reward server users would write:

- the HTTP server and the same code as a subprocess (--stdio) give the same run, and the combination
  s = Σ w_i·s_i is what the logged components say;
- a server that starts failing mid-run stops the run with an error naming the iteration, the server and the last
  good checkpoint; that checkpoint resumes (with the server back) to final weights bit-identical to a run that
  never failed;
- `rlhf label auto --judge` takes the same specifications.
"""
import hashlib
import http.server
import json
import os
import subprocess
import sys
import threading
import unittest
from pathlib import Path

ROOT = Path(os.environ["RLHF_ROOT"])
BIN = os.environ["RLHF_BIN"]
OUT = Path(os.environ["OUT_DIR"])
sys.path.insert(0, str(ROOT / "examples"))
import reward_server  # noqa: E402  (the example under test)

POLICY = ROOT / "tests/data/models/gpt2-e2e"
PROMPTS = [{"prompt": f"{a}+{b}=", "answer": str(a + b)} for a, b in [(1, 2), (2, 2), (3, 4), (5, 1)]]


class Server:
    """examples/reward_server.py's handler in a thread; fail_after: answer 500 from that request on."""

    def __init__(self, fail_after=None):
        self.requests = 0
        outer = self

        class Handler(reward_server.Handler):
            def do_POST(self):
                outer.requests += 1
                if fail_after is not None and outer.requests > fail_after:
                    self.send_response(500)
                    self.end_headers()
                    return
                super().do_POST()

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/get_reward"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


def rlhf(*args, check=True):
    r = subprocess.run([BIN, *map(str, args)], capture_output=True, text=True)
    if check and r.returncode != 0:
        raise AssertionError(f"rlhf {' '.join(map(str, args))} failed:\n{r.stderr[-3000:]}")
    return r


def metrics(run):
    return [json.loads(l) for l in (run / "metrics.jsonl").read_text().splitlines() if l.strip()]


def sha(path):
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


class RewardPlugins(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        OUT.mkdir(parents=True, exist_ok=True)
        cls.prompts = OUT / "prompts.jsonl"
        cls.prompts.write_text("".join(json.dumps(p) + "\n" for p in PROMPTS))

    def grpo(self, out, *rewards, iterations=3, extra=()):
        args = ["ppo", "--policy", POLICY, "--prompts", self.prompts, "--out", out, "--algo", "grpo",
                "--iterations", iterations, "--batch-size", 2, "--group-size", 2, "--max-new-tokens", 6,
                "--lr", "1e-3", "--save-every", 1, "--seed", 3, "--reward-retries", 1, "--reward-backoff", 0.05,
                "--threads", 1]
        for r in rewards:
            args += ["--reward", r]
        return rlhf(*args, *extra, check=False)

    def test_http_and_exec_agree_and_components_add_up(self):
        srv = Server()
        try:
            r = self.grpo(OUT / "http", srv.url, "rule:numeric", extra=["--reward-weights", "1,0.5"])
            self.assertEqual(r.returncode, 0, r.stderr[-3000:])
        finally:
            srv.close()
        self.assertEqual(srv.requests, 3)  # one POST per iteration
        cmd = f"exec:{sys.executable} {ROOT / 'examples/reward_server.py'} --stdio"
        r = self.grpo(OUT / "exec", cmd, "rule:numeric", extra=["--reward-weights", "1,0.5"])
        self.assertEqual(r.returncode, 0, r.stderr[-3000:])
        h = [m for m in metrics(OUT / "http") if m["split"] == "train"]
        e = [m for m in metrics(OUT / "exec") if m["split"] == "train"]
        self.assertEqual(len(h), 3)
        for a, b in zip(h, e):
            # The same reward code behind two transports: the same run.
            self.assertEqual(a["score"], b["score"])
            self.assertEqual(a["reward/http"], b["reward/exec"])
            self.assertEqual(a["reward/http/correct"], b["reward/exec/correct"])
            # s = 1·s_http + 0.5·s_numeric, batch means (float32 score).
            self.assertAlmostEqual(a["score"], a["reward/http"] + 0.5 * a["reward/numeric"], places=5)
            # The server's own correctness check and the built-in rule:numeric agree.
            self.assertAlmostEqual(a["reward/http/correct"], a["reward/numeric"], places=12)
        self.assertEqual(sha(OUT / "http/final/model.safetensors"), sha(OUT / "exec/final/model.safetensors"))
        cfg = json.loads((OUT / "http/reward_config.json").read_text())
        self.assertEqual(cfg["weights"], [1.0, 0.5])

    def test_failing_server_stops_with_the_last_good_checkpoint_which_resumes_exactly(self):
        good = Server()
        try:
            self.assertEqual(self.grpo(OUT / "whole", good.url, iterations=4).returncode, 0)
        finally:
            good.close()
        bad = Server(fail_after=2)  # iterations 1 and 2 scored, then HTTP 500
        try:
            r = self.grpo(OUT / "broken", bad.url, iterations=4)
        finally:
            bad.close()
        self.assertNotEqual(r.returncode, 0)
        err = r.stderr
        self.assertIn("iteration 3", err)
        self.assertIn(bad.url, err)
        self.assertIn("HTTP 500", err)
        self.assertIn("after 2 attempts", err)
        self.assertIn("Last good checkpoint: " + str(OUT / "broken/checkpoint") + " (iteration 2)", err)
        self.assertEqual(bad.requests, 2 + 2)  # the failed iteration: the first try and one retry
        state = json.loads((OUT / "broken/checkpoint/trainer_state.json").read_text())
        self.assertEqual(state["state"]["iteration"], 2, state)
        again = Server()
        try:
            r = self.grpo(OUT / "broken", again.url, iterations=4, extra=["--resume"])
            self.assertEqual(r.returncode, 0, r.stderr[-3000:])
        finally:
            again.close()
        self.assertEqual(sha(OUT / "whole/final/model.safetensors"), sha(OUT / "broken/final/model.safetensors"))

    def test_label_auto_takes_the_same_specs(self):
        db = OUT / "labels.sqlite"
        db.unlink(missing_ok=True)
        cands = OUT / "cands.jsonl"
        cands.write_text(json.dumps({"prompt": "2+2=", "responses": ["4", "a long answer with no number at all"]}) + "\n")
        rlhf("label", "import", "--db", db, "--candidates", cands)
        cmd = f"exec:{sys.executable} {ROOT / 'examples/reward_server.py'} --stdio"
        out = rlhf("label", "auto", "--db", db, "--judge", cmd).stdout
        self.assertIn("ranked 1 items", out)
        exported = OUT / "pairs.jsonl"
        rlhf("label", "export", "--db", db, "--format", "pairs", "--out", exported)
        pair = json.loads(exported.read_text().splitlines()[0])
        # The server's reward: the long answer pays a length penalty, so the short one wins.
        self.assertEqual(pair["chosen"], "4", pair)


if __name__ == "__main__":
    unittest.main()
