import type { AnyStateMachine } from 'xstate';
import { chartOf, type Chart, type ChartState } from '../visualize/statechart-model.js';

/**
 * A small, dependency-free SVG of a statechart, drawn from the machine's chart (the model the
 * exported diagrams are drawn from, src/visualize/statechart-model.ts), for the
 * status page. Every state is a `<g class="sc-state" data-state="running.building">`, so the page
 * highlights the current state by adding a CSS class. Only presentation attributes are used (no
 * `style`), so the page's Content-Security-Policy can forbid inline styles.
 *
 * Layout: the longest path from the initial state to a final state runs left to right on the top
 * row; every other state sits on a second row, under the states it connects to. Compound states
 * list their children inside their box. Transitions into a state's own children are left out
 * (the children's list shows them); all others are drawn, with their event names.
 */

interface Box {
  node: ChartState;
  /** The state's path below the root (`running.building`): what the page's script matches. */
  id: string;
  x: number;
  y: number;
  w: number;
  h: number;
  children: Box[];
}

interface Edge {
  from: string;
  to: string;
  labels: string[];
  guards: string[];
}

const CHAR_W = 7.4;
const BOX_H = 36;
const CHILD_H = 28;
const CHILD_GAP = 6;
const HEADER_H = 30;
const PAD = 10;
const COL_GAP = 90;
const ROW_GAP = 110;
const MARGIN = 36;

const textWidth = (text: string) => Math.ceil(text.length * CHAR_W);
const esc = (text: string) => text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
const round = (n: number) => Math.round(n * 10) / 10;

