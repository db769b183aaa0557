"""Tokenizer property test: our tokenizer against the tokenizers library on generated strings.

For each fixture tokenizer (tests/data/tokenizers/{gpt2,qwen3,llama3,llama2}), N seeded random strings: code points
drawn from many Unicode scripts and blocks (CJK, Hangul, Arabic, Hebrew, Devanagari, Thai, emoji with ZWJ, skin tones
and flags, combining marks, symbols, control characters, U+0000; never a lone surrogate), text in NFD form that NFC
changes, whitespace runs with \\t \\n \\r and unusual spaces, digit runs, words of 1000+ characters, and the
tokenizer's added and special tokens embedded in text. Each must encode to the same ids as
tokenizers.Tokenizer.from_file(tokenizer.json).encode(s, add_special_tokens=False), and the reference ids must
decode to the same text, with and without skip_special_tokens. Ours runs as one `rlhf tokenize --input` and two
`rlhf detokenize --input` processes per tokenizer.

  RLHF_BIN=build/rlhf bash tests/py/run.sh tests/py/test_tokenizer_live.py
  TOKENIZER_LIVE_N=100000 TOKENIZER_LIVE_SEED=1 ... for a longer run with other strings
"""
import json
import os
import random
import subprocess
import time
import unicodedata
import unittest

from tokenizers import Tokenizer

RLHF_BIN = os.environ["RLHF_BIN"]
OUT_DIR = os.environ["OUT_DIR"]
TOKENIZERS = os.path.join(os.environ["RLHF_ROOT"], "tests", "data", "tokenizers")
N = int(os.environ.get("TOKENIZER_LIVE_N", "10000"))  # strings per tokenizer
SEED = int(os.environ.get("TOKENIZER_LIVE_SEED", "0"))  # added to each tokenizer's own seed

# (first, last) code point ranges, inclusive
BLOCKS = [
    (0x20, 0x7E), (0x20, 0x7E), (0x20, 0x7E), (0x00, 0x1F), (0x7F, 0x9F), (0xA0, 0xFF), (0x100, 0x24F),
    (0x250, 0x2AF), (0x2B0, 0x2FF), (0x300, 0x36F), (0x370, 0x3FF), (0x400, 0x4FF), (0x530, 0x58F), (0x590, 0x5FF),
    (0x600, 0x6FF), (0x750, 0x77F), (0x900, 0x97F), (0x980, 0x9FF), (0xB80, 0xBFF), (0xE00, 0xE7F), (0x10A0, 0x10FF),
    (0x1100, 0x11FF), (0x1E00, 0x1EFF), (0x2000, 0x206F), (0x20A0, 0x20CF), (0x2100, 0x214F), (0x2190, 0x21FF),
    (0x2200, 0x22FF), (0x2500, 0x257F), (0x2600, 0x26FF), (0x2700, 0x27BF), (0x3000, 0x303F), (0x3040, 0x309F),
    (0x30A0, 0x30FF), (0x3400, 0x4DBF), (0x4E00, 0x9FFF), (0x4E00, 0x9FFF), (0xAC00, 0xD7A3), (0xE000, 0xE0FF),
    (0xF900, 0xFAFF), (0xFB00, 0xFB4F), (0xFE00, 0xFE0F), (0xFE30, 0xFE4F), (0xFF00, 0xFFEF), (0xFFF0, 0xFFFF),
    (0x10000, 0x1007F), (0x1D400, 0x1D7FF), (0x1F000, 0x1F02F), (0x1F300, 0x1F5FF), (0x1F600, 0x1F64F),
    (0x1F680, 0x1F6FF), (0x1F900, 0x1F9FF), (0x20000, 0x2A6DF), (0xE0000, 0xE007F), (0xF0000, 0xF00FF),
]
SPACES = [" ", "  ", "\t", "\n", "\r", "\r\n", "\n\n", " \n ", "\u00a0", "\u1680", "\u2000", "\u2002", "\u2003",
          "\u2009", "\u200a", "\u200b", "\u2028", "\u2029", "\u202f", "\u205f", "\u3000", "\u0085", "\u000b", "\u000c",
          "\ufeff"]
EMOJI = ["👩‍💻", "👨‍👩‍👧‍👦", "🏳️‍🌈", "👍🏽", "🇯🇵", "🇫🇷", "❤️", "🧑🏿‍🚀", "😀", "🤖", "#️⃣", "🫠"]
WORDS = ["the", "The", "hello", "world", "don't", "I'm", "you're", "we'll", "it's", "ABC", "camelCase", "snake_case",
         "http://x.org/a?b=c", "e-mail", "naïve", "café", "straße", "Ωmega", "日本語", "中文字符", "한국어", "مرحبا",
         "שלום", "नमस्ते", "ไทย", "Привет", "αβγ", "...", "!!!", "?!", "--", "##", "$100", "3.14", "1,000", "(x)", "[y]",
         "{z}", "<tag>", "a\u0301", "ﬁ", "Ⅻ", "①", "𝐀𝐁", "x²", "½", "™", "\u0000", "\x7f"]
COMPOSED = "éèêëñçåäöüÅÄÖÜÑÇáíóúýàìòùâîôûãõœ" + "가각간갈감갑강개객거건걸검겁게겨격견결겸경" + "ṩḗǖǘ"


def cp_string(rng, n):
    out = []
    for _ in range(n):
        lo, hi = rng.choice(BLOCKS)
        c = rng.randint(lo, hi)
        if 0xD800 <= c <= 0xDFFF:
            continue
        out.append(chr(c))
    return "".join(out)


