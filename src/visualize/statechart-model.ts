import type { AnyStateMachine, AnyStateNode } from 'xstate';

/**
 * A machine's chart reduced to what a diagram (and a person) needs: the state tree and every
 * transition, with guards and actions by name. The Mermaid and DOT writers draw from it, and the
 * round-trip test compares it between the source machine and the exported JSON loaded back.
 */
export interface ChartState {
  /** The state node id (`buildJob.running.waiting`). */
  id: string;
  key: string;
  type: 'atomic' | 'compound' | 'parallel' | 'final' | 'history';
  /** Id of the initial child, for compound states. */
  initial?: string;
  description?: string;
  entry: string[];
  exit: string[];
  /** The `src` of each invoked actor. */
  invoke: string[];
  children: ChartState[];
}

export interface ChartTransition {
  source: string;
  /** The event type; `''` for an eventless (`always`) transition. */
  event: string;
  /** Target state ids; empty for a targetless transition. */
  targets: string[];
  guard?: string;
  actions: string[];
  reenter: boolean;
}

export interface Chart {
  id: string;
  root: ChartState;
  /** In document order of their source state, then in the order the chart lists them. */
  transitions: ChartTransition[];
}

/** What a function in a chart is called when it has no name: JSON would drop it, so it is a loss. */
export const INLINE = '(inline)';

export function chartOf(machine: AnyStateMachine): Chart {
  const transitions: ChartTransition[] = [];
  const visit = (node: AnyStateNode): ChartState => {
    for (const t of [...[...node.transitions.values()].flat(), ...(node.always ?? [])]) {
      transitions.push({
        source: node.id,
        event: t.eventType,
        targets: (t.target ?? []).map((target: AnyStateNode) => target.id),
        ...(t.guard === undefined ? {} : { guard: nameOf(t.guard) }),
        actions: t.actions.map(nameOf),
        reenter: t.reenter,
      });
    }
    const children = Object.values(node.states as Record<string, AnyStateNode>).map(visit);
    return {
      id: node.id,
      key: node.key,
      type: node.type,
      ...(node.type === 'compound' ? { initial: node.initial.target[0]?.id } : {}),
      ...(node.description ? { description: node.description } : {}),
      entry: node.entry.map(nameOf),
      exit: node.exit.map(nameOf),
      invoke: node.invoke.map((i) => (typeof i.src === 'string' ? i.src : INLINE)),
      children,
    };
  };
  return { id: machine.id, root: visit(machine.root), transitions };
}

/** Every state of the chart, parents before their children. */
export function allStates(chart: Chart): ChartState[] {
  const out: ChartState[] = [];
  const walk = (s: ChartState) => {
    out.push(s);
    s.children.forEach(walk);
  };
  walk(chart.root);
  return out;
}

/** `event [guard] / a, b`, with `always` for an eventless transition. */
export function transitionLabel(t: ChartTransition): string {
  const event = t.event === '' ? 'always' : t.event;
  const guard = t.guard ? ` [${t.guard}]` : '';
  const actions = t.actions.length > 0 ? ` / ${t.actions.join(', ')}` : '';
  return `${event}${guard}${actions}`;
}

/** A named action or guard (`'name'` or `{ type: 'name', params }`); anything else is inline. */
function nameOf(item: unknown): string {
  if (typeof item === 'string') return item;
  if (item !== null && typeof item === 'object' && typeof (item as { type?: unknown }).type === 'string') {
    return (item as { type: string }).type;
  }
  return INLINE;
}
