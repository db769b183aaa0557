// The labelling page: fetch an item from /api/next, let the annotator order its candidates (drag, rank buttons or
// keyboard), mark ties, flag or skip, and POST /api/rank. No framework; the page's only state is below.
//
// Safety: text from the server (prompt, candidates) only ever reaches the page through textContent / text nodes,
// never parsed as HTML, so markup in a candidate is shown as text.
'use strict';

const state = {
  item: null,          // {item_id, prompt, candidates: [{id, text}]}
  order: [],           // candidate ids, best first, as displayed
  tied: new Set(),     // ids tied with the candidate displayed directly above them
  focus: 0,            // index in order of the selected card
  busy: false,         // a request is in flight
};

const $ = (id) => document.getElementById(id);

// ---- markdown, readably and safely: fenced code, inline code, bold, lists, paragraphs ----
function inline(parent, text) {
  // `code` and **bold**; everything else plain text.
  const re = /(`[^`\n]+`|\*\*[^*\n]+\*\*)/g;
  let last = 0;
  for (const m of text.matchAll(re)) {
    if (m.index > last) parent.appendChild(document.createTextNode(text.slice(last, m.index)));
    const tok = m[0];
    const el = document.createElement(tok.startsWith('`') ? 'code' : 'strong');
    el.textContent = tok.startsWith('`') ? tok.slice(1, -1) : tok.slice(2, -2);
    parent.appendChild(el);
    last = m.index + tok.length;
  }
  if (last < text.length) parent.appendChild(document.createTextNode(text.slice(last)));
}

function renderMarkdown(container, text) {
  container.replaceChildren();
  const lines = text.split('\n');
  let para = null, list = null;
  const close = () => { para = null; list = null; };
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i];
    if (line.startsWith('```')) {  // fenced code block, to the closing fence or the end
      close();
      const code = [];
      for (i++; i < lines.length && !lines[i].startsWith('```'); i++) code.push(lines[i]);
      const pre = document.createElement('pre');
      const c = document.createElement('code');
      c.textContent = code.join('\n');
      pre.appendChild(c);
      container.appendChild(pre);
      continue;
    }
    if (line.trim() === '') { close(); continue; }
    const item = line.match(/^\s*(?:[-*]|\d+\.)\s+(.*)$/);
    if (item) {
      const ordered = /^\s*\d+\./.test(line);
      if (!list || list.tagName !== (ordered ? 'OL' : 'UL')) {
        list = document.createElement(ordered ? 'ol' : 'ul');
        container.appendChild(list);
      }
      para = null;
      const li = document.createElement('li');
      inline(li, item[1]);
      list.appendChild(li);
      continue;
    }
    const heading = line.match(/^#{1,6}\s+(.*)$/);
    if (heading) {
      close();
      const h = document.createElement('p');
      h.className = 'md-heading';
      inline(h, heading[1]);
      container.appendChild(h);
      continue;
    }
    list = null;
    if (!para) {
      para = document.createElement('p');
      container.appendChild(para);
    } else {
      para.appendChild(document.createElement('br'));
    }
    inline(para, line);
  }
}

// ---- API ----
async function api(method, path, body) {
  const res = await fetch(path, {
    method,
    headers: body ? { 'Content-Type': 'application/json' } : {},
    body: body ? JSON.stringify(body) : undefined,
    credentials: 'same-origin',
  });
  if (res.status === 401) { window.location.href = '/login'; throw new Error('not logged in'); }
  const data = await res.json().catch(() => ({ error: `HTTP ${res.status}` }));
  if (!res.ok) { const e = new Error(data.error || `HTTP ${res.status}`); e.status = res.status; throw e; }
  return data;
}

function setStatus(text, isError) {
  const s = $('status');
  s.textContent = text;
  s.className = isError ? 'error' : '';
}

// ---- ordering model ----
function groups() {  // [[ids of the best group], ..., [worst]]
  const out = [];
  state.order.forEach((id, i) => {
    if (i > 0 && state.tied.has(id)) out[out.length - 1].push(id);
    else out.push([id]);
  });
  return out;
}