def segment(rng, specials):
    r = rng.random()
    if r < 0.25:
        return cp_string(rng, rng.randint(1, 12))
    if r < 0.45:
        return "".join(rng.choice(WORDS) + rng.choice(SPACES[:3] + [""]) for _ in range(rng.randint(1, 6)))
    if r < 0.55:
        return "".join(rng.choice(SPACES) for _ in range(rng.randint(1, 5)))
    if r < 0.63:
        return "".join(rng.choice("0123456789") for _ in range(rng.randint(1, 25))) + rng.choice(["", "a", " ", ".5"])
    if r < 0.71:  # NFD text that NFC changes
        return unicodedata.normalize("NFD", "".join(rng.choice(COMPOSED) for _ in range(rng.randint(1, 8))))
    if r < 0.78:
        return "".join(rng.choice(EMOJI) for _ in range(rng.randint(1, 4)))
    if r < 0.90 and specials:  # added / special tokens, glued to text or spaced
        return rng.choice(["", " ", "\n", "x"]) + rng.choice(specials) + rng.choice(["", " ", "\n", "y"])
    if r < 0.92:  # one very long word
        alphabet = rng.choice(["abcdefghij", "aaaa", "0123456789", "日本語中文", "абвгд", "ab1_", "🙂"])
        return "".join(rng.choice(alphabet) for _ in range(rng.randint(1000, 2500)))
    return rng.choice(WORDS) + cp_string(rng, rng.randint(1, 3)) + rng.choice(WORDS)


def generate(seed, n, specials):
    rng = random.Random(seed)
    return ["".join(segment(rng, specials) for _ in range(rng.randint(1, 5))) for _ in range(n)]


def run_lines(args, path):
    t0 = time.time()
    out = subprocess.run([RLHF_BIN] + args + ["--input", path], capture_output=True, text=True, check=False)
    if out.returncode != 0:
        raise AssertionError(f"rlhf {' '.join(args)} --input {path} failed ({out.returncode}): {out.stderr[-2000:]}")
    return [json.loads(line) for line in out.stdout.split("\n") if line], time.time() - t0


def show(s, limit=160):
    r = repr(s)
    return r if len(r) <= limit else r[:limit] + f"... ({len(s)} chars)"


class TokenizerLive(unittest.TestCase):
    def check(self, name):
        tok_dir = os.path.join(TOKENIZERS, name)
        ref = Tokenizer.from_file(os.path.join(tok_dir, "tokenizer.json"))
        added = json.load(open(os.path.join(tok_dir, "tokenizer.json"), encoding="utf-8")).get("added_tokens", [])
        specials = [t["content"] for t in added]
        texts = generate(seed=sum(map(ord, name)) + 1000 * SEED, n=N, specials=specials)

        text_path = os.path.join(OUT_DIR, name + ".texts.jsonl")
        with open(text_path, "w", encoding="utf-8") as f:
            for s in texts:
                f.write(json.dumps(s, ensure_ascii=False) + "\n")
        t0 = time.time()
        want = [e.ids for e in ref.encode_batch(texts, add_special_tokens=False)]
        t_ref = time.time() - t0
        got, t_ours = run_lines(["tokenize", "--tokenizer", tok_dir], text_path)
        self.assertEqual(len(got), len(texts))

        ids_path = os.path.join(OUT_DIR, name + ".ids.jsonl")
        with open(ids_path, "w", encoding="utf-8") as f:
            for ids in want:
                f.write(json.dumps(ids) + "\n")
        decoded = {}
        for skip in (False, True):
            flag = ["--skip-special-tokens"] if skip else []
            decoded[skip], _ = run_lines(["detokenize", "--tokenizer", tok_dir] + flag, ids_path)
            self.assertEqual(len(decoded[skip]), len(texts))

        bad = []
        for i, s in enumerate(texts):
            if got[i] != want[i]:
                k = next((k for k, (a, b) in enumerate(zip(got[i], want[i])) if a != b), min(len(got[i]), len(want[i])))
                bad.append(f"[{i}] encode {show(s)}\n    first difference at token {k}: "
                           f"ours {[ref.id_to_token(t) for t in got[i][k:k + 5]]} "
                           f"tokenizers {[ref.id_to_token(t) for t in want[i][k:k + 5]]}")
            for skip in (False, True):
                ref_text = ref.decode(want[i], skip_special_tokens=skip)
                if decoded[skip][i] != ref_text:
                    bad.append(f"[{i}] decode(skip_special_tokens={skip}) of the ids of {show(s)}\n"
                               f"    ours       {show(decoded[skip][i])}\n    tokenizers {show(ref_text)}")
        chars = sum(map(len, texts))
        print(f"{name}: {len(texts)} strings ({chars} chars, {sum(map(len, want))} tokens); "
              f"encode: tokenizers {t_ref:.1f}s, ours {t_ours:.1f}s (one process); {len(bad)} mismatches")
        self.assertEqual(bad, [], f"{name}: {len(bad)} mismatches; first ones:\n" + "\n".join(bad[:8]))

    def test_gpt2(self):
        self.check("gpt2")

    def test_qwen3(self):
        self.check("qwen3")

    def test_llama3(self):
        self.check("llama3")

    def test_llama2(self):
        self.check("llama2")


if __name__ == "__main__":
    unittest.main()
