# The peers of bench_tokenizer.cpp, from PyPI: Hugging Face `tokenizers` on the fixture's tokenizer.json, and
# `tiktoken`'s GPT-2 encoding, each encoding the whole text file as one string on one thread (MB/s, M tokens/s).
# Checks that both give the same ids (compared in full), and with --expect TOKENS CHECK that they match rlhf's
# count and its ids check (sum of (k + 1) * id[k] mod 2^32, as bench_tokenizer.cpp prints it); exits 1 otherwise.
#
# tiktoken.get_encoding("gpt2") downloads vocab.bpe and encoder.json from openaipublic.blob.core.windows.net at run
# time, so the same Encoding is built here from tokenizer.json instead: GPT-2's ranks are its ids (tiktoken's own
# loader asserts this of encoder.json), and tiktoken's GPT-2 pattern and <|endoftext|> = 50256.
# Usage: python bench_peers.py TOKENIZER_JSON TEXT_FILE [--expect TOKENS CHECK]
import os

os.environ["RAYON_NUM_THREADS"] = "1"  # one thread for tokenizers (its encode is serial anyway)
os.environ["TOKENIZERS_PARALLELISM"] = "false"

import argparse
import json
import operator
import sys
import time

import tiktoken
import tokenizers
from tiktoken_ext.openai_public import r50k_pat_str  # the pattern get_encoding("gpt2") uses


def byte_decoder():
    # GPT-2's byte-level alphabet: printable bytes stand for themselves, the other 68 map to chr(256 + n).
    keep = [b for b in range(256) if chr(b).isprintable() and chr(b) != " "]
    table = {chr(b): b for b in keep}
    for n, b in enumerate(b for b in range(256) if b not in keep):
        table[chr(256 + n)] = b
    return table


def tiktoken_gpt2(tokenizer_json):
    model = json.load(open(tokenizer_json, encoding="utf-8"))["model"]
    to_byte = byte_decoder()
    ranks = {bytes(to_byte[c] for c in tok): i for tok, i in model["vocab"].items() if tok != "<|endoftext|>"}
    # tiktoken merges the pair whose result has the lowest rank; that is GPT-2's merge order only if merge k made
    # token 256 + k.
    for k, merge in enumerate(model["merges"]):
        a, b = merge.split(" ") if isinstance(merge, str) else merge
        assert ranks[bytes(to_byte[c] for c in a + b)] == 256 + k, f"merge {k} ({merge}) is not token {256 + k}"
    return tiktoken.Encoding("gpt2-local", pat_str=r50k_pat_str, mergeable_ranks=ranks,
                             special_tokens={"<|endoftext|>": 50256}, explicit_n_vocab=50257)


def ids_check(ids):
    return sum(map(operator.mul, range(1, len(ids) + 1), ids)) % 2**32


def report(name, n_bytes, ids, seconds):
    print(f"{name:<21}: {n_bytes} bytes -> {len(ids)} tokens in {seconds:.3f} s = {n_bytes / 1e6 / seconds:.2f} MB/s, "
          f"{len(ids) / 1e6 / seconds:.2f} M tokens/s (ids check {ids_check(ids)})")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("tokenizer_json")
    ap.add_argument("text_file")
    ap.add_argument("--expect", nargs=2, type=int, metavar=("TOKENS", "CHECK"), help="rlhf's count and ids check")
    args = ap.parse_args()
    text = open(args.text_file, encoding="utf-8").read()
    n_bytes = len(text.encode("utf-8"))

    hf = tokenizers.Tokenizer.from_file(args.tokenizer_json)
    t0 = time.perf_counter()
    hf_ids = hf.encode(text, add_special_tokens=False).ids
    t1 = time.perf_counter()
    report(f"tokenizers {tokenizers.__version__}", n_bytes, hf_ids, t1 - t0)

    enc = tiktoken_gpt2(args.tokenizer_json)
    t0 = time.perf_counter()
    tt_ids = enc.encode(text, allowed_special="all")
    t1 = time.perf_counter()
    report(f"tiktoken {tiktoken.__version__}", n_bytes, tt_ids, t1 - t0)

    ok = True
    if hf_ids != tt_ids:
        k = next((k for k, (a, b) in enumerate(zip(hf_ids, tt_ids)) if a != b), min(len(hf_ids), len(tt_ids)))
        print(f"MISMATCH: tokenizers and tiktoken differ first at id {k}", file=sys.stderr)
        ok = False
    if args.expect and (len(hf_ids), ids_check(hf_ids)) != tuple(args.expect):
        print(f"MISMATCH: rlhf gave {args.expect[0]} tokens (ids check {args.expect[1]}), tokenizers "
              f"{len(hf_ids)} (ids check {ids_check(hf_ids)})", file=sys.stderr)
        ok = False
    print("ids: rlhf, tokenizers and tiktoken agree" if ok and args.expect else
          "ids: tokenizers and tiktoken agree" if ok else "ids: DISAGREE")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
