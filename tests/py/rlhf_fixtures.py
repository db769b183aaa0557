"""Shared fixtures of the Python tests: the rlhf binary, tiny model folders with a tokenizer, small data files.

The tiny models of tests/data/models (vocab 512) ship without a tokenizer; the training commands need one in the
model folder. tiny_tokenizer() trains a byte-level BPE of 400 tokens with the `tokenizers` library (deterministic,
offline) on the same words the data files use, with <pad> = 0, <s> = 1, </s> = 2 as the configs expect
(pad_token_id 0, bos 1, eos 2). tiny_model(name) copies a fixture's config and weights next to it.

Qwen folders get the pre-tokenizer of the real Qwen tokenizer (tests/data/tokenizers/qwen3: a Split on Qwen's
regex, digits one by one, then ByteLevel without its own regex), as every real Qwen folder has: transformers 5 picks
the tokenizer class from config.json's model_type (Qwen2Tokenizer for qwen2) and rebuilds that pre-tokenizer
whatever tokenizer.json says, while rlhf and the tokenizers library follow tokenizer.json. A qwen2 model with a
GPT-2-style tokenizer.json would encode " 3" differently in transformers (measured: 223, 21 vs 327).
"""
import json
import os
import shutil
import subprocess
import time

RLHF_BIN = os.environ["RLHF_BIN"]
RLHF_ROOT = os.environ["RLHF_ROOT"]
OUT_DIR = os.environ["OUT_DIR"]
DATA = os.path.join(RLHF_ROOT, "tests", "data")

WORDS = ["cat", "dog", "cow", "owl", "fox", "bee", "elk", "yak", "emu", "ant", "bat", "rat", "good", "bad", "ok"]


def run_rlhf(*args, timeout=600):
    """Runs `rlhf ARGS` with one thread on the CPU; returns (stdout, seconds). A failure shows the output."""
    cmd = [RLHF_BIN, *map(str, args), "--threads", "1", "--device", "cpu"]
    t0 = time.time()
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    if p.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} exited {p.returncode}:\n{p.stdout}\n{p.stderr}")
    return p.stdout, time.time() - t0


def write_jsonl(path, rows):
    with open(path, "w") as f:
        for r in rows:
            f.write(json.dumps(r) + "\n")
    return path


def sft_rows(n=16):
    return [{"prompt": f"Name animal {i}:", "completion": f" the {WORDS[i % 12]}"} for i in range(n)]


def pair_rows(n=16):
    return [{"prompt": f"Say something {i % 5}", "chosen": " good good good", "rejected": " bad bad bad"}
            for i in range(n)]


def prompt_rows(n=8):
    return [{"prompt": f"The {WORDS[i % 12]} says"} for i in range(n)]


def tiny_tokenizer(root, qwen=False):
    """A byte-level BPE tokenizer folder of 400 tokens (ids < 512, the tiny models' vocab); built once per root.
    qwen: with the real Qwen tokenizer's pre-tokenizer and decoder (see the top)."""
    out = os.path.join(root, "tokenizer-qwen" if qwen else "tokenizer")
    if os.path.exists(os.path.join(out, "tokenizer.json")):
        return out
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    os.makedirs(out, exist_ok=True)
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=400, special_tokens=["<pad>", "<s>", "</s>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    texts = [json.dumps(r) for r in sft_rows(64) + pair_rows(16) + prompt_rows(12)]
    texts += [" ".join(WORDS)] * 4 + ["Name animal Say something The says the"] * 4
    tok.train_from_iterator(texts, trainer)
    assert tok.get_vocab_size() <= 512, tok.get_vocab_size()
    tok.save(os.path.join(out, "tokenizer.json"))
    if qwen:
        with open(os.path.join(DATA, "tokenizers", "qwen3", "tokenizer.json")) as f:
            real = json.load(f)
        with open(os.path.join(out, "tokenizer.json")) as f:
            mine = json.load(f)
        mine["pre_tokenizer"], mine["decoder"] = real["pre_tokenizer"], real["decoder"]
        with open(os.path.join(out, "tokenizer.json"), "w") as f:
            json.dump(mine, f)
    with open(os.path.join(out, "tokenizer_config.json"), "w") as f:
        json.dump({"tokenizer_class": "PreTrainedTokenizerFast", "bos_token": "<s>", "eos_token": "</s>",
                   "pad_token": "<pad>", "model_max_length": 128}, f)
    return out


def tiny_model(name, root):
    """tests/data/models/NAME's config and weights with the tiny tokenizer, in ROOT/models/NAME."""
    src = os.path.join(DATA, "models", name)
    dst = os.path.join(root, "models", name)
    if os.path.exists(dst):
        return dst
    os.makedirs(dst)
    for f in os.listdir(src):
        if f.endswith(".safetensors") and not f.startswith("reference") or f in (
                "config.json", "generation_config.json", "model.safetensors.index.json"):
            shutil.copy(os.path.join(src, f), dst)
    with open(os.path.join(src, "config.json")) as f:
        qwen = json.load(f)["model_type"].startswith("qwen")
    tok = tiny_tokenizer(root, qwen=qwen)
    for f in os.listdir(tok):
        shutil.copy(os.path.join(tok, f), dst)
    return dst


def inputs(vocab):
    """Two rows, the second right-padded with pad id 0; real ids avoid 0 (transformers' classifiers find the last
    real token by pad_token_id, ours by the mask)."""
    import torch
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(3, vocab, (2, 12), generator=g)
    mask = torch.ones_like(ids)
    mask[1, 8:] = 0
    ids[1, 8:] = 0
    return ids, mask


def relative_diff(ours, theirs):
    return ((ours - theirs).abs().max() / theirs.abs().max()).item()


def read_jsonl(path):
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]
