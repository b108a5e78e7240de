/**
 * Everything a scenario starts (servers, child processes, databases) is
 * registered here, so that the runner can stop it even when the scenario
 * itself never got to its `finally` (it timed out, or threw half-way).
 * Disposers run newest first; each one runs at most once.
 */
type Disposer = () => Promise<unknown> | unknown;

const pending = new Set<Disposer>();

/** Registers `dispose`; call the returned function to run it now and unregister it. */
export function onCleanup(dispose: Disposer): () => Promise<void> {
  let done = false;
  const once: Disposer = async () => {
    if (done) return;
    done = true;
    pending.delete(once);
    await dispose();
  };
  pending.add(once);
  return async () => {
    await once();
  };
}

/** Runs every registered disposer (newest first), each bounded; failures are returned, not thrown. */
export async function cleanupAll(timeoutMs = 15_000): Promise<string[]> {
  const problems: string[] = [];
  for (const dispose of [...pending].reverse()) {
    let timer: NodeJS.Timeout | undefined;
    try {
      await Promise.race([
        dispose(),
        new Promise((_, reject) => {
          timer = setTimeout(() => reject(new Error(`cleanup did not finish in ${timeoutMs} ms`)), timeoutMs);
        }),
      ]);
    } catch (error) {
      problems.push((error as Error).message);
    } finally {
      clearTimeout(timer);
      pending.delete(dispose);
    }
  }
  return problems;
}
