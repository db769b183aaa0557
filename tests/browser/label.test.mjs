// Browser test of the labelling page, in Debian's headless Chromium driven by playwright-core:
// log in, rank one item by drag-and-drop (with a tie), one by keyboard (with a flag), skip one, then check the
// export; screenshots at laptop and phone widths go to $OUT_DIR. Run by run.sh, which sets RLHF_BIN and OUT_DIR.
import { chromium } from 'playwright-core';
import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import assert from 'node:assert/strict';

const BIN = process.env.RLHF_BIN;
const OUT_DIR = process.env.OUT_DIR;
assert.ok(BIN && fs.existsSync(BIN), `RLHF_BIN must name the built rlhf binary, got ${BIN}`);
assert.ok(OUT_DIR, 'OUT_DIR must name a folder for the screenshots');
fs.mkdirSync(OUT_DIR, { recursive: true });
setTimeout(() => { console.error('label.test.mjs: timed out after 180 s'); process.exit(1); }, 180_000).unref();

// ---- data: three items, the first with markdown, code and markup that must stay text ----
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'rlhf-label-browser-'));
const db = path.join(work, 'db.sqlite');
const items = [
  {
    prompt: 'Write a function that adds two numbers. Mention `<b>` tags.',
    responses: [
      'Here is one:\n```python\ndef add(a, b):\n    return a + b\n```\nIt returns **the sum**.',
      'Use `a + b`. Never write <script>alert(1)</script> in a page.',
      "Steps:\n- take a\n- take b\n- add them\n\n'; DROP TABLE rankings; --",
      'I cannot help with that.',
    ],
  },
  { prompt: 'Name a colour.', responses: ['Red.', 'Blue, the colour of the sky.', 'Green', 'Purple is a colour.'] },
  { prompt: 'Say hello.', responses: ['Hello!', 'Hi there.', 'Greetings.', 'Hey.'] },
];
fs.writeFileSync(path.join(work, 'cands.jsonl'), items.map((x) => JSON.stringify(x)).join('\n') + '\n');
const token = execFileSync(BIN, ['label', 'add-annotator', '--db', db, 'tester'], { encoding: 'utf8' }).trim();

// ---- server on a free loopback port ----
const server = spawn(BIN, ['label', 'serve', '--db', db, '--candidates', path.join(work, 'cands.jsonl'), '--port', '0'],
  { stdio: ['ignore', 'pipe', 'inherit'] });
