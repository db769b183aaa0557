#!/usr/bin/env python3
"""An example reward function for `rlhf ppo --reward ...`, in Python's standard library only.

It speaks OpenRLHF's remote reward-model protocol, so the same file serves `--reward http://HOST:PORT/get_reward`
(and OpenRLHF's own `--remote_rm_url`), and with --stdio the JSONL protocol of `--reward exec:"python3 ..."`:

  request  {"query": [str], "prompts": [str], "labels": [str], "responses": [str], "iteration": int}
  answer   {"rewards": [float], "scores": [float], "extra_logs": {"name": [float]}}

The reward here is a verifiable one: 1 when the last number in the response equals the label (the prompt line's
"answer" field), else 0, minus 0.01 per character beyond 20 (a small length penalty). Replace `reward()` with
your own function.

  python3 examples/reward_server.py --port 5000          # prints "listening on http://127.0.0.1:5000/get_reward"
  python3 examples/reward_server.py --stdio              # one request line in, one answer line out
"""
import argparse
import json
import re
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

NUMBER = re.compile(r"-?\d+(?:,\d{3})*(?:\.\d+)?")


def last_number(text):
    found = NUMBER.findall(text)
    return float(found[-1].replace(",", "")) if found else None


def reward(prompt, response, label):
    """Returns (reward, extra logs) for one row."""
    got, want = last_number(response), last_number(label or "")
    correct = 1.0 if got is not None and want is not None and abs(got - want) <= 1e-6 * max(1.0, abs(want)) else 0.0
    penalty = 0.01 * max(0, len(response) - 20)
    return correct - penalty, {"correct": correct, "has_number": 1.0 if got is not None else 0.0}


def answer(request):
    queries = request["query"]
    prompts = request.get("prompts") or [""] * len(queries)
    labels = request.get("labels") or [""] * len(queries)
    # OpenRLHF sends only query = prompt + response; rlhf also sends the response alone.
    responses = request.get("responses") or [q[len(p):] if q.startswith(p) else q for q, p in zip(queries, prompts)]
    rewards, logs = [], {}
    for p, r, l in zip(prompts, responses, labels):
        value, extra = reward(p, r, l)
        rewards.append(value)
        for k, v in extra.items():
            logs.setdefault(k, []).append(v)
    return {"rewards": rewards, "scores": rewards, "extra_logs": logs}


class Handler(BaseHTTPRequestHandler):
    def do_POST(self):
        try:
            body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
            out, status = answer(body), 200
        except (ValueError, KeyError, TypeError) as e:
            out, status = {"error": f"bad request: {e}"}, 400
        data = json.dumps(out, allow_nan=False).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, fmt, *args):  # quiet; errors still go to stderr
        pass


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=5000, help="0: any free port (printed)")
    ap.add_argument("--stdio", action="store_true", help="JSONL on stdin/stdout instead of HTTP")
    args = ap.parse_args()
    if args.stdio:
        for line in sys.stdin:
            if line.strip():
                print(json.dumps(answer(json.loads(line)), allow_nan=False), flush=True)
        return
    server = ThreadingHTTPServer((args.host, args.port), Handler)
    print(f"listening on http://{args.host}:{server.server_address[1]}/get_reward", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
