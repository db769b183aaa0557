"""Chat templates: our rendering against transformers' apply_chat_template(tokenize=False), on generated chats.

For each fixture tokenizer with a chat template (tests/data/tokenizers/qwen3, llama3) and for Llama-2-chat's
template (given as text to both sides), N seeded random conversations: a system message or not, 1-6 turns,
add_generation_prompt both ways, Unicode and template-looking content, and, where the template takes them, tools,
tool calls and tool results, reasoning_content, enable_thinking. transformers renders each with
AutoTokenizer.from_pretrained(dir).apply_chat_template(..., tokenize=False); ours renders all of them in one
`rlhf chat-template --tokenizer DIR --batch FILE` process, with the special tokens it reads from the same folder.
Both must give the same text, or both raise.

  RLHF_BIN=build/rlhf bash tests/py/run.sh tests/py/test_chat_template_live.py
"""
import json
import os
import random
import subprocess
import unittest

from transformers import AutoTokenizer

RLHF_BIN = os.environ["RLHF_BIN"]
OUT_DIR = os.environ["OUT_DIR"]
TOKENIZERS = os.path.join(os.environ["RLHF_ROOT"], "tests", "data", "tokenizers")
N = 300  # conversations per template

# meta-llama/Llama-2-7b-chat-hf tokenizer_config.json (the fixture llama2 folder ships no template)
LLAMA2_CHAT = (
    "{% if messages[0]['role'] == 'system' %}{% set loop_messages = messages[1:] %}{% set system_message = "
    "messages[0]['content'] %}{% else %}{% set loop_messages = messages %}{% set system_message = false %}"
    "{% endif %}{% for message in loop_messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}"
    "{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}"
    "{% if loop.index0 == 0 and system_message != false %}{% set content = '<<SYS>>\\n' + system_message + "
    "'\\n<</SYS>>\\n\\n' + message['content'] %}{% else %}{% set content = message['content'] %}{% endif %}"
    "{% if message['role'] == 'user' %}{{ bos_token + '[INST] ' + content.strip() + ' [/INST]' }}"
    "{% elif message['role'] == 'assistant' %}{{ ' '  + content.strip() + ' ' + eos_token }}{% endif %}"
    "{% endfor %}"
)

PIECES = [
    "hello", "world", "The quick brown fox", "42", "3.14", "über", "naïve café", "日本語のテキスト", "中文", "한국어",
    "مرحبا بالعالم", "नमस्ते", "Привет", "Ελληνικά", "🙂", "👩‍💻", "🇫🇷", "e\u0301", "\u00a0", "\t", "\n", "\n\n",
    "  ", "\r\n", "{{ x }}", "{% if %}", "<|im_start|>", "<|im_end|>", "<|eot_id|>", "</s>", "<s>", "[INST]",
    "<think>", "</think>", "<tool_call>", "<tool_response>", "</tool_response>", '"quoted"', "it's", "back\\slash",
    "json {\"a\": 1}", "&<>", "",
]


def text(rng, max_pieces=8):
    return "".join(rng.choice(PIECES) + rng.choice(["", " ", "", "\n"]) for _ in range(rng.randint(0, max_pieces)))


def tool_schema(rng, i):
    return {"type": "function", "function": {
        "name": f"tool_{i}_{rng.choice(['get', 'set', 'find'])}",
        "description": text(rng, 3),
        "parameters": {"type": "object", "properties": {"q": {"type": "string", "description": text(rng, 2)},
                                                       "n": {"type": "integer"}}, "required": ["q"]}}}