export function renderStatechartSvg(machine: AnyStateMachine): string {
  const chart = chartOf(machine);
  // Chart state id → path below the root, from the tree (a state may carry an `id` of its own).
  const paths = new Map<string, string>();
  const walk = (state: ChartState, prefix: string) =>
    state.children.forEach((child) => {
      paths.set(child.id, prefix + child.key);
      walk(child, prefix + child.key + '.');
    });
  walk(chart.root, '');
  const pathOf = (id: string) => paths.get(id)!;

  const top = chart.root.children;
  const boxes = new Map<string, Box>();
  for (const state of top) boxes.set(pathOf(state.id), sizeBox(state, pathOf));
  const all = new Map<string, Box>();
  const index = (b: Box) => {
    all.set(b.id, b);
    b.children.forEach(index);
  };
  boxes.forEach(index);

  const edges = collectEdges(chart, pathOf, all);
  const topOf = (id: string) => id.split('.')[0];
  const topEdges = edges.map((e) => [topOf(e.from), topOf(e.to)] as const).filter(([a, b]) => a !== b);

  // Row 0: the longest path from the initial state to the first final state declared (by custom,
  // the successful end), so the happy path reads left to right.
  const initial = topOf(pathOf(chart.root.initial ?? top[0].id));
  const finals = top.filter((s) => s.type === 'final').map((s) => pathOf(s.id));
  const spine = longestPath(initial, topEdges, (id) => id === finals[0]) ?? longestPath(initial, topEdges, (id) => finals.includes(id)) ?? [initial];
  const rest = top.map((s) => pathOf(s.id)).filter((id) => !spine.includes(id));

  let x = MARGIN + 26; // room for the initial-state marker
  const rowHeight = Math.max(...spine.map((id) => boxes.get(id)!.h));
  for (const id of spine) {
    const box = boxes.get(id)!;
    place(box, x, 0);
    x += box.w + COL_GAP;
  }
  const width0 = x - COL_GAP;

  // The other states go under (or, when that spot is taken, over) the mean position of the
  // main-row states they connect to.
  const wanted = (id: string) => {
    const xs = topEdges
      .filter(([a, b]) => (a === id && spine.includes(b)) || (b === id && spine.includes(a)))
      .map(([a, b]) => boxes.get(a === id ? b : a)!)
      .map((b) => b.x + b.w / 2);
    return xs.length ? xs.reduce((s, v) => s + v, 0) / xs.length : Infinity;
  };
  const order = rest.map((id, i) => ({ id, want: wanted(id), i })).sort((a, b) => a.want - b.want || a.i - b.i);
  const row = new Map<string, number>(spine.map((id) => [id, 0]));
  const cursors = { [1]: MARGIN, [-1]: MARGIN };
  for (const { id, want } of order) {
    const box = boxes.get(id)!;
    const at = (r: 1 | -1) => Math.max(cursors[r], Number.isFinite(want) ? want - box.w / 2 : cursors[r]);
    const r: 1 | -1 = Number.isFinite(want) && at(1) > want - box.w / 2 + 20 && at(-1) <= want - box.w / 2 + 20 ? -1 : 1;
    row.set(id, r);
    place(box, at(r), 0);
    cursors[r] = box.x + box.w + 40;
  }
  // Vertical placement, now that we know whether anything sits over the main row.
  const overRow = rest.filter((id) => row.get(id) === -1);
  const overH = overRow.length ? Math.max(...overRow.map((id) => boxes.get(id)!.h)) + ROW_GAP : 0;
  const center = MARGIN + 40 + overH + rowHeight / 2;
  for (const id of spine) shift(boxes.get(id)!, center - boxes.get(id)!.h / 2);
  for (const id of overRow) shift(boxes.get(id)!, MARGIN + 20);
  const y1 = center + rowHeight / 2 + ROW_GAP;
  for (const id of rest) if (row.get(id) === 1) shift(boxes.get(id)!, y1);

  const width = Math.max(width0, cursors[1] - 40, cursors[-1] - 40) + MARGIN;
  const height = y1 + Math.max(BOX_H, ...rest.map((id) => boxes.get(id)!.h)) + MARGIN + 90;

  const out: string[] = [];
  out.push(
    `<svg xmlns="http://www.w3.org/2000/svg" class="statechart" viewBox="0 0 ${width} ${height}" width="${width}" height="${height}" role="img" aria-label="statechart of ${esc(machine.id)}" font-family="system-ui, sans-serif" font-size="13">`,
    '<defs><marker id="sc-arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse"><path d="M0 0L10 5L0 10z" fill="#64748b"/></marker></defs>',
  );
  const first = boxes.get(spine[0])!;
  out.push(
    `<g class="sc-initial"><circle cx="${first.x - 22}" cy="${first.y + first.h / 2}" r="5" fill="#334155"/>` +
      `<path d="M${first.x - 17} ${first.y + first.h / 2}H${first.x - 2}" stroke="#334155" stroke-width="1.5" marker-end="url(#sc-arrow)"/></g>`,
  );
  out.push('<g class="sc-edges">');
  const rowOf = (b: Box) => row.get(b.id.split('.')[0])!;
  const labels: Rect[] = [];
  for (const edge of edges) out.push(drawEdge(edge, all.get(edge.from)!, all.get(edge.to)!, rowOf, labels));
  out.push('</g>');
  for (const id of [...spine, ...rest]) out.push(drawBox(boxes.get(id)!, pathOf));
  out.push('</svg>');
  return out.join('\n');
}

function sizeBox(node: ChartState, pathOf: (id: string) => string): Box {
  const children = node.children.map((child) => sizeBox(child, pathOf));
  const label = textWidth(node.key) + 2 * PAD + 8;
  if (children.length === 0) return { node, id: pathOf(node.id), x: 0, y: 0, w: Math.max(96, label), h: BOX_H, children };
  const inner = Math.max(...children.map((c) => c.w));
  children.forEach((c) => (c.w = inner));
  const h = HEADER_H + children.length * (CHILD_H + CHILD_GAP) + PAD - CHILD_GAP + 4;
  children.forEach((c) => (c.h = CHILD_H));
  return { node, id: pathOf(node.id), x: 0, y: 0, w: Math.max(label, inner + 2 * PAD + 10), h, children };
}

/** Moves a placed box (and its children) down to `y`. */
function shift(box: Box, y: number): void {
  place(box, box.x, y);
}

function place(box: Box, x: number, y: number): void {
  box.x = x;
  box.y = y;
  box.children.forEach((c, i) => place(c, x + PAD + 10, y + HEADER_H + i * (CHILD_H + CHILD_GAP)));
}

