import { describe, expect, it } from 'vitest';
import { InspectionBuffer, type FeedMessage } from '../../src/inspect/inspection-buffer.js';

let seq = 0;
const msg = (buildId: string, type: string, sessionId: string): FeedMessage => ({ seq: ++seq, buildId, type, sessionId, json: `${type} ${sessionId} #${seq}` });

describe('InspectionBuffer', () => {
  it('replays the recent window, filtered', () => {
    const buffer = new InspectionBuffer(10);
    const a = msg('a', '@xstate.actor', 'x:0');
    const b = msg('b', '@xstate.actor', 'x:1');
    buffer.add(a);
    buffer.add(b);
    expect(buffer.replay(() => true)).toEqual([a, b]);
    expect(buffer.replay((m) => m.buildId === 'b')).toEqual([b]);
  });

  it('keeps a live actor’s registration and latest snapshot after they leave the window, and forgets ended actors', () => {
    const buffer = new InspectionBuffer(3);
    const actor = msg('a', '@xstate.actor', 'x:0');
    const first = msg('a', '@xstate.snapshot', 'x:0');
    const latest = msg('a', '@xstate.snapshot', 'x:0');
    const ended = msg('b', '@xstate.actor', 'x:1');
    buffer.add(actor);
    buffer.add(first, 'active');
    buffer.add(latest, 'active');
    buffer.add(ended);
    buffer.add(msg('b', '@xstate.snapshot', 'x:1'), 'done');
    const noise = [msg('c', '@xstate.event', 'x:2'), msg('c', '@xstate.event', 'x:2'), msg('c', '@xstate.event', 'x:2')];
    for (const m of noise) buffer.add(m);
    // Window: the three noise events. Pinned before them: a's registration and latest snapshot, not b's.
    expect(buffer.replay(() => true)).toEqual([actor, latest, ...noise]);
    expect(buffer.replay((m) => m.buildId === 'a')).toEqual([actor, latest]);
  });
});
