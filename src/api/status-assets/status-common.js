// Helpers shared by the status pages. Plain browser JavaScript, no build step, no dependencies.

/** Creates an element: el('td', { class: 'x' }, 'text', child). */
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    node.setAttribute(key, value === true ? '' : String(value));
  }
  for (const child of children) {
    if (child === undefined || child === null || child === false) continue;
    node.append(child instanceof Node ? child : String(child));
  }
  return node;
}

export async function getJson(path) {
  const res = await fetch(path, { headers: { accept: 'application/json' } });
  if (!res.ok) {
    const body = await res.json().catch(() => ({}));
    const err = new Error(body.error?.message ?? `${res.status} ${res.statusText}`);
    err.status = res.status;
    throw err;
  }
  return res.json();
}

const FAILED = new Set(['error', 'internalerror', 'expired']);
const ACTIVE = new Set(['unpacking', 'pulling', 'building', 'pushing']);

/** The colour family of a phase, for badges and summaries. */
export function phaseKind(phase) {
  if (phase === 'complete') return 'ok';
  if (FAILED.has(phase)) return 'bad';
  if (phase === 'cancelled') return 'warn';
  if (ACTIVE.has(phase)) return 'active';
  if (phase === 'build-scheduled') return 'scheduled';
  return 'idle';
}

export function phaseBadge(phase) {
  return el('span', { class: `phase phase-${phaseKind(phase)}` }, phase);
}

/** "4 s", "3 min", "2 h 5 min", "3 d". */
export function duration(ms) {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 60) return `${s} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min`;
  const h = Math.floor(m / 60);
  if (h < 48) return `${h} h ${m % 60} min`;
  return `${Math.floor(h / 24)} d`;
}

export function clock(ms) {
  return new Date(ms).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit', second: '2-digit', hour12: false });
}

/** Shows when the page last heard from the server, or that it did not. */
export function markUpdated(ok, message) {
  const node = document.getElementById('updated');
  if (!node) return;
  node.className = ok ? 'updated live' : 'updated offline';
  node.textContent = ok ? `live · ${clock(Date.now())}` : `cannot reach buildman (${message}); retrying`;
}

/** Calls `step` now and then every `ms` until it returns true. */
export function every(ms, step) {
  const tick = async () => {
    let stop = false;
    try {
      stop = await step();
      markUpdated(true);
    } catch (err) {
      markUpdated(false, err.message);
    }
    if (!stop) setTimeout(tick, ms);
  };
  tick();
}
