# Browser test of the labelling page, in Debian's headless Chromium driven by Playwright (Python, sync API):
# log in (a wrong token first), rank one item by drag-and-drop (with a tie), one by keyboard (with a flag), skip one,
# then check the export; fails on any console error, page error or dialog. Screenshots at laptop and phone widths
# go to $OUT_DIR, and the page must not scroll sideways at phone width. Run by run.sh, which sets RLHF_BIN and OUT_DIR.
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlparse

from playwright.sync_api import sync_playwright

BIN = os.environ.get("RLHF_BIN", "")
OUT_DIR = os.environ.get("OUT_DIR", "")
assert BIN and os.path.exists(BIN), f"RLHF_BIN must name the built rlhf binary, got {BIN!r}"
assert OUT_DIR, "OUT_DIR must name a folder for the screenshots"
os.makedirs(OUT_DIR, exist_ok=True)
server = None


def on_timeout(signum, frame):
    print("label_test.py: timed out after 180 s", file=sys.stderr)
    if server:
        server.kill()
    os._exit(1)  # Playwright's driver sees its pipe close and takes Chromium down with it


signal.signal(signal.SIGALRM, on_timeout)
signal.alarm(180)

# ---- data: three items, the first with markdown, code and markup that must stay text ----
work = Path(tempfile.mkdtemp(prefix="rlhf-label-browser-"))
db = str(work / "db.sqlite")
items = [
    {
        "prompt": "Write a function that adds two numbers. Mention `<b>` tags.",
        "responses": [
            "Here is one:\n```python\ndef add(a, b):\n    return a + b\n```\nIt returns **the sum**.",
            "Use `a + b`. Never write <script>alert(1)</script> in a page.",
            "Steps:\n- take a\n- take b\n- add them\n\n'; DROP TABLE rankings; --",
            "I cannot help with that.",
        ],
    },
    {"prompt": "Name a colour.", "responses": ["Red.", "Blue, the colour of the sky.", "Green", "Purple is a colour."]},
    {"prompt": "Say hello.", "responses": ["Hello!", "Hi there.", "Greetings.", "Hey."]},
]
(work / "cands.jsonl").write_text("".join(json.dumps(x) + "\n" for x in items))
token = subprocess.run([BIN, "label", "add-annotator", "--db", db, "tester"], check=True, capture_output=True,
                       text=True).stdout.strip()

# ---- server on a free loopback port: wait for its "... at http://127.0.0.1:PORT/" line ----
server_log = work / "serve.out"
with open(server_log, "w") as log:
    server = subprocess.Popen([BIN, "label", "serve", "--db", db, "--candidates", str(work / "cands.jsonl"),
                               "--port", "0"], stdin=subprocess.DEVNULL, stdout=log)


def wait_for_base():
    deadline = time.monotonic() + 30
    while not (m := re.search(r"at (http://127\.0\.0\.1:\d+)/", server_log.read_text())):
        assert server.poll() is None, f"label serve exited with {server.returncode}: {server_log.read_text()}"
        assert time.monotonic() < deadline, f"no 'serving' line: {server_log.read_text()}"
        time.sleep(0.05)
    return m.group(1)


