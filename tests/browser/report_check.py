# Browser check of the run report (issue 7): render `rlhf report`'s page in Debian's headless Chromium via Playwright
# (Python, sync API), the way a person would look at it. Fails on any console error, page error or network request
# (the page must be self-contained), checks that every chart rendered with a real size and that the page does not
# scroll sideways at phone width, and saves screenshots at laptop and phone widths (and a copy of the page) to
# $OUT_DIR. Run by run_report_check.sh, which sets RLHF_BIN and OUT_DIR.
#   RUN_DIR=path   report an existing run folder instead of the synthetic one below
#   EXPECT_CHARTS  the number of charts to expect there (default: as many <svg> as the HTML holds, at least one)
import json
import math
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

from playwright.sync_api import sync_playwright

BIN = os.environ.get("RLHF_BIN", "")
OUT_DIR = os.environ.get("OUT_DIR", "")
assert BIN and os.path.exists(BIN), f"RLHF_BIN must name the built rlhf binary, got {BIN!r}"
assert OUT_DIR, "OUT_DIR must name a folder for the screenshots"
os.makedirs(OUT_DIR, exist_ok=True)


def on_timeout(signum, frame):
    print("report_check.py: timed out after 120 s", file=sys.stderr)
    os._exit(1)  # Playwright's driver sees its pipe close and takes Chromium down with it


signal.signal(signal.SIGALRM, on_timeout)
signal.alarm(120)

# ---- a synthetic run folder shaped like `rlhf demo`'s output (deterministic: a seeded generator) ----
seed = 12345


def rand():
    global seed
    seed = (seed * 1103515245 + 12345) % 2147483648
    return seed / 2147483648


def noise(s):
    return (rand() - 0.5) * 2 * s


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


def synthetic_run(d):
    for sub in ["ppo", "reward", "sft", "dpo"]:
        (d / sub).mkdir(parents=True, exist_ok=True)

    def policy(gold, rm, kl, length, win):
        return {"gold": gold, "reward_model": rm, "kl_to_sft": kl, "length": length, "win_rate_vs_sft": win}
    (d / "eval.json").write_text(json.dumps({
        "policies": {
            "base": policy(0.112, -1.84, 2.91, 31.2, 0.21), "sft": policy(0.405, 0.12, 0, 14.8, 0.5),
            "best_of_n": policy(0.561, 1.31, 1.05, 15.9, 0.63), "dpo": policy(0.598, 0.97, 2.4, 13.1, 0.66),
            "ppo": policy(0.734, 1.92, 4.87, 12.3, 0.78),
        },
        "eval_prompts": 256, "seed": 1,
    }, indent=2))
    ppo = []
    beta = 0.05
    for i in range(60):
        kl = 6 * (1 - math.exp(-i / 25)) + noise(0.2)
        beta *= 1 + 0.1 * max(-1, min(1, (kl - 4) / 4))
        score = 0.1 + 1.9 * (1 - math.exp(-i / 18)) + noise(0.08)
        ppo.append({
            "iteration": i, "score": score, "gold": 0.4 + 0.34 * (1 - math.exp(-i / 15)) + noise(0.02), "kl": kl,
            "beta": beta, "reward": score - beta * kl, "policy_loss": -0.02 * math.exp(-i / 30) + noise(0.01),
            "value_loss": 0.8 * math.exp(-i / 12) + 0.05 + noise(0.02),
            "clip_frac": 0.12 * math.exp(-i / 40) + abs(noise(0.02)),
            "approx_kl": 0.01 + abs(noise(0.004)), "entropy": 2.1 - 0.9 * (1 - math.exp(-i / 20)) + noise(0.03),
            "response_length": 15 - 3 * (1 - math.exp(-i / 20)) + noise(0.5),
            "eos_frac": min(1, 0.8 + i / 200 + noise(0.03)), "tokens_per_s": 2400 + noise(150),
            "rollout_s": 1.4 + noise(0.1), "scoring_s": 0.3 + noise(0.03), "train_s": 2.2 + noise(0.1),
        })
    ppo[7]["kl"] = None  # a gap, as a NaN written by the trainer would be
    write_jsonl(d / "ppo" / "metrics.jsonl", ppo)
    rm = []
    for s in range(1, 201):
        rm.append({"step": s, "loss": 0.69 * math.exp(-s / 80) + 0.25 + noise(0.04),
                   "accuracy": 0.5 + 0.35 * (1 - math.exp(-s / 50)) + noise(0.05)})
        if s % 25 == 0:
            rm.append({"step": s, "eval_loss": 0.69 * math.exp(-s / 90) + 0.3,
                       "eval_accuracy": 0.5 + 0.3 * (1 - math.exp(-s / 60))})
    write_jsonl(d / "reward" / "metrics.jsonl", rm)
    write_jsonl(d / "sft" / "metrics.jsonl", [
        {"step": s, "loss": 3.5 * math.exp(-s / 60) + 0.6 + noise(0.05), "lr": 3e-4} for s in range(300)])
    write_jsonl(d / "dpo" / "metrics.jsonl", [
        {"step": s, "loss": 0.69 * math.exp(-s / 50) + 0.2 + noise(0.03),
         "accuracy": 0.5 + 0.4 * (1 - math.exp(-s / 30)) + noise(0.04)} for s in range(120)])
    write_jsonl(d / "samples.jsonl", [
        {"prompt": "Sort: 7 2 9 4", "sft": "2 4 7 9 9", "ppo": "2 4 7 9", "sft_gold": 0.4, "ppo_gold": 1.0},
        {"prompt": "Add: 12 + 30", "sft": "42, I think. Let me explain the carrying step by step...", "ppo": "42",
         "sft_gold": 0.7, "ppo_gold": 0.95},
        {"prompt": 'Echo this: <script>alert(1)</script> & "quotes"', "sft": "<script>alert(1)</script>",
         "ppo": "&lt;b&gt; stays text", "sft_gold": 0.1, "ppo_gold": 0.3},
        {"prompt": "Reverse: a b c d e f g h i j k l m n o p q r s t u v w x y z",
         "sft": "z y x w v u t s r q p o n m l k j i h g f e d c b a",
         "ppo": "z y x w v u t s r q p o n m l k j i h g f e d c b a", "sft_gold": 1.0, "ppo_gold": 1.0},
    ])
    over = []
    for i in range(40):
        kl = i * 0.6
        s = math.sqrt(kl)
        over.append({"iteration": i * 10, "kl": kl, "proxy": 1.2 * s - 0.05 * kl + noise(0.03),
                     "gold": 0.9 * s - 0.22 * kl + noise(0.02)})
    write_jsonl(d / "overoptimize.jsonl", over)
    (d / "stages.json").write_text(json.dumps([
        {"stage": "pretrain", "seconds": 61.2, "command": "rlhf sft --data run/pretrain.txt --out run/base"},
        {"stage": "sft", "seconds": 35.4, "command": "rlhf sft --model run/base --data run/demos.jsonl --out run/sft"},
        {"stage": "label", "seconds": 4.1, "command": "rlhf label auto --candidates run/cands.jsonl --noise 0.1"},
        {"stage": "reward", "seconds": 48.9,
         "command": "rlhf reward --model run/sft --rankings run/rankings.jsonl --out run/reward"},
        {"stage": "ppo", "seconds": 212.7, "command": "rlhf ppo --policy run/sft --reward run/reward --out run/ppo"},
        {"stage": "dpo", "seconds": 40.3, "command": "rlhf dpo --model run/sft --rankings run/rankings.jsonl --out run/dpo"},
        {"stage": "eval", "seconds": 22.8, "command": "rlhf eval --run run"},
    ], indent=2))