/**
 * Transitions between drawn states, one edge per pair with every event name on it. The machine's
 * own (root) transitions have no box to leave from and are left out; so are targetless ones.
 */
function collectEdges(chart: Chart, pathOf: (id: string) => string, boxes: Map<string, Box>): Edge[] {
  const byPair = new Map<string, Edge>();
  for (const t of chart.transitions) {
    if (t.source === chart.root.id) continue;
    const from = pathOf(t.source);
    for (const target of t.targets) {
      let to = pathOf(target);
      if (to.startsWith(from + '.')) continue; // into its own children: shown by the list
      while (!boxes.has(to) && to.includes('.')) to = to.slice(0, to.lastIndexOf('.'));
      const key = `${from}>${to}`;
      const edge = byPair.get(key) ?? { from, to, labels: [], guards: [] };
      const label = t.event === '' ? 'always' : t.event.startsWith('xstate.after.') ? 'after' : t.event;
      if (!edge.labels.includes(label)) edge.labels.push(label);
      if (t.guard && !edge.guards.includes(t.guard)) edge.guards.push(t.guard);
      byPair.set(key, edge);
    }
  }
  return [...byPair.values()];
}

/** The longest simple path from `start` to a state where `isEnd` holds, if there is one. */
function longestPath(start: string, edges: ReadonlyArray<readonly [string, string]>, isEnd: (id: string) => boolean): string[] | undefined {
  let best: string[] | undefined;
  const walk = (path: string[]) => {
    const last = path[path.length - 1];
    if (isEnd(last)) {
      if (!best || path.length > best.length) best = [...path];
      return;
    }
    for (const [a, b] of edges) if (a === last && !path.includes(b)) walk([...path, b]);
  };
  walk([start]);
  return best;
}

function drawBox(box: Box, pathOf: (id: string) => string): string {
  const { node } = box;
  const final = node.type === 'final';
  const compound = box.children.length > 0;
  const classes = ['sc-state', final ? 'sc-final' : '', compound ? 'sc-compound' : ''].filter(Boolean).join(' ');
  const parts = [`<g class="${classes}" data-state="${esc(box.id)}">`];
  parts.push(`<title>${esc(node.key)}${node.description ? ': ' + esc(node.description) : ''}</title>`);
  parts.push(`<rect x="${box.x}" y="${box.y}" width="${box.w}" height="${box.h}" rx="8" fill="#ffffff" stroke="#94a3b8" stroke-width="1.5"/>`);
  if (final) parts.push(`<rect class="sc-inner" x="${box.x + 3}" y="${box.y + 3}" width="${box.w - 6}" height="${box.h - 6}" rx="6" fill="none" stroke="#94a3b8"/>`);
  if (compound) {
    parts.push(`<text x="${box.x + PAD}" y="${box.y + 20}" font-weight="600" fill="#1e293b">${esc(node.key)}</text>`);
    const initial = node.initial && pathOf(node.initial);
    parts.push('</g>');
    for (const child of box.children) {
      parts.push(`<g class="sc-state sc-child" data-state="${esc(child.id)}">`);
      parts.push(`<title>${esc(child.node.key)}${child.node.description ? ': ' + esc(child.node.description) : ''}</title>`);
      parts.push(`<rect x="${child.x}" y="${child.y}" width="${child.w}" height="${child.h}" rx="6" fill="#ffffff" stroke="#cbd5e1" stroke-width="1.2"/>`);
      parts.push(`<text x="${child.x + child.w / 2}" y="${child.y + child.h / 2 + 4.5}" text-anchor="middle" fill="#1e293b">${esc(child.node.key)}</text>`);
      if (child.id === initial) parts.push(`<circle class="sc-initial-dot" cx="${child.x - 6}" cy="${child.y + child.h / 2}" r="3" fill="#334155"/>`);
      parts.push('</g>');
    }
    return parts.join('');
  }
  parts.push(`<text x="${box.x + box.w / 2}" y="${box.y + box.h / 2 + 4.5}" text-anchor="middle" fill="#1e293b">${esc(node.key)}</text>`);
  parts.push('</g>');
  return parts.join('');
}

interface Rect {
  x: number;
  y: number;
  w: number;
  h: number;
}