problems = []
pw = browser = None
try:
    base = wait_for_base()
    pw = sync_playwright().start()
    browser = pw.chromium.launch(executable_path="/usr/bin/chromium", args=[
        "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"])
    context = browser.new_context(viewport={"width": 1366, "height": 800})
    page = context.new_page()
    page.set_default_timeout(10_000)
    page.on("console", lambda m: problems.append(f"console: {m.text}") if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append(f"page error: {e.message}"))

    def on_dialog(d):
        problems.append(f"a dialog opened (script ran?): {d.message}")
        d.dismiss()
    page.on("dialog", on_dialog)

    def texts():
        return page.locator(".card .body").evaluate_all("els => els.map((e) => e.innerText.trim())")

    def ids():
        return page.locator(".card").evaluate_all("els => els.map((e) => Number(e.dataset.id))")

    def ranks():
        return page.locator(".card .rank").evaluate_all("els => els.map((e) => e.textContent)")

    def wait_text(selector, text):
        page.wait_for_function("([s, t]) => document.querySelector(s).textContent === t", arg=[selector, text])

    # ---- log in: without a token the page sends us to the form ----
    page.goto(base + "/")
    assert urlparse(page.url).path == "/login", page.url
    page.fill("#token", "not-a-token")
    page.click("button[type=submit]")
    page.wait_for_url(re.compile(r"/login#error$"))
    assert page.is_visible("#error"), "a wrong token shows the error"
    page.fill("#token", token)
    page.click("button[type=submit]")
    page.wait_for_url(base + "/")
    page.wait_for_selector(".card")
    assert page.text_content("#who") == "tester"
    assert page.text_content("#progress-text") == "0 / 3 done"

    # ---- item 1: markup shown as text, code as a block; drag the last card to the top, tie places 2 and 3 ----
    assert page.text_content("#prompt") == items[0]["prompt"].replace("`", "")
    body_text = "\n".join(texts())
    assert "<script>alert(1)</script>" in body_text, "markup in a candidate is shown as text"
    assert "'; DROP TABLE rankings; --" in body_text
    assert page.locator(".card pre code").count() == 1, "the fenced code is a code block"
    assert page.locator(".card script").count() == 0
    shown1 = texts()
    hb = page.locator(".card").nth(3).locator(".handle").bounding_box()
    first = page.locator(".card").nth(0).bounding_box()
    page.mouse.move(hb["x"] + hb["width"] / 2, hb["y"] + hb["height"] / 2)
    page.mouse.down()
    page.mouse.move(hb["x"] + hb["width"] / 2, first["y"] + 4, steps=12)
    page.mouse.up()
    after = texts()
    assert after == [shown1[3], shown1[0], shown1[1], shown1[2]], f"drag-and-drop moved the last card to the top: {after}"
    ids1 = ids()
    page.locator(".card").nth(2).locator(".tiebtn").click()
    assert ranks() == ["1", "2", "2", "3"], ranks()
    page.screenshot(path=os.path.join(OUT_DIR, "label-laptop.png"), full_page=True)
    # Candidate ids are given in stored order when the items are imported, so an id's place among its item's
    # sorted ids is its index in "responses".
    expected1 = [0] * 4
    for shown_id, r in zip(ids1, [1, 2, 2, 3]):
        expected1[sorted(ids1).index(shown_id)] = r
    page.click("#submit")
    wait_text("#progress-text", "1 / 3 done")

    # ---- item 2 by keyboard: select the 2nd, move it up, select the 4th, send it to place 2, flag, Enter ----
    wait_text("#prompt", "Name a colour.")
    shown2 = texts()
    for key in ["ArrowDown", "Shift+ArrowUp", "j", "j", "j", "2", "u"]:
        page.keyboard.press(key)
    order2 = texts()
    ids2 = ids()
    assert order2 == [shown2[1], shown2[3], shown2[0], shown2[2]], f"keyboard reordering: {order2}"
    assert page.is_checked("#flag-unsafe")
    page.keyboard.press("Enter")
    wait_text("#progress-text", "2 / 3 done")
    expected2 = [sorted(ids2).index(i) for i in ids2]

    # ---- item 3 at phone width, then skipped ----
    wait_text("#prompt", "Say hello.")
    page.set_viewport_size({"width": 390, "height": 844})
    page.screenshot(path=os.path.join(OUT_DIR, "label-phone.png"), full_page=True)
    overflow = page.evaluate("() => document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0, f"the page scrolls sideways at phone width by {overflow}px"
    page.click("#skip")
    page.wait_for_selector("#done", state="visible")
    assert page.text_content("#progress-text") == "3 / 3 done"
    page.screenshot(path=os.path.join(OUT_DIR, "label-done-phone.png"))

    # ---- the export holds the two rankings, not the skip ----
    out = work / "rankings.jsonl"
    subprocess.run([BIN, "label", "export", "--db", db, "--out", str(out)], check=True)
    lines = [json.loads(line) for line in out.read_text().strip().split("\n")]
    assert len(lines) == 2, f"two rankings exported, the skip left out: {lines}"
    assert lines[0]["prompt"] == items[0]["prompt"]
    assert lines[0]["responses"] == items[0]["responses"]
    assert lines[0]["ranks"] == expected1, f"item 1: ranks with the tie: {lines[0]['ranks']} != {expected1}"
    assert lines[1]["prompt"] == items[1]["prompt"]
    assert lines[1]["ranking"] == expected2, f"item 2: ranking best first: {lines[1]['ranking']} != {expected2}"
    assert lines[1]["flags"] == ["unsafe"], lines[1]["flags"]
    assert problems == [], f"no console errors, page errors or dialogs: {problems}"
    print(f"browser test passed; screenshots in {OUT_DIR}")
finally:
    if browser:
        browser.close()
    if pw:
        pw.stop()
    server.terminate()
    server.wait()
    shutil.rmtree(work, ignore_errors=True)
