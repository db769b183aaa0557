// tiktoken (npm, the WASM build of OpenAI's Rust library), GPT-2 encoding, one thread, whole file as one string.
// Usage: node bench_tiktoken.mjs TEXT_FILE
import { readFileSync } from "node:fs";
import { get_encoding } from "tiktoken";

const text = readFileSync(process.argv[2], "utf8");
const bytes = Buffer.byteLength(text, "utf8");
const enc = get_encoding("gpt2");
const t0 = process.hrtime.bigint();
const ids = enc.encode(text, "all");
const t1 = process.hrtime.bigint();
const s = Number(t1 - t0) / 1e9;
// Sum of (k + 1) * id[k] mod 2^32, as bench_tokenizer.cpp prints it.
let check = 0;
for (let k = 0; k < ids.length; ++k) check = (check + Math.imul(k + 1, ids[k])) >>> 0;
console.log(`tiktoken whole text   : ${bytes} bytes -> ${ids.length} tokens in ${s.toFixed(3)} s = ` +
            `${(bytes / 1e6 / s).toFixed(2)} MB/s, ${(ids.length / 1e6 / s).toFixed(2)} M tokens/s (ids check ${check})`);
enc.free();