const base = await new Promise((resolve, reject) => {
  let text = '';
  const t = setTimeout(() => reject(new Error(`no 'serving' line: ${text}`)), 30_000);
  server.stdout.on('data', (d) => {
    text += d;
    const m = text.match(/at (http:\/\/127\.0\.0\.1:\d+)\//);
    if (m) { clearTimeout(t); resolve(m[1]); }
  });
  server.on('exit', (code) => reject(new Error(`label serve exited with ${code}: ${text}`)));
});

const browser = await chromium.launch({
  executablePath: '/usr/bin/chromium',
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});
const problems = [];
try {
  const context = await browser.newContext({ viewport: { width: 1366, height: 800 } });
  const page = await context.newPage();
  page.setDefaultTimeout(10_000);
  page.on('console', (m) => { if (m.type() === 'error') problems.push(`console: ${m.text()}`); });
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  page.on('dialog', (d) => { problems.push(`a dialog opened (script ran?): ${d.message()}`); d.dismiss(); });

  // ---- log in: without a token the page sends us to the form ----
  await page.goto(base + '/');
  assert.equal(new URL(page.url()).pathname, '/login');
  await page.fill('#token', 'not-a-token');
  await page.click('button[type=submit]');
  await page.waitForURL(/\/login#error$/);
  assert.ok(await page.isVisible('#error'), 'a wrong token shows the error');
  await page.fill('#token', token);
  await page.click('button[type=submit]');
  await page.waitForURL(base + '/');
  await page.waitForSelector('.card');
  assert.equal(await page.textContent('#who'), 'tester');
  assert.equal(await page.textContent('#progress-text'), '0 / 3 done');

  const texts = () => page.$$eval('.card .body', (els) => els.map((e) => e.innerText.trim()));
  const ids = () => page.$$eval('.card', (els) => els.map((e) => Number(e.dataset.id)));
  const ranks = () => page.$$eval('.card .rank', (els) => els.map((e) => e.textContent));
  // Candidate ids are given in stored order when the items are imported, so an id's place among its item's sorted
  // ids is its index in "responses".
  const indexIn = (shownIds) => { const sorted = [...shownIds].sort((a, b) => a - b); return (id) => sorted.indexOf(id); };

  // ---- item 1: markup shown as text, code as a block; drag the last card to the top, tie places 2 and 3 ----
  assert.equal(await page.textContent('#prompt'), items[0].prompt.replace(/`/g, ''));
  const bodyText = (await texts()).join('\n');
  assert.ok(bodyText.includes('<script>alert(1)</script>'), 'markup in a candidate is shown as text');
  assert.ok(bodyText.includes("'; DROP TABLE rankings; --"));
  assert.equal(await page.locator('.card pre code').count(), 1, 'the fenced code is a code block');
  assert.equal(await page.locator('.card script').count(), 0);
  const shown1 = await texts();
  const handle = page.locator('.card').nth(3).locator('.handle');
  const hb = await handle.boundingBox();
  const first = await page.locator('.card').nth(0).boundingBox();
  await page.mouse.move(hb.x + hb.width / 2, hb.y + hb.height / 2);
  await page.mouse.down();
  await page.mouse.move(hb.x + hb.width / 2, first.y + 4, { steps: 12 });
  await page.mouse.up();
  const after = await texts();
  assert.deepEqual(after, [shown1[3], shown1[0], shown1[1], shown1[2]], 'drag-and-drop moved the last card to the top');
  const ids1 = await ids();
  await page.locator('.card').nth(2).locator('.tiebtn').click();
  assert.deepEqual(await ranks(), ['1', '2', '2', '3']);
  await page.screenshot({ path: path.join(OUT_DIR, 'label-laptop.png'), fullPage: true });
  const expected1 = new Array(4);
  const index1 = indexIn(ids1);
  [1, 2, 2, 3].forEach((r, i) => { expected1[index1(ids1[i])] = r; });
  await page.click('#submit');
  await page.waitForFunction(() => document.querySelector('#progress-text').textContent === '1 / 3 done');

  // ---- item 2 by keyboard: select the 2nd, move it up, select the 4th, send it to place 2, flag, Enter ----
  await page.waitForFunction(() => document.querySelector('#prompt').textContent === 'Name a colour.');
  const shown2 = await texts();
  await page.keyboard.press('ArrowDown');
  await page.keyboard.press('Shift+ArrowUp');
  await page.keyboard.press('j');
  await page.keyboard.press('j');
  await page.keyboard.press('j');
  await page.keyboard.press('2');
  await page.keyboard.press('u');
  const order2 = await texts();
  const ids2 = await ids();
  assert.deepEqual(order2, [shown2[1], shown2[3], shown2[0], shown2[2]], 'keyboard reordering');
  assert.ok(await page.isChecked('#flag-unsafe'));
  await page.keyboard.press('Enter');
  await page.waitForFunction(() => document.querySelector('#progress-text').textContent === '2 / 3 done');
  const expected2 = ids2.map(indexIn(ids2));

  // ---- item 3 at phone width, then skipped ----
  await page.waitForFunction(() => document.querySelector('#prompt').textContent === 'Say hello.');
  await page.setViewportSize({ width: 390, height: 844 });
  await page.screenshot({ path: path.join(OUT_DIR, 'label-phone.png'), fullPage: true });
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  assert.ok(overflow <= 0, `the page scrolls sideways at phone width by ${overflow}px`);
  await page.click('#skip');
  await page.waitForSelector('#done', { state: 'visible' });
  assert.equal(await page.textContent('#progress-text'), '3 / 3 done');
  await page.screenshot({ path: path.join(OUT_DIR, 'label-done-phone.png') });

  // ---- the export holds the two rankings, not the skip ----
  const out = path.join(work, 'rankings.jsonl');
  execFileSync(BIN, ['label', 'export', '--db', db, '--out', out]);
  const lines = fs.readFileSync(out, 'utf8').trim().split('\n').map((l) => JSON.parse(l));
  assert.equal(lines.length, 2, 'two rankings exported, the skip left out');
  assert.equal(lines[0].prompt, items[0].prompt);
  assert.deepEqual(lines[0].responses, items[0].responses);
  assert.deepEqual(lines[0].ranks, expected1, 'item 1: ranks with the tie');
  assert.equal(lines[1].prompt, items[1].prompt);
  assert.deepEqual(lines[1].ranking, expected2, 'item 2: ranking best first');
  assert.deepEqual(lines[1].flags, ['unsafe']);
  assert.deepEqual(problems, [], 'no console errors, page errors or dialogs');
  console.log(`browser test passed; screenshots in ${OUT_DIR}`);
} finally {
  await browser.close();
  server.kill('SIGTERM');
  fs.rmSync(work, { recursive: true, force: true });
}