// Moves the card at index from to index to; ties of the cards whose neighbour above changes are dropped.
function move(from, to) {
  const n = state.order.length;
  to = Math.max(0, Math.min(n - 1, to));
  if (from === to) return;
  const id = state.order[from];
  const belowOld = state.order[from + 1];
  state.order.splice(from, 1);
  state.order.splice(to, 0, id);
  const belowNew = state.order[to + 1];
  for (const x of [id, belowOld, belowNew]) if (x !== undefined) state.tied.delete(x);
  state.focus = to;
  render();
}

function toggleTie(index) {
  if (index <= 0) return;  // the first card has nothing above it
  const id = state.order[index];
  if (state.tied.has(id)) state.tied.delete(id); else state.tied.add(id);
  render();
}

// ---- rendering ----
function render() {
  const list = $('candidates');
  const byId = new Map(state.item.candidates.map((c) => [c.id, c]));
  const n = state.order.length;
  const rankOf = new Map();
  groups().forEach((g, gi) => g.forEach((id) => rankOf.set(id, gi + 1)));
  const hadFocus = list.contains(document.activeElement);  // keep keyboard focus across the re-render
  list.replaceChildren();
  state.order.forEach((id, i) => {
    const li = document.createElement('li');
    li.className = 'card' + (state.tied.has(id) ? ' tied' : '') + (i === state.focus ? ' selected' : '');
    li.tabIndex = i === state.focus ? 0 : -1;
    li.dataset.id = String(id);
    li.setAttribute('aria-label', `Place ${rankOf.get(id)} of ${n}`);

    const side = document.createElement('div');
    side.className = 'side';
    const badge = document.createElement('span');
    badge.className = 'rank';
    badge.textContent = String(rankOf.get(id));
    const handle = document.createElement('span');
    handle.className = 'handle';
    handle.textContent = '⠿';
    handle.title = 'Drag to reorder';
    handle.addEventListener('pointerdown', (ev) => startDrag(ev, li));
    side.append(badge, handle);

    const body = document.createElement('div');
    body.className = 'body md';
    renderMarkdown(body, byId.get(id).text);

    const controls = document.createElement('div');
    controls.className = 'controls';
    for (let r = 1; r <= n; r++) {
      const b = document.createElement('button');
      b.type = 'button';
      b.className = 'rankbtn' + (r === i + 1 ? ' current' : '');
      b.textContent = String(r);
      b.title = `Move to place ${r}`;
      b.tabIndex = -1;
      b.addEventListener('click', () => move(state.order.indexOf(id), r - 1));
      controls.appendChild(b);
    }
    if (i > 0) {
      const tie = document.createElement('button');
      tie.type = 'button';
      tie.className = 'tiebtn';
      tie.textContent = '=';
      tie.title = 'Tie with the response above';
      tie.tabIndex = -1;
      tie.setAttribute('aria-pressed', state.tied.has(id) ? 'true' : 'false');
      tie.addEventListener('click', () => toggleTie(state.order.indexOf(id)));
      controls.appendChild(tie);
    }
    li.addEventListener('focus', () => { state.focus = state.order.indexOf(id); markSelected(); });
    li.append(side, body, controls);
    list.appendChild(li);
  });
  const sel = list.children[state.focus];
  if (sel && hadFocus) sel.focus();
}

function markSelected() {
  [...$('candidates').children].forEach((li, i) => {
    li.classList.toggle('selected', i === state.focus);
    li.tabIndex = i === state.focus ? 0 : -1;
  });
}

function focusCard(i) {
  state.focus = Math.max(0, Math.min(state.order.length - 1, i));
  markSelected();
  $('candidates').children[state.focus].focus();
}