/** Moves a label down (then up) in steps until it overlaps no label placed before it. */
function freeSpot(placed: Rect[], x: number, y: number, text: string): { x: number; y: number } {
  const w = text.length * 6.2 + 6;
  const h = 14;
  for (const dy of [0, 14, -14, 28, -28, 42, -42]) {
    const r = { x: x - w / 2, y: y + dy - 11, w, h };
    if (!placed.some((p) => r.x < p.x + p.w && p.x < r.x + r.w && r.y < p.y + p.h && p.y < r.y + r.h)) {
      placed.push(r);
      return { x, y: y + dy };
    }
  }
  return { x, y };
}

function drawEdge(edge: Edge, a: Box, b: Box, rowOf: (b: Box) => number, labels: Rect[]): string {
  const label = edge.labels.join(' / ');
  const title = `<title>${esc(edge.from)} → ${esc(edge.to)}: ${esc(label)}${edge.guards.length ? ` [${esc(edge.guards.join(', '))}]` : ''}</title>`;
  let d: string;
  let lx: number;
  let ly: number;
  if (a === b) {
    // A self-transition: a loop over the box.
    const x1 = a.x + a.w * 0.3;
    const x2 = a.x + a.w * 0.7;
    d = `M${x1} ${a.y}C${x1} ${a.y - 42} ${x2} ${a.y - 42} ${x2} ${a.y - 2}`;
    lx = a.x + a.w / 2;
    ly = a.y - 36;
  } else if (rowOf(a) === rowOf(b)) {
    const forward = b.x > a.x;
    const adjacent = forward && b.x - (a.x + a.w) <= COL_GAP + 1;
    if (adjacent) {
      const y = Math.max(a.y, b.y) + Math.min(a.h, b.h) / 2;
      d = `M${a.x + a.w} ${y}L${b.x - 2} ${y}`;
      lx = (a.x + a.w + b.x) / 2;
      ly = y - 8;
    } else {
      // Over the row (top row) or under it (second row), so it does not cross the boxes between.
      const up = rowOf(a) !== 1;
      const ya = up ? a.y : a.y + a.h;
      const yb = up ? b.y : b.y + b.h;
      const bend = (up ? -1 : 1) * (50 + Math.abs(b.x - a.x) * 0.08);
      const xa = a.x + a.w / 2 + (forward ? 10 : -10);
      const xb = b.x + b.w / 2 + (forward ? -10 : 10);
      d = `M${xa} ${ya}C${xa} ${ya + bend} ${xb} ${yb + bend} ${xb} ${yb + (up ? -2 : 2)}`;
      lx = (xa + xb) / 2;
      ly = (ya + yb) / 2 + bend * 0.75 + (up ? -4 : 12);
    }
  } else {
    // Between rows: leave from the side facing the other box, aimed at it.
    const down = b.y > a.y;
    const xa = clamp(b.x + b.w / 2, a.x + 14, a.x + a.w - 14) + (down ? -5 : 5);
    const xb = clamp(a.x + a.w / 2, b.x + 14, b.x + b.w - 14) + (down ? -5 : 5);
    const ya = down ? a.y + a.h : a.y;
    const yb = down ? b.y - 2 : b.y + b.h + 2;
    const mid = (ya + yb) / 2;
    d = `M${xa} ${ya}C${xa} ${mid} ${xb} ${mid} ${xb} ${yb}`;
    lx = (xa + xb) / 2;
    ly = mid + 4;
  }
  ({ x: lx, y: ly } = freeSpot(labels, lx, ly, label));
  return (
    `<g class="sc-edge" data-from="${esc(edge.from)}" data-to="${esc(edge.to)}">${title}` +
    `<path d="${d}" fill="none" stroke="#94a3b8" stroke-width="1.3" marker-end="url(#sc-arrow)"/>` +
    `<text x="${round(lx)}" y="${round(ly)}" text-anchor="middle" font-size="11" fill="#475569" stroke="#ffffff" stroke-width="4" paint-order="stroke">${esc(label)}</text></g>`
  );
}

function clamp(v: number, lo: number, hi: number): number {
  return Math.min(hi, Math.max(lo, v));
}
