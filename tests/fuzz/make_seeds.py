#!/usr/bin/env python3
"""Seed corpora for the fuzz targets (tests/fuzz/fuzz_*.cpp), built from the test fixtures: make_seeds.py OUT
writes OUT/<target>/<n> files. Standard library only; nothing here is committed as binary data."""
import json
import os
import struct
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
DATA = os.path.join(HERE, "..", "data")


def write(out, target, seeds):
    d = os.path.join(out, target)
    os.makedirs(d, exist_ok=True)
    for i, s in enumerate(seeds):
        with open(os.path.join(d, "%03d" % i), "wb") as f:
            f.write(s if isinstance(s, bytes) else s.encode("utf-8"))


def safetensors(tensors, metadata=None):
    header, data = {}, b""
    if metadata is not None:
        header["__metadata__"] = metadata
    for name, (dtype, shape, raw) in tensors.items():
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [len(data), len(data) + len(raw)]}
        data += raw
    h = json.dumps(header).encode()
    h += b" " * ((8 - (8 + len(h)) % 8) % 8)
    return struct.pack("<Q", len(h)) + h + data


def small_tokenizer(path, keep=300):
    """The fixture tokenizer.json with only the first `keep` vocab ids and the merges among them."""
    with open(path, encoding="utf-8") as f:
        tj = json.load(f)
    model = tj.get("model", {})
    vocab = model.get("vocab")
    if isinstance(vocab, dict):
        model["vocab"] = {t: i for t, i in vocab.items() if i < keep}
        kept = model["vocab"]
        merges = []
        for m in model.get("merges", []):
            a, b = m.split(" ", 1) if isinstance(m, str) else m
            if a in kept and b in kept and a + b in kept:
                merges.append(m)
        model["merges"] = merges
    elif isinstance(vocab, list):
        model["vocab"] = vocab[:keep]
    tj["added_tokens"] = [t for t in tj.get("added_tokens", [])][:8]
    return json.dumps(tj, ensure_ascii=False)


