import { CleanupStack } from '../../fixtures/cleanup-stack.ts';

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

/**
 * Runs `body` with a fresh CleanupStack that is registered here, so the
 * runner can empty it if `body` never returns, and that is emptied as soon as
 * `body` settles, whichever way. The scenario's result (or error) is passed
 * through unchanged; clean-up failures are not reported.
 */
export async function withCleanupStack<T>(body: (stack: CleanupStack) => Promise<T>): Promise<T> {
  const stack = new CleanupStack();
  const release = onCleanup(() => stack.run());
  try {
    return await body(stack);
  } finally {
    await release();
  }
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
