import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createMachine, type AnyStateMachine } from 'xstate';
import type { CliContext } from '../../src/cli/cli-context.js';
import { runCli } from '../../src/cli/program.js';
import { PACKAGE_ROOT } from '../../src/util/package-root.js';
import { exportStatecharts } from '../../src/visualize/export-statecharts.js';
import { graphvizVersion, svgGraphvizVersion } from '../../src/visualize/render-svg.js';
import { allStates, chartOf, INLINE, transitionLabel } from '../../src/visualize/statechart-model.js';
import { STATECHARTS } from '../../src/visualize/statecharts.js';

const COMMITTED = join(PACKAGE_ROOT, 'visualizations');
const STALE = 'visualizations/ is stale: run npm run export-statecharts and commit the result';

let fresh: string;
let dotVersion: string | undefined;

beforeAll(async () => {
  fresh = mkdtempSync(join(tmpdir(), 'buildman-viz-'));
  dotVersion = await graphvizVersion();
  await exportStatecharts(fresh);
});
afterAll(() => rmSync(fresh, { recursive: true, force: true }));

/** Every state node id and every transition, as comparable values. */
function shape(machine: AnyStateMachine) {
  const chart = chartOf(machine);
  return {
    states: allStates(chart).map((s) => ({ id: s.id, type: s.type, initial: s.initial, entry: s.entry, exit: s.exit, invoke: s.invoke })),
    transitions: chart.transitions,
  };
}

describe('the committed visualizations/ folder', () => {
  it('covers every machine in machines/', () => {
    const machineFiles = readdirSync(join(PACKAGE_ROOT, 'machines')).filter((f) => f.endsWith('-machine.ts'));
    expect(STATECHARTS.map((c) => c.source).sort()).toEqual(machineFiles.map((f) => `machines/${f}`).sort());
  });

  it('holds exactly the files a fresh export writes, with the same text', () => {
    const text = (dir: string) => (existsSync(dir) ? readdirSync(dir).filter((f) => !f.endsWith('.svg')).sort() : []);
    expect(text(COMMITTED), STALE).toEqual(text(fresh));
    for (const file of text(fresh)) {
      expect(readFileSync(join(COMMITTED, file), 'utf8'), `${file}: ${STALE}`).toBe(readFileSync(join(fresh, file), 'utf8'));
    }
    // The SVGs need Graphviz to compare (below), but must be there either way.
    for (const chart of STATECHARTS) expect(existsSync(join(COMMITTED, `${chart.name}.svg`)), STALE).toBe(true);
  });

  it('holds the SVGs Graphviz renders now (checked when the same Graphviz version is installed)', (ctx) => {
    if (!dotVersion) ctx.skip();
    for (const chart of STATECHARTS) {
      const committed = readFileSync(join(COMMITTED, `${chart.name}.svg`), 'utf8');
      const now = readFileSync(join(fresh, `${chart.name}.svg`), 'utf8');
      // Another Graphviz lays out differently; that is not staleness.
      if (svgGraphvizVersion(committed) !== svgGraphvizVersion(now)) continue;
      expect(committed, `${chart.name}.svg: ${STALE}`).toBe(now);
      expect(now).toContain('<svg');
    }
  });
});

