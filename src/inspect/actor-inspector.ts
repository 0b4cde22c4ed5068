import type { InspectionEvent } from 'xstate';

/**
 * What the actor host hands every inspection event of a build's actor system to (the root and its
 * executor children alike). It must return at once: it runs inside XState's event loop.
 */
export interface ActorInspector {
  inspect(buildId: string, event: InspectionEvent): void;
}
