/** One inspection event on its way to clients. */
export interface FeedMessage {
  /** Order of arrival, across all builds. */
  seq: number;
  buildId: string;
  type: string;
  sessionId: string;
  /** The Stately inspection event, as sent. */
  json: string;
}

/**
 * What a client that connects late is sent first: the most recent events, plus, for every actor
 * still alive whose registration has already dropped out of that window, its `@xstate.actor` event
 * and latest snapshot. Without the registration, the Stately inspector cannot draw a long-running
 * build at all.
 */
export class InspectionBuffer {
  private readonly recent: FeedMessage[] = [];
  /** Live actors by session id: their registration and latest snapshot. */
  private readonly live = new Map<string, { actor: FeedMessage; snapshot?: FeedMessage }>();

  constructor(
    private readonly capacity = 500,
    private readonly maxLiveActors = 5000,
  ) {}

  /** `status` is the snapshot status of an `@xstate.snapshot` event ('active', 'done', ...). */
  add(message: FeedMessage, status?: string): void {
    this.recent.push(message);
    if (this.recent.length > this.capacity) this.recent.shift();
    if (message.type === '@xstate.actor') {
      this.live.set(message.sessionId, { actor: message });
      // Actors stopped with their instance never report an end: forget the oldest ones.
      if (this.live.size > this.maxLiveActors) this.live.delete(this.live.keys().next().value!);
    } else if (message.type === '@xstate.snapshot') {
      const entry = this.live.get(message.sessionId);
      if (status !== 'active') this.live.delete(message.sessionId);
      else if (entry) entry.snapshot = message;
    }
  }

  /** The messages a new client with this filter is sent, oldest first. */
  replay(accept: (message: FeedMessage) => boolean): FeedMessage[] {
    const windowStart = this.recent[0]?.seq ?? Infinity;
    const pinned: FeedMessage[] = [];
    for (const { actor, snapshot } of this.live.values()) {
      if (actor.seq >= windowStart) continue;
      pinned.push(actor);
      if (snapshot && snapshot.seq < windowStart) pinned.push(snapshot);
    }
    pinned.sort((a, b) => a.seq - b.seq);
    return [...pinned, ...this.recent].filter(accept);
  }
}
