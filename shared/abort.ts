// Abort signals with a deadline that are safe from garbage collection: Node may collect an AbortSignal.timeout()
// that only AbortSignal.any() refers to, and then it never fires. Here the timer itself holds the controller.

export interface Deadline {
  signal: AbortSignal;
  /** Clears the timer (call it when the work is done, so nothing keeps running). */
  clear(): void;
}

export function deadline(ms: number, parent?: AbortSignal): Deadline {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(new DOMException(`no answer within ${ms} ms`, 'TimeoutError')), ms);
  const onParentAbort = () => controller.abort(parent?.reason);
  if (parent?.aborted) controller.abort(parent.reason);
  else parent?.addEventListener('abort', onParentAbort, { once: true });
  return {
    signal: controller.signal,
    clear() {
      clearTimeout(timer);
      parent?.removeEventListener('abort', onParentAbort);
    },
  };
}
