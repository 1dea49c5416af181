/**
 * DuckDB allows one read-write process per file, so the worker's own connection and the dbt processes
 * it starts must take turns. Each file gets a queue in this process; a turn ends when its work settles.
 */
const queues = new Map<string, Promise<unknown>>();

export async function takeTurn<T>(key: string, work: () => Promise<T>): Promise<T> {
  const previous = queues.get(key) ?? Promise.resolve();
  const turn = previous.then(work, work);
  const settled = turn.then(
    () => undefined,
    () => undefined,
  );
  queues.set(key, settled);
  try {
    return await turn;
  } finally {
    if (queues.get(key) === settled) queues.delete(key);
  }
}
