// One build: its record, its statechart with the current state highlighted, its history as a
// timeline (both refreshed every second while the build runs) and its log, streamed as it grows.
import { clock, duration, el, every, getJson, phaseBadge } from './status-common.js';

const id = document.body.dataset.build;
const api = `/api/v1/builds/${encodeURIComponent(id)}`;

// ---- record ----

function renderBuild(build) {
  document.getElementById('title').replaceChildren(
    el('span', { class: 'repo' }, build.repository),
    el('span', { class: 'tags' }, ' ' + build.tags.map((t) => `:${t}`).join(' ')),
  );
  document.getElementById('phase').replaceChildren(phaseBadge(build.phase));
  const end = build.final ? build.updatedAt : Date.now();
  const source = build.source.kind === 'upload' ? `uploaded context (${build.source.bytes} bytes)` : build.source.url;
  const fields = [
    ['Build', el('code', {}, build.id)],
    ['State', el('code', {}, build.state)],
    ['Attempt', build.attempt || '—'],
    ['Executor', build.executor ?? '—'],
    ['Execution', build.executionId ? el('code', {}, build.executionId) : '—'],
    ['Created', `${new Date(build.createdAt).toLocaleString()} (${duration(Date.now() - build.createdAt)} ago)`],
    [build.final ? 'Took' : 'Running for', duration(end - build.createdAt)],
    ['Source', source],
    ['Reason', build.reason],
  ];
  document.getElementById('meta').replaceChildren(
    ...fields.filter(([, v]) => v !== undefined).flatMap(([k, v]) => [el('dt', {}, k), el('dd', {}, v)]),
  );
}

// ---- statechart ----

/** "running.building" → ["running", "running.building"]; parallel values are comma-separated. */
function withAncestors(state) {
  return state.split(',').flatMap((leaf) => leaf.split('.').map((_, i, parts) => parts.slice(0, i + 1).join('.')));
}

function mark(state, cls) {
  for (const path of withAncestors(state)) {
    document.querySelector(`.statechart [data-state="${CSS.escape(path)}"]`)?.classList.add(cls);
  }
}

function edgeBetween(from, to) {
  const top = (s) => s.split('.')[0];
  for (const f of [from, top(from)]) {
    for (const t of [to, top(to)]) {
      const edge = document.querySelector(`.statechart .sc-edge[data-from="${CSS.escape(f)}"][data-to="${CSS.escape(t)}"]`);
      if (edge) return edge;
    }
  }
  return null;
}

function renderStatechart(build, history) {
  for (const node of document.querySelectorAll('.statechart .current, .statechart .visited, .statechart .taken')) {
    node.classList.remove('current', 'visited', 'taken');
  }
  let previous;
  for (const entry of history) {
    mark(entry.state, 'visited');
    if (previous && previous !== entry.state) edgeBetween(previous, entry.state)?.classList.add('taken');
    previous = entry.state;
  }
  mark(build.state, 'current');
}

// ---- timeline ----

function eventDetail(event) {
  switch (event.type) {
    case 'worker.phase':
      return event.phase;
    case 'job.claimed':
      return `${event.retriesRemaining} retries left`;
    case 'executor.started':
      return `${event.executorName} · ${event.executionId}`;
    case 'executor.failed':
      return `${event.executorName}: ${event.reason}`;
    case 'job.cancel':
      return event.reason;
    default:
      return undefined;
  }
}

function renderTimeline(history) {
  const list = document.getElementById('timeline');
  const start = history[0]?.at ?? 0;
  let before;
  const items = history.map((entry) => {
    const changed = entry.state !== before;
    before = entry.state;
    const internal = entry.event.type.startsWith('xstate.');
    const detail = eventDetail(entry.event);
    return el(
      'li',
      { class: ['event', internal ? 'internal' : '', changed ? 'changed' : ''].join(' ').trim() },
      el('time', { datetime: new Date(entry.at).toISOString(), title: new Date(entry.at).toLocaleString() }, clock(entry.at)),
      el('span', { class: 'offset' }, `+${((entry.at - start) / 1000).toFixed(3)} s`),
      el('span', { class: 'event-type' }, entry.event.type),
      detail ? el('span', { class: 'detail' }, detail) : null,
      el('span', { class: 'arrow' }, changed ? '→' : '·'),
      el('code', { class: 'to' }, entry.state),
    );
  });
  list.replaceChildren(...items);
  document.getElementById('timeline-count').textContent = `${history.length} events`;
}

// ---- log ----

const log = document.getElementById('log');
const logStatus = document.getElementById('log-status');
let nextIndex = 0;

function logLine({ message, type, data }) {
  const time = typeof data?.datetime === 'string' ? data.datetime.slice(11, 19) : '';
  if (type === 'phase') return el('div', { class: 'log-phase' }, el('span', {}, message), el('time', {}, time));
  return el('div', { class: `log-line${type ? ` log-${type}` : ''}` }, el('time', {}, time), el('span', { class: 'msg' }, message));
}

function append(entry) {
  const atBottom = log.scrollTop + log.clientHeight >= log.scrollHeight - 30;
  log.append(logLine(entry));
  if (atBottom) log.scrollTop = log.scrollHeight;
}

/** Streams the NDJSON log follow endpoint; reconnects from where it stopped if the stream breaks. */
async function followLog() {
  for (;;) {
    logStatus.textContent = 'following…';
    try {
      const res = await fetch(`${api}/logs?follow=true&start=${nextIndex}`);
      if (res.status === 404) {
        logStatus.textContent = 'no such build';
        return;
      }
      if (!res.ok) throw new Error(`${res.status}`);
      const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
      let buffered = '';
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buffered += value;
        let newline;
        while ((newline = buffered.indexOf('\n')) >= 0) {
          const line = buffered.slice(0, newline);
          buffered = buffered.slice(newline + 1);
          if (!line) continue;
          const item = JSON.parse(line);
          if (item.end) {
            logStatus.textContent = `build ended (${item.build.phase}) · ${nextIndex} lines`;
            return;
          }
          nextIndex = item.index + 1;
          append(item.entry);
        }
      }
    } catch (err) {
      logStatus.textContent = `log stream interrupted (${err.message}); reconnecting`;
    }
    await new Promise((r) => setTimeout(r, 2000));
  }
}

// ---- refresh loop ----

let ended = false;
every(1000, async () => {
  let build;
  try {
    build = await getJson(api);
  } catch (err) {
    if (err.status !== 404) throw err;
    const missing = document.getElementById('missing');
    missing.hidden = false;
    missing.textContent = `No build with id ${id}. It may have expired from the store.`;
    return true;
  }
  const { history } = await getJson(`${api}/history`);
  renderBuild(build);
  renderStatechart(build, history);
  renderTimeline(history);
  // One more round after the build ends, so the last history entries are shown.
  if (build.final && ended) return true;
  ended = build.final;
  return false;
});
followLog();