// ---- drag and drop with pointer events (mouse, pen and touch alike) ----
function startDrag(ev, li) {
  ev.preventDefault();
  const handle = ev.currentTarget;
  handle.setPointerCapture(ev.pointerId);
  li.classList.add('dragging');
  const from = state.order.indexOf(Number(li.dataset.id));
  let to = from;
  const list = $('candidates');
  const onMove = (e) => {
    // The drop place: the number of other cards whose middle is above the pointer.
    const cards = [...list.children].filter((c) => c !== li);
    to = cards.filter((c) => { const r = c.getBoundingClientRect(); return r.top + r.height / 2 < e.clientY; }).length;
    cards.forEach((c) => c.classList.remove('drop-before', 'drop-after'));
    if (to < cards.length) cards[to].classList.add('drop-before');
    else if (cards.length) cards[cards.length - 1].classList.add('drop-after');
  };
  const onUp = () => {
    handle.removeEventListener('pointermove', onMove);
    handle.removeEventListener('pointerup', onUp);
    handle.removeEventListener('pointercancel', onUp);
    li.classList.remove('dragging');
    if (to !== from) move(from, to); else render();
    focusCard(state.focus);
  };
  handle.addEventListener('pointermove', onMove);
  handle.addEventListener('pointerup', onUp);
  handle.addEventListener('pointercancel', onUp);
}

// ---- flow ----
function flags() {
  return [$('flag-unsafe'), $('flag-all-bad')].filter((c) => c.checked).map((c) => c.value);
}

async function loadProgress() {
  const p = await api('GET', '/api/progress');
  $('progress-bar').max = Math.max(1, p.total);
  $('progress-bar').value = p.done;
  $('progress-text').textContent = `${p.done} / ${p.total} done`;
}

async function loadNext() {
  const item = await api('GET', '/api/next');
  await loadProgress();
  if (item.item_id === null) {
    state.item = null;
    $('work').hidden = true;
    $('done').hidden = false;
    return;
  }
  state.item = item;
  state.order = item.candidates.map((c) => c.id);
  state.tied = new Set();
  state.focus = 0;
  $('flag-unsafe').checked = false;
  $('flag-all-bad').checked = false;
  renderMarkdown($('prompt'), item.prompt);
  $('work').hidden = false;
  $('done').hidden = true;
  render();
  $('candidates').children[0].focus();
}

async function send(body, what) {
  if (state.busy || !state.item) return;
  state.busy = true;
  try {
    await api('POST', '/api/rank', body);
    setStatus(`${what} item ${body.item_id}.`, false);
    await loadNext();
  } catch (e) {
    if (e.status === 409) { setStatus(e.message, true); await loadNext(); }
    else setStatus(`Not saved: ${e.message}`, true);
  } finally {
    state.busy = false;
  }
}

const submit = () => send({ item_id: state.item.item_id, ranking: groups(), flags: flags() }, 'Ranked');
const skip = () => send({ item_id: state.item.item_id, skip: true, flags: flags() }, 'Skipped');

function onKey(ev) {
  if (!state.item || $('help').open) return;
  const t = ev.target;
  if (t instanceof HTMLInputElement || t instanceof HTMLTextAreaElement) return;
  const onButton = t instanceof HTMLButtonElement;
  const i = state.focus;
  const key = ev.key;
  let handled = true;
  if ((key === 'ArrowUp' && ev.shiftKey) || key === 'K') move(i, i - 1);
  else if ((key === 'ArrowDown' && ev.shiftKey) || key === 'J') move(i, i + 1);
  else if (key === 'ArrowUp' || key === 'k') focusCard(i - 1);
  else if (key === 'ArrowDown' || key === 'j') focusCard(i + 1);
  else if (/^[1-9]$/.test(key) && !ev.ctrlKey && !ev.metaKey && !ev.altKey) move(i, Number(key) - 1);
  else if (key === '=' || key === 't') toggleTie(i);
  else if (key === 'u') $('flag-unsafe').checked = !$('flag-unsafe').checked;
  else if (key === 's') skip();
  else if (key === 'Enter' && !onButton) submit();
  else if (key === '?') $('help').showModal();
  else handled = false;
  if (handled) ev.preventDefault();
}

async function main() {
  $('submit').addEventListener('click', submit);
  $('skip').addEventListener('click', skip);
  document.addEventListener('keydown', onKey);
  try {
    const me = await api('GET', '/api/me');
    $('who').textContent = me.name;
    await loadNext();
  } catch (e) {
    setStatus(`Cannot load: ${e.message}`, true);
    $('work').hidden = false;
  }
}

document.addEventListener('DOMContentLoaded', main);