def main(out):
    toks = ["gpt2", "llama3", "qwen3", "llama2"]
    texts = ["Hello, world!", "  leading and   inner  spaces\t\ttabs\n\nnewlines", "12345 678.9 1e-6",
             "caf\u00e9 na\u00efve \u00c5ngstr\u00f6m \u0130stanbul", "\u4f60\u597d\uff0c\u4e16\u754c \u3053\u3093\u306b\u3061\u306f",
             "\U0001F600\U0001F44D\U0001F3FD emoji", "<|endoftext|> <s></s> <|im_start|>user\nhi<|im_end|>",
             "a" * 300, "e\u0301 \u212b \ufb01 NFC changes this", "\u0645\u0631\u062d\u0628\u0627 \u05e9\u05dc\u05d5\u05dd \u0928\u092e\u0938\u094d\u0924\u0947"]
    write(out, "fuzz_tokenizer", [bytes([i % 4]) + t.encode() for i, t in enumerate(texts * 2)])

    write(out, "fuzz_tokenizer_json",
          [small_tokenizer(os.path.join(DATA, "tokenizers", t, "tokenizer.json")) for t in toks])

    f32 = struct.pack("<4f", 1, 2, 3, 4)
    seeds = [
        safetensors({"a": ("F32", [2, 2], f32)}, {"format": "pt"}),
        safetensors({"w": ("BF16", [3], b"\x80\x3f" * 3), "i": ("I64", [1], struct.pack("<q", 7)),
                     "e": ("F32", [0, 4], b""), "b": ("BOOL", [2], b"\x01\x00")}),
        safetensors({}, {"format": "pt", "note": "empty"}),
    ]
    for m in sorted(os.listdir(os.path.join(DATA, "models"))):
        for name in sorted(os.listdir(os.path.join(DATA, "models", m))):
            if name.endswith(".safetensors"):
                with open(os.path.join(DATA, "models", m, name), "rb") as f:
                    raw = f.read()
                n = struct.unpack("<Q", raw[:8])[0]
                seeds.append(raw[:8 + n + 64])  # the real header; data cut short (an error path)
                seeds.append(raw[:8 + n] + b"\0" * 0)
    write(out, "fuzz_safetensors", seeds)

    configs = []
    for m in sorted(os.listdir(os.path.join(DATA, "models"))):
        p = os.path.join(DATA, "models", m, "config.json")
        if os.path.exists(p):
            with open(p, "rb") as f:
                configs.append(f.read())
    write(out, "fuzz_config", configs)

    msgs = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"},
            {"role": "assistant", "content": "Hello!"}]
    lines = {
        0: [{"prompt": "2+3=", "completion": "5"}, {"messages": msgs}, {"text": "Once upon a time"},
            {"prompt": msgs[:2], "completion": "ok"}],
        1: [{"prompt": "Q", "chosen": "good", "rejected": "bad"},
            {"prompt": "Q", "chosen": "good", "rejected": "bad", "margin": 1.5},
            {"chosen": "\n\nHuman: hi\n\nAssistant: hello", "rejected": "\n\nHuman: hi\n\nAssistant: go away"},
            {"chosen": msgs, "rejected": msgs[:2] + [{"role": "assistant", "content": "No."}]},
            {"prompt": "Q", "responses": ["a", "b", "c"], "ranking": [2, 0, 1]},
            {"prompt": "Q", "responses": ["a", "b", "c", "d"], "ranks": [1, 2, 2, 3]}],
        2: [{"prompt": "Q", "response": "A"}, {"prompt": msgs[:2], "response": "A"}],
        3: [{"prompt": "2+3=", "answer": "5"}, {"messages": msgs[:2]}, {"prompt": msgs[:2]}],
    }
    seeds = []
    for mode, ls in lines.items():
        body = "\n".join(json.dumps(l) for l in ls) + "\n"
        for flags in (0, 4, 8, 16 + 32):
            seeds.append(bytes([mode | flags]) + body.encode())
    write(out, "fuzz_jsonl", seeds)

    snippets = [
        "{% for m in messages %}{{ m.role }}: {{ m.content | trim }}\n{% endfor %}",
        "{%- if add_generation_prompt %}<|assistant|>{% else %}{{ eos_token }}{% endif -%}",
        "{% set ns = namespace(n=0) %}{% for m in messages %}{% set ns.n = ns.n + 1 %}{% endfor %}{{ ns.n }}",
        "{% macro say(x, y='!') %}{{ x ~ y }}{% endmacro %}{{ say('hi') }}{% call say('a') %}b{% endcall %}",
        "{% for k in ['a','b'] %}{% macro i() %}{{k}}{% endmacro %}{{ i() }}{% endfor %}",
        "{{ range(*[2, 4]) | list }}{% set j = joiner(', ') %}{% for x in [1,2] %}{{ j() }}{{ x }}{% endfor %}",
        "{% for x in [1,2,3] %}{{ loop.cycle('odd','even') }}{{ loop.index0 }}{% if loop.last %}.{% endif %}{% endfor %}",
        "{{ messages | selectattr('role', 'equalto', 'user') | map(attribute='content') | join('|') }}",
        "{{ 'x' | safe + ('<y>' | tojson) }}{{ {'a': 1, 2: 'b'} | tojson(indent=2) }}{{ none | selectattr('a') | list }}",
        "{% raw %}{{ not parsed }}{% endraw %}{{ '%s-%d' | format('a', 3) }}{{ 3.14159 | round(2) }}",
        "{{ messages[0]['content'].split(' ') }}{{ 'Hello' [1:3] }}{{ [3,1,2] | sort | reverse | list }}",
        "{% if messages[0].role == 'system' %}{{ messages[0].content }}{% set loop_messages = messages[1:] %}{% endif %}",
        "{{ raise_exception('bad role') if messages[-1].role == 'x' else 'ok' }}{{ tools is none }}",
        "{% filter upper %}abc{% endfilter %}{{ 'a,b' | replace(',', ';') }}{{ 'abc' | length }}{{ [1,2] | first }}",
    ]
    seeds = [s.encode() for s in snippets]
    seeds.append(b"{{ x.y[0] }}\0" + json.dumps({"x": {"y": [1, 2]}}).encode())
    seeds.append(b"{% for k, v in d.items() %}{{ k }}={{ v }};{% endfor %}\0" + json.dumps({"d": {"a": 1, "b": [2]}}).encode())
    for t in ("qwen3", "llama3"):
        with open(os.path.join(DATA, "tokenizers", t, "tokenizer_config.json"), encoding="utf-8") as f:
            seeds.append(json.load(f)["chat_template"].encode())
    write(out, "fuzz_jinja", seeds)

    convs = [msgs, msgs[1:], msgs + [{"role": "user", "content": "more"}],
             [{"role": "user", "content": "weather?"},
              {"role": "assistant", "content": "", "tool_calls": [{"type": "function", "function": {"name": "w", "arguments": {"city": "Paris"}}}]},
              {"role": "tool", "content": "sunny"}],
             [{"role": "user", "content": "think"}, {"role": "assistant", "content": "<think>hmm</think>42", "reasoning_content": "hmm"}],
             [{"role": "user", "content": [{"type": "text", "text": "parts"}]}]]
    write(out, "fuzz_chat_template", [bytes([i]) + json.dumps(c).encode() for i in range(8) for c in convs[i % len(convs):][:2]])

    def req(method, path, body=None, headers=()):
        h = ["%s %s HTTP/1.1" % (method, path), "Host: 127.0.0.1"] + list(headers)
        if body is not None:
            h += ["Content-Type: application/json", "Content-Length: %d" % len(body.encode())]
        return "\r\n".join(h) + "\r\n\r\n" + (body or "")
    auth = ["Authorization: Bearer @T@"]
    write(out, "fuzz_label_http", [
        req("GET", "/api/next", headers=auth), req("GET", "/api/progress", headers=auth),
        req("GET", "/api/me", headers=["Cookie: theme=dark; rlhf_token=@T@"]),
        req("POST", "/api/rank", json.dumps({"item_id": 1, "ranking": [[1], [3, 2]], "flags": ["unsafe"]}), auth),
        req("POST", "/api/rank", json.dumps({"item_id": 2, "skip": True}), auth),
        req("POST", "/api/rank", '{"item_id": 3, "ranking": [[7], [8]]}', auth),
        req("POST", "/api/rank", '{"item_id": 1, "ranking": "x"', auth),
        "POST /login HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 70\r\n\r\ntoken=@T@",
        req("GET", "/", headers=["Cookie: rlhf_token=@T@"]), req("GET", "/login"), req("GET", "/style.css"),
        req("GET", "/app.js", headers=auth), req("GET", "/favicon.ico"), req("POST", "/logout"),
        req("GET", "/api/next") + req("GET", "/api/me", headers=auth),
        "POST /api/rank HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer @T@\r\nTransfer-Encoding: chunked\r\n\r\n"
        "a\r\n{\"item_id\"\r\n0\r\n\r\n",
        req("GET", "/api/next?x=%ZZ&y=%e2%82", headers=auth + ["Accept-Encoding: gzip, br"]),
    ])

    write(out, "fuzz_label_candidates", [
        b"\0" + b'{"prompt": "Q", "responses": ["a", "b"]}\n{"prompt": "R", "responses": ["x", "y", "z"]}\n',
        b"\1" + b'{"prompt": "Q"}\n\n{"prompt": "R"}\n',
    ])


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "fuzz-seeds")
