import { WebSocket } from 'ws';

/** A Stately inspection event as it arrives on the wire. */
export interface WireEvent {
  type: '@xstate.actor' | '@xstate.event' | '@xstate.snapshot';
  sessionId: string;
  rootId?: string;
  parentId?: string;
  name?: string;
  definition?: string;
  event?: { type: string; [key: string]: unknown };
  snapshot?: { status?: string; value?: unknown; context?: Record<string, unknown> };
  _version: string;
}

export interface InspectClient {
  /** Raw messages, in arrival order. */
  raw: string[];
  events: WireEvent[];
  /** Resolves once `pred` holds for the events received so far. */
  until(pred: (events: WireEvent[]) => boolean, timeoutMs?: number): Promise<void>;
  closed: Promise<{ code: number; reason: string }>;
  close(): void;
}

/** Connects a plain WebSocket client to the inspection port and records what it receives. */
export async function connectInspector(url: string): Promise<InspectClient> {
  const ws = new WebSocket(url);
  const raw: string[] = [];
  const events: WireEvent[] = [];
  ws.on('message', (data) => {
    const text = data.toString();
    raw.push(text);
    events.push(JSON.parse(text) as WireEvent);
  });
  const closed = new Promise<{ code: number; reason: string }>((resolve) => ws.on('close', (code, reason) => resolve({ code, reason: reason.toString() })));
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
  });
  return {
    raw,
    events,
    closed,
    async until(pred, timeoutMs = 20_000) {
      const deadline = Date.now() + timeoutMs;
      while (!pred(events)) {
        if (Date.now() > deadline) throw new Error(`inspector stream: condition not met after ${events.length} events`);
        await new Promise((r) => setTimeout(r, 20));
      }
    },
    close: () => ws.close(),
  };
}

/** The root actor's registration of a build (its actor id is the build id). */
export function rootOf(events: WireEvent[], buildId: string): WireEvent | undefined {
  return events.find((e) => e.type === '@xstate.actor' && e.name === buildId && !e.parentId);
}

/** Whether the build's root actor reported its final snapshot. */
export function rootDone(events: WireEvent[], buildId: string): boolean {
  const root = rootOf(events, buildId);
  return !!root && events.some((e) => e.type === '@xstate.snapshot' && e.sessionId === root.sessionId && e.snapshot?.status === 'done');
}
