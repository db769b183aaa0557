// Browser check of the run report (issue 7): render report.html in Debian's headless Chromium via playwright-core,
// the way a person would look at it. Fails on any console error, page error or network request (the page must be
// self-contained), checks that every chart rendered with a real size, and saves screenshots at laptop and phone
// widths (and a copy of the page) to $OUT_DIR. Run by run_report_check.sh, which sets RLHF_BIN and OUT_DIR.
//   RUN_DIR=path   report an existing run folder instead of the synthetic one below
//   EXPECT_CHARTS  the number of charts to expect there (default: as many <svg> as the HTML holds, at least one)
import { chromium } from 'playwright-core';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import assert from 'node:assert/strict';

const BIN = process.env.RLHF_BIN;
const OUT_DIR = process.env.OUT_DIR;
assert.ok(BIN && fs.existsSync(BIN), `RLHF_BIN must name the built rlhf binary, got ${BIN}`);
assert.ok(OUT_DIR, 'OUT_DIR must name a folder for the screenshots');
fs.mkdirSync(OUT_DIR, { recursive: true });
setTimeout(() => { console.error('report_check.js: timed out after 120 s'); process.exit(1); }, 120_000).unref();

// ---- a synthetic run folder shaped like `rlhf demo`'s output (deterministic: a seeded generator) ----
let seed = 12345;
const rand = () => ((seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648);
const noise = (s) => (rand() - 0.5) * 2 * s;
const jsonl = (rows) => rows.map((r) => JSON.stringify(r)).join('\n') + '\n';

function synthetic_run(dir) {
  fs.mkdirSync(dir, { recursive: true });
  for (const d of ['ppo', 'reward', 'sft', 'dpo']) fs.mkdirSync(path.join(dir, d), { recursive: true });
  const policy = (gold, rm, kl, length, win) => ({ gold, reward_model: rm, kl_to_sft: kl, length, win_rate_vs_sft: win });
  fs.writeFileSync(path.join(dir, 'eval.json'), JSON.stringify({
    policies: {
      base: policy(0.112, -1.84, 2.91, 31.2, 0.21), sft: policy(0.405, 0.12, 0, 14.8, 0.5),
      best_of_n: policy(0.561, 1.31, 1.05, 15.9, 0.63), dpo: policy(0.598, 0.97, 2.4, 13.1, 0.66),
      ppo: policy(0.734, 1.92, 4.87, 12.3, 0.78),
    },
    eval_prompts: 256, seed: 1,
  }, null, 2));
  const ppo = [];
  let beta = 0.05;
  for (let i = 0; i < 60; i++) {
    const kl = 6 * (1 - Math.exp(-i / 25)) + noise(0.2);
    beta *= 1 + 0.1 * Math.max(-1, Math.min(1, (kl - 4) / 4));
    const score = 0.1 + 1.9 * (1 - Math.exp(-i / 18)) + noise(0.08);
    ppo.push({
      iteration: i, score, gold: 0.4 + 0.34 * (1 - Math.exp(-i / 15)) + noise(0.02), kl, beta,
      reward: score - beta * kl, policy_loss: -0.02 * Math.exp(-i / 30) + noise(0.01),
      value_loss: 0.8 * Math.exp(-i / 12) + 0.05 + noise(0.02), clip_frac: 0.12 * Math.exp(-i / 40) + Math.abs(noise(0.02)),
      approx_kl: 0.01 + Math.abs(noise(0.004)), entropy: 2.1 - 0.9 * (1 - Math.exp(-i / 20)) + noise(0.03),
      response_length: 15 - 3 * (1 - Math.exp(-i / 20)) + noise(0.5), eos_frac: Math.min(1, 0.8 + i / 200 + noise(0.03)),
      tokens_per_s: 2400 + noise(150), rollout_s: 1.4 + noise(0.1), scoring_s: 0.3 + noise(0.03), train_s: 2.2 + noise(0.1),
    });
  }
  ppo[7].kl = null;  // a gap, as a NaN written by the trainer would be
  fs.writeFileSync(path.join(dir, 'ppo', 'metrics.jsonl'), jsonl(ppo));
  const rm = [];
  for (let s = 1; s <= 200; s++) {
    rm.push({ step: s, loss: 0.69 * Math.exp(-s / 80) + 0.25 + noise(0.04), accuracy: 0.5 + 0.35 * (1 - Math.exp(-s / 50)) + noise(0.05) });
    if (s % 25 === 0) rm.push({ step: s, eval_loss: 0.69 * Math.exp(-s / 90) + 0.3, eval_accuracy: 0.5 + 0.3 * (1 - Math.exp(-s / 60)) });
  }
  fs.writeFileSync(path.join(dir, 'reward', 'metrics.jsonl'), jsonl(rm));
  fs.writeFileSync(path.join(dir, 'sft', 'metrics.jsonl'),
    jsonl(Array.from({ length: 300 }, (_, s) => ({ step: s, loss: 3.5 * Math.exp(-s / 60) + 0.6 + noise(0.05), lr: 3e-4 }))));
  fs.writeFileSync(path.join(dir, 'dpo', 'metrics.jsonl'),
    jsonl(Array.from({ length: 120 }, (_, s) => ({ step: s, loss: 0.69 * Math.exp(-s / 50) + 0.2 + noise(0.03), accuracy: 0.5 + 0.4 * (1 - Math.exp(-s / 30)) + noise(0.04) }))));
  fs.writeFileSync(path.join(dir, 'samples.jsonl'), jsonl([
    { prompt: 'Sort: 7 2 9 4', sft: '2 4 7 9 9', ppo: '2 4 7 9', sft_gold: 0.4, ppo_gold: 1.0 },
    { prompt: 'Add: 12 + 30', sft: '42, I think. Let me explain the carrying step by step...', ppo: '42', sft_gold: 0.7, ppo_gold: 0.95 },
    { prompt: 'Echo this: <script>alert(1)</script> & "quotes"', sft: '<script>alert(1)</script>', ppo: '&lt;b&gt; stays text', sft_gold: 0.1, ppo_gold: 0.3 },
    { prompt: 'Reverse: a b c d e f g h i j k l m n o p q r s t u v w x y z', sft: 'z y x w v u t s r q p o n m l k j i h g f e d c b a', ppo: 'z y x w v u t s r q p o n m l k j i h g f e d c b a', sft_gold: 1.0, ppo_gold: 1.0 },
  ]));
  fs.writeFileSync(path.join(dir, 'overoptimize.jsonl'), jsonl(Array.from({ length: 40 }, (_, i) => {
    const kl = i * 0.6;
    const s = Math.sqrt(kl);
    return { iteration: i * 10, kl, proxy: 1.2 * s - 0.05 * kl + noise(0.03), gold: 0.9 * s - 0.22 * kl + noise(0.02) };
  })));
  fs.writeFileSync(path.join(dir, 'stages.json'), JSON.stringify([
    { stage: 'pretrain', seconds: 61.2, command: 'rlhf sft --data run/pretrain.txt --out run/base' },
    { stage: 'sft', seconds: 35.4, command: 'rlhf sft --model run/base --data run/demos.jsonl --out run/sft' },
    { stage: 'label', seconds: 4.1, command: 'rlhf label auto --candidates run/cands.jsonl --noise 0.1' },
    { stage: 'reward', seconds: 48.9, command: 'rlhf reward --model run/sft --rankings run/rankings.jsonl --out run/reward' },
    { stage: 'ppo', seconds: 212.7, command: 'rlhf ppo --policy run/sft --reward run/reward --out run/ppo' },
    { stage: 'dpo', seconds: 40.3, command: 'rlhf dpo --model run/sft --rankings run/rankings.jsonl --out run/dpo' },
    { stage: 'eval', seconds: 22.8, command: 'rlhf eval --run run' },
  ], null, 2));
}

// 12 PPO charts + over-optimisation + reward loss and accuracy + SFT loss + DPO loss and accuracy.
const SYNTHETIC_CHARTS = 18;
let runDir = process.env.RUN_DIR;
let expected = process.env.EXPECT_CHARTS ? Number(process.env.EXPECT_CHARTS) : undefined;
if (!runDir) {
  runDir = fs.mkdtempSync(path.join(os.tmpdir(), 'rlhf-report-browser-'));
  synthetic_run(runDir);
  expected = SYNTHETIC_CHARTS;
}
const reportPath = execFileSync(BIN, ['report', runDir], { encoding: 'utf8' }).trim().split('\n').pop();
assert.ok(fs.existsSync(reportPath), `rlhf report printed ${reportPath}, which does not exist`);
const html = fs.readFileSync(reportPath, 'utf8');
const svgInSource = (html.match(/<svg/g) || []).length;
if (expected === undefined) expected = svgInSource;
assert.ok(expected >= 1, 'the report has no charts');
assert.ok(!/https?:\/\//.test(html), 'the report references http(s):// (it must be self-contained)');

const browser = await chromium.launch({
  executablePath: '/usr/bin/chromium',
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});
const problems = [];
try {
  for (const [name, viewport] of [['laptop', { width: 1366, height: 900 }], ['phone', { width: 390, height: 844 }]]) {
    const context = await browser.newContext({ viewport });
    const page = await context.newPage();
    page.on('console', (m) => { if (m.type() === 'error') problems.push(`${name}: console error: ${m.text()}`); });
    page.on('pageerror', (e) => problems.push(`${name}: page error: ${e.message}`));
    await page.route('**/*', (route) => {
      const url = route.request().url();
      if (url.startsWith('file:')) return route.continue();
      problems.push(`${name}: network request to ${url}`);
      return route.abort();
    });
    await page.goto(pathToFileURL(reportPath).href, { waitUntil: 'load' });
    const charts = await page.$$eval('svg.chart', (els) => els.map((e) => {
      const r = e.getBoundingClientRect();
      return { w: r.width, h: r.height, paths: e.querySelectorAll('path').length, label: e.getAttribute('aria-label') };
    }));
    assert.equal(charts.length, expected, `${name}: expected ${expected} charts, the page shows ${charts.length}`);
    for (const c of charts) {
      assert.ok(c.w > 200 && c.h > 100, `${name}: chart "${c.label}" rendered at ${c.w}x${c.h}`);
      if (!process.env.RUN_DIR) assert.ok(c.paths >= 1, `${name}: chart "${c.label}" draws no line`);
    }
    const title = await page.title();
    assert.match(title, /RLHF run report/);
    if (!process.env.RUN_DIR) {
      // Sample text stays text: the <script> in a sample must not become an element.
      assert.equal(await page.locator('script').count(), 0, 'a <script> element made it into the page');
      assert.ok((await page.textContent('table.samples')).includes('<script>alert(1)</script>'));
      assert.equal(await page.locator('table.eval td.best').count(), 3, 'best gold, reward-model score, win rate');
    }
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    assert.ok(overflow <= 1, `${name}: the page scrolls sideways by ${overflow}px`);
    const shot = path.join(OUT_DIR, `report-${name}.png`);
    await page.screenshot({ path: shot, fullPage: true });
    console.log(`report_check: ${name}: ${charts.length} charts, screenshot ${shot}`);
    await context.close();
  }
} finally {
  await browser.close();
}
if (problems.length) {
  console.error(`report_check: the page is ${reportPath}`);
  console.error('report_check: FAILED\n  ' + problems.join('\n  '));
  process.exit(1);
}
fs.copyFileSync(reportPath, path.join(OUT_DIR, 'report.html'));
if (!process.env.RUN_DIR) fs.rmSync(runDir, { recursive: true, force: true });
console.log(`report_check: OK (page copied to ${path.join(OUT_DIR, 'report.html')})`);