# 12 PPO charts + over-optimisation + reward loss and accuracy + SFT loss + DPO loss and accuracy.
SYNTHETIC_CHARTS = 18
synthetic = not os.environ.get("RUN_DIR")
if synthetic:
    run_dir = Path(tempfile.mkdtemp(prefix="rlhf-report-browser-"))
    synthetic_run(run_dir)
    expected = SYNTHETIC_CHARTS
else:
    run_dir = Path(os.environ["RUN_DIR"])
    expected = int(os.environ["EXPECT_CHARTS"]) if os.environ.get("EXPECT_CHARTS") else None
report_path = Path(subprocess.run([BIN, "report", str(run_dir)], check=True, capture_output=True,
                                  text=True).stdout.strip().split("\n")[-1])
assert report_path.exists(), f"rlhf report printed {report_path}, which does not exist"
html = report_path.read_text(encoding="utf-8")
if expected is None:
    expected = html.count("<svg")
assert expected >= 1, "the report has no charts"
assert not re.search(r"https?://", html), "the report references http(s):// (it must be self-contained)"

problems = []
with sync_playwright() as pw:
    browser = pw.chromium.launch(executable_path="/usr/bin/chromium", args=[
        "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"])
    for name, viewport in [("laptop", {"width": 1366, "height": 900}), ("phone", {"width": 390, "height": 844})]:
        context = browser.new_context(viewport=viewport)
        page = context.new_page()
        page.on("console", lambda m, name=name:
                problems.append(f"{name}: console error: {m.text}") if m.type == "error" else None)
        page.on("pageerror", lambda e, name=name: problems.append(f"{name}: page error: {e.message}"))

        def on_request(route, name=name):
            url = route.request.url
            if url.startswith("file:"):
                return route.continue_()
            problems.append(f"{name}: network request to {url}")
            return route.abort()
        page.route("**/*", on_request)
        page.goto(report_path.resolve().as_uri(), wait_until="load")
        charts = page.locator("svg.chart").evaluate_all("""els => els.map((e) => {
            const r = e.getBoundingClientRect();
            return { w: r.width, h: r.height, paths: e.querySelectorAll('path').length,
                     label: e.getAttribute('aria-label') };
        })""")
        assert len(charts) == expected, f"{name}: expected {expected} charts, the page shows {len(charts)}"
        for c in charts:
            assert c["w"] > 200 and c["h"] > 100, f'{name}: chart "{c["label"]}" rendered at {c["w"]}x{c["h"]}'
            if synthetic:
                assert c["paths"] >= 1, f'{name}: chart "{c["label"]}" draws no line'
        assert re.search("RLHF run report", page.title()), page.title()
        if synthetic:
            # Sample text stays text: the <script> in a sample must not become an element.
            assert page.locator("script").count() == 0, "a <script> element made it into the page"
            assert "<script>alert(1)</script>" in page.text_content("table.samples")
            assert page.locator("table.eval td.best").count() == 3, "best gold, reward-model score, win rate"
        overflow = page.evaluate("() => document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 1, f"{name}: the page scrolls sideways by {overflow}px"
        shot = os.path.join(OUT_DIR, f"report-{name}.png")
        page.screenshot(path=shot, full_page=True)
        print(f"report_check: {name}: {len(charts)} charts, screenshot {shot}")
        context.close()
    browser.close()
if problems:
    print(f"report_check: the page is {report_path}", file=sys.stderr)
    print("report_check: FAILED\n  " + "\n  ".join(problems), file=sys.stderr)
    sys.exit(1)
shutil.copyfile(report_path, os.path.join(OUT_DIR, "report.html"))
if synthetic:
    shutil.rmtree(run_dir, ignore_errors=True)
print(f"report_check: OK (page copied to {os.path.join(OUT_DIR, 'report.html')})")
