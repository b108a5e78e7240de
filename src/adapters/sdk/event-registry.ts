/**
 * Listeners by name, for the SDK's own events and for application events.
 * A listener that throws never breaks the socket handling that called it:
 * the caller decides what becomes of the failure.
 */
export type Listener = (payload: unknown) => void;

export class EventRegistry {
  private readonly byName = new Map<string, Set<Listener>>();

  /** Returns the function that removes this listener again. */
  add(name: string, listener: Listener): () => void {
    let set = this.byName.get(name);
    if (set === undefined) this.byName.set(name, (set = new Set()));
    set.add(listener);
    return () => {
      set.delete(listener);
    };
  }

  /** Whether anyone listens, so callers can skip building a payload nobody reads. */
  has(name: string): boolean {
    return (this.byName.get(name)?.size ?? 0) > 0;
  }

  emit(name: string, payload: unknown, onThrow: (error: unknown) => void): void {
    const set = this.byName.get(name);
    if (set === undefined) return;
    // A copy: a listener may unsubscribe itself or others while this runs.
    for (const listener of [...set]) {
      try {
        listener(payload);
      } catch (error) {
        onThrow(error);
      }
    }
  }
}
