/** A side effect the live actor would have carried out at a step, with the params the machine gave. */
export type WouldDo =
  | { effect: 'startWorker'; params: { executorName: string; attempt: number } }
  | { effect: 'stopWorker'; params: { executorName: string; attempt: number; executionId?: string } }
  | { effect: 'startDeadline'; params: { seconds: number } }
  | { effect: 'requeue'; params: { retryAfterSeconds: number } }
  | { effect: 'finish'; params: { outcome: string } }
  | { effect: 'countFallback'; params: { executorName: string; reason: string } };

/** The runtime-provided actions of the build-job machine (what ActorHost implements). */
const EFFECTS = new Set(['stopWorker', 'startDeadline', 'requeue', 'finish', 'countFallback']);

/**
 * The effects among the actions `transition()` returned (it executes none of them). Spawning the
 * `executor` child is the start of a worker; the rest are the machine's named side-effect actions.
 */
export function wouldDo(actions: ReadonlyArray<{ type: string; params?: unknown }>): WouldDo[] {
  const out: WouldDo[] = [];
  for (const action of actions) {
    const params = (action.params ?? {}) as Record<string, unknown>;
    if (action.type === 'xstate.spawnChild' && params.src === 'executor') {
      const input = params.input as { executorName: string; attempt: number };
      out.push({ effect: 'startWorker', params: { executorName: input.executorName, attempt: input.attempt } });
    } else if (EFFECTS.has(action.type)) {
      out.push({ effect: action.type, params: { ...params } } as WouldDo);
    }
  }
  return out;
}

/** `start worker on A (attempt 1)` and the like. */
export function describeEffect(e: WouldDo): string {
  switch (e.effect) {
    case 'startWorker':
      return `start worker on ${e.params.executorName} (attempt ${e.params.attempt})`;
    case 'stopWorker':
      return `stop worker on ${e.params.executorName} (attempt ${e.params.attempt}${e.params.executionId ? `, ${e.params.executionId}` : ''})`;
    case 'startDeadline':
      return `deadline in ${e.params.seconds} s`;
    case 'requeue':
      return `requeue, retry in ${e.params.retryAfterSeconds} s`;
    case 'finish':
      return `finish as ${e.params.outcome}`;
    case 'countFallback':
      return `count fallback from ${e.params.executorName}`;
  }
}