def conversation(rng, with_tools):
    msgs = []
    if rng.random() < 0.5:
        msgs.append({"role": "system", "content": text(rng)})
    for turn in range(rng.randint(1, 6)):
        msgs.append({"role": "user", "content": text(rng)})
        if turn == 0 and rng.random() < 0.1:
            msgs[-1]["content"] = "<tool_response>" + text(rng, 2) + "</tool_response>"
        if rng.random() < 0.15 and msgs[-1]["role"] == "user" and len(msgs) > 1:
            continue  # two user turns in a row (Llama 2's template raises, the others render)
        a = {"role": "assistant", "content": text(rng)}
        r = rng.random()
        if r < 0.15:
            a["reasoning_content"] = text(rng, 4)
        elif r < 0.3:
            a["content"] = "<think>\n" + text(rng, 3) + "\n</think>\n\n" + text(rng, 3)
        elif r < 0.35:
            a["content"] = None  # transformers drops None-valued keys before the template sees them
        msgs.append(a)
        if with_tools and rng.random() < 0.3:
            args = {"q": text(rng, 2), "n": rng.randint(0, 9)} if rng.random() < 0.7 else json.dumps({"q": "s"})
            call = {"name": f"tool_{rng.randint(0, 2)}_get", "arguments": args}
            a["tool_calls"] = [{"type": "function", "function": call} if rng.random() < 0.7 else call
                               for _ in range(rng.randint(1, 2))]
            for _ in range(rng.randint(1, 2)):
                msgs.append({"role": "tool", "content": text(rng, 3)})
            if rng.random() < 0.5:
                msgs.append({"role": "assistant", "content": text(rng)})
    if rng.random() < 0.3 and msgs[-1]["role"] == "assistant":
        msgs.pop()
    return msgs


def cases_for(name, seed):
    rng = random.Random(seed)
    takes_tools = name == "qwen3"
    out = []
    for _ in range(N):
        case = {"messages": conversation(rng, takes_tools), "add_generation_prompt": rng.random() < 0.5, "vars": {}}
        if takes_tools and rng.random() < 0.4:
            case["vars"]["tools"] = [tool_schema(rng, i) for i in range(rng.randint(1, 3))]
        if name == "qwen3" and rng.random() < 0.6:
            case["vars"]["enable_thinking"] = rng.random() < 0.5
        out.append(case)
    return out


def reference(tok, case, template):
    kwargs = dict(case["vars"])
    tools = kwargs.pop("tools", None)
    try:
        return ("text", tok.apply_chat_template(case["messages"], tools=tools, chat_template=template,
                                                add_generation_prompt=case["add_generation_prompt"],
                                                tokenize=False, **kwargs))
    except Exception as e:  # noqa: BLE001 -- the test compares raising with raising
        return ("error", f"{type(e).__name__}: {e}")


def ours(tok_dir, cases, template, name):
    path = os.path.join(OUT_DIR, name + ".jsonl")
    with open(path, "w", encoding="utf-8") as f:
        for c in cases:
            line = dict(c)
            if template is not None:  # the template as text; the folder still gives the special tokens
                line["template"] = template
            f.write(json.dumps(line, ensure_ascii=False) + "\n")
    cmd = [RLHF_BIN, "chat-template", "--tokenizer", tok_dir, "--batch", path]
    out = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if out.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} failed ({out.returncode}): {out.stderr}")
    rs = [json.loads(line) for line in out.stdout.split("\n") if line]
    assert len(rs) == len(cases), (len(rs), len(cases))
    return [("text", r["text"]) if "text" in r else ("error", r["error"]) for r in rs]


class ChatTemplateLive(unittest.TestCase):
    def check(self, name, tok_name, template=None, seed=13):
        tok_dir = os.path.join(TOKENIZERS, tok_name)
        tok = AutoTokenizer.from_pretrained(tok_dir)
        cases = cases_for(name, seed)
        mine = ours(tok_dir, cases, template, name)
        bad, kinds = [], {"text": 0, "error": 0}
        for c, m in zip(cases, mine):
            ref = reference(tok, c, template)
            kinds[ref[0]] += 1
            if ref[0] != m[0] or (ref[0] == "text" and ref[1] != m[1]):
                bad.append(f"case {json.dumps(c, ensure_ascii=False)}\n    transformers: {ref[0]} {ref[1]!r}\n"
                           f"    ours:         {m[0]} {m[1]!r}")
        print(f"{name}: {len(cases)} conversations, {kinds['text']} rendered, {kinds['error']} raised (both sides)")
        self.assertEqual(bad, [], f"{len(bad)} of {len(cases)} differ; first ones:\n" + "\n".join(bad[:5]))

    def test_qwen3(self):
        self.check("qwen3", "qwen3")

    def test_llama3(self):
        self.check("llama3", "llama3")

    def test_llama2_chat(self):
        self.check("llama2_chat", "llama2", template=LLAMA2_CHAT)


if __name__ == "__main__":
    unittest.main()
