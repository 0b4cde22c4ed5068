import { createInspector, type StatelyInspectionEvent } from '@statelyai/inspect';
import type { InspectionEvent } from 'xstate';
import type { ActorInspector } from './actor-inspector.js';
import { InspectionBuffer, type FeedMessage } from './inspection-buffer.js';
import { inspectionJson } from './inspection-json.js';

/** Root session ids remembered, so late events of a finished build still find their build. */
const MAX_ROOTS = 10_000;

export type FeedListener = (json: string) => void;

/**
 * Turns the actors' XState inspection events into Stately inspector events (`@xstate.actor` with
 * the machine definition, `@xstate.event`, `@xstate.snapshot`) with `@statelyai/inspect`'s own
 * converter, strips secrets, and hands them to subscribers, all of them or one build's.
 */
export class InspectionFeed implements ActorInspector {
  /** Root actor session id → build id: every event names its root, not its build. */
  private readonly roots = new Map<string, string>();
  private readonly listeners = new Set<{ buildId?: string; listener: FeedListener }>();
  private readonly buffer: InspectionBuffer;
  private readonly stately;
  private seq = 0;

  constructor(private readonly opts: { secrets?: readonly string[]; bufferSize?: number } = {}) {
    this.buffer = new InspectionBuffer(opts.bufferSize);
    // The converter defers each event by a tick (it reads the actor once it is fully set up).
    this.stately = createInspector({ send: (event) => this.publish(event) });
  }

  inspect(buildId: string, event: InspectionEvent): void {
    if (!this.roots.has(event.rootId)) {
      this.roots.set(event.rootId, buildId);
      if (this.roots.size > MAX_ROOTS) this.roots.delete(this.roots.keys().next().value!);
    }
    this.stately.inspect.next?.(event);
  }

  /**
   * Calls `listener` with each event's JSON: first the buffered ones, then each new one. With a
   * `buildId`, only that build's events (its actor and its executor children). Returns unsubscribe.
   */
  subscribe(listener: FeedListener, buildId?: string): () => void {
    const accept = (m: FeedMessage) => buildId === undefined || m.buildId === buildId;
    for (const message of this.buffer.replay(accept)) listener(message.json);
    const entry = { buildId, listener };
    this.listeners.add(entry);
    return () => this.listeners.delete(entry);
  }

  private publish(event: StatelyInspectionEvent): void {
    const buildId = this.roots.get(event.rootId ?? event.sessionId);
    if (buildId === undefined) return;
    const message: FeedMessage = {
      seq: ++this.seq,
      buildId,
      type: event.type,
      sessionId: event.sessionId,
      json: inspectionJson(event, this.opts.secrets ?? []),
    };
    this.buffer.add(message, event.type === '@xstate.snapshot' ? event.snapshot.status : undefined);
    for (const { buildId: wanted, listener } of this.listeners) {
      if (wanted === undefined || wanted === buildId) listener(message.json);
    }
  }
}