describe.each(STATECHARTS.map((c) => [c.name, c] as const))('%s exported for Stately', (name, chart) => {
  it('names every action, guard and actor: nothing is an inline function that JSON would drop', () => {
    const { states, transitions } = shape(chart.machine);
    const named = JSON.stringify({ states, transitions });
    expect(named).not.toContain(INLINE);
    expect(transitions.length).toBeGreaterThan(0);
  });

  it('the .json, loaded back with xstate, has the same states and transitions as the source machine', () => {
    const config = JSON.parse(readFileSync(join(COMMITTED, `${name}.json`), 'utf8'));
    const loaded = createMachine(config);
    expect(shape(loaded)).toEqual(shape(chart.machine));
    expect(allStates(chartOf(loaded)).map((s) => s.id)).toEqual(allStates(chartOf(chart.machine)).map((s) => s.id));
  });

  it('the .stately.ts file, imported as it is, builds the same machine', async () => {
    const file = join(COMMITTED, `${name}.stately.ts`);
    const text = readFileSync(file, 'utf8');
    expect(text).toMatch(/^import \{ createMachine \} from 'xstate';$/m);
    expect(text).toMatch(/^export const machine = createMachine\(\{$/m);
    const { machine } = (await import(pathToFileURL(file).href)) as { machine: AnyStateMachine };
    expect(shape(machine)).toEqual(shape(chart.machine));
  });

  it('the Mermaid source declares every state and labels every transition `event [guard] / actions`', () => {
    const mmd = readFileSync(join(COMMITTED, `${name}.mmd`), 'utf8');
    expect(mmd.startsWith('stateDiagram-v2\n')).toBe(true);
    const model = chartOf(chart.machine);
    for (const state of allStates(model).slice(1)) expect(mmd).toContain(state.key);
    for (const t of model.transitions) expect(mmd).toContain(` : ${transitionLabel(t)}\n`);
    for (const state of allStates(model).filter((s) => s.children.length > 0 && s !== model.root)) {
      expect(mmd).toContain(`state ${state.key} {`);
    }
  });

  it('the DOT source draws compound states as clusters and renders without a Graphviz warning', (ctx) => {
    const dot = readFileSync(join(COMMITTED, `${name}.dot`), 'utf8');
    const model = chartOf(chart.machine);
    for (const state of allStates(model).filter((s) => s.children.length > 0 && s !== model.root)) {
      expect(dot).toContain(`subgraph "cluster_${state.id}"`);
    }
    if (!dotVersion) ctx.skip();
    const result = execFileSync('dot', ['-Tsvg'], { input: dot, stdio: ['pipe', 'pipe', 'pipe'] });
    expect(result.toString()).toContain('</svg>');
  });
});

describe('the build-job chart', () => {
  it('keeps the transitions the runtime and Stately need, by name', () => {
    const { transitions, states } = shape(STATECHARTS[0].machine);
    const find = (source: string, event: string) => transitions.filter((t) => t.source === `buildJob.${source}` && t.event === event);
    expect(find('scheduling', 'executor.failed')).toEqual([
      {
        source: 'buildJob.scheduling',
        event: 'executor.failed',
        targets: ['buildJob.scheduling'],
        guard: 'canFallBack',
        actions: ['stopWorker', 'countFallback', 'recordStartFailure', 'advanceExecutor'],
        reenter: true,
      },
      {
        source: 'buildJob.scheduling',
        event: 'executor.failed',
        targets: ['buildJob.retrying'],
        guard: 'isCurrentAttempt',
        actions: ['stopWorker', 'recordStartFailure', 'noExecutorLeft'],
        reenter: false,
      },
    ]);
    expect(find('running', 'job.cancel')[0].guard).toBe('isNotPushing');
    expect(find('retrying', '').map((t) => [t.guard, t.actions])).toEqual([
      ['hasRetriesLeft', ['requeue']],
      [undefined, ['markFinished']],
    ]);
    expect(states.find((s) => s.id === 'buildJob.scheduling')).toMatchObject({ entry: ['spawnExecutor'], exit: ['stopExecutor'] });
  });
});

describe('exportStatecharts', () => {
  it('without Graphviz writes everything but the SVGs, and says why', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'buildman-viz-nodot-'));
    try {
      const result = await exportStatecharts(dir, { dot: join(dir, 'no-such-dot') });
      expect(result.warnings).toEqual([expect.stringMatching(/is not installed, so no \.svg was written/)]);
      const files = readdirSync(dir).sort();
      expect(files.filter((f) => f.endsWith('.svg'))).toEqual([]);
      expect(files).toContain('build-job.stately.ts');
      expect(files).toContain('executor.mmd');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('`buildman export-statecharts --out DIR` writes the same files', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'buildman-viz-cli-'));
    try {
      let stdout = '';
      const ctx: CliContext = { stdout: (t) => (stdout += t), stderr: () => {}, env: {}, exitCode: 0 };
      expect(await runCli(['export-statecharts', '--out', dir], ctx)).toBe(0);
      expect(stdout).toContain(join(dir, 'build-job.stately.ts'));
      for (const file of readdirSync(fresh)) expect(readFileSync(join(dir, file), 'utf8')).toBe(readFileSync(join(fresh, file), 'utf8'));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
