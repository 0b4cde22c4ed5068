/**
 * Listeners called asynchronously and coalesced: `notify()` from inside an operation never runs a
 * listener there, and a burst of notifies calls each listener once. One listener's failure does
 * not starve the others (listeners report their own errors).
 */
export class CoalescedListeners {
  private readonly listeners = new Set<() => void>();
  private pending = false;
  private closed = false;

  add(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => {
      this.listeners.delete(listener);
    };
  }

  notify(): void {
    if (this.pending || this.closed) return;
    this.pending = true;
    queueMicrotask(() => {
      this.pending = false;
      for (const listener of [...this.listeners]) {
        try {
          listener();
        } catch {
          // see the class comment
        }
      }
    });
  }

  close(): void {
    this.closed = true;
    this.listeners.clear();
  }
}
