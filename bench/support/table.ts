/** What the bench scripts share: a timer, and the markdown table each prints with its command. */
import { cpus, totalmem } from 'node:os';
import type { WarehouseAdapter } from '../../activities/warehouses/adapter.js';
import type { Relation } from '../../workflows/types.js';

export async function timed<T>(work: () => Promise<T>): Promise<[number, T]> {
  const start = performance.now();
  const value = await work();
  return [performance.now() - start, value];
}

export function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] ?? 0;
}

/** `12 ms`, `1.4 s`: milliseconds below a second, seconds above. */
export function duration(ms: number): string {
  return ms < 1000 ? `${ms.toFixed(0)} ms` : `${(ms / 1000).toFixed(2)} s`;
}

/** The machine a figure came from, in one line. */
export function machine(): string {
  const cpu = cpus();
  return `${cpu.length} cores (${cpu[0]?.model.trim() ?? 'unknown CPU'}), ${(totalmem() / 2 ** 30).toFixed(0)} GiB, Node ${process.version}`;
}

/** A markdown table under a heading, with the command that reproduces it. */
export function printTable(title: string, command: string, header: string[], rows: string[][]): void {
  const align = header.map((_, i) =>
    rows.every((r) => /^[\d.,]+( |$)|^-$/.test(r[i] ?? '')) ? '---:' : '---',
  );
  console.log(`### ${title}\n`);
  console.log(`\`${command}\` — ${machine()}\n`);
  console.log(`| ${header.join(' | ')} |`);
  console.log(`|${align.join('|')}|`);
  for (const row of rows) console.log(`| ${row.join(' | ')} |`);
  console.log('');
}

/** The copy-based warehouse steps of one deploy over tables `t0..t<n-1>`, from schema staging to prod. */
export async function timeCopySteps(
  adapter: WarehouseAdapter,
  database: string,
  tables: number,
): Promise<{ backupMs: number; publishMs: number; fingerprintMs: number; restoreMs: number }> {
  const relation = (schema: string, t: number): Relation => ({ database, schema, identifier: `t${t}` });
  const all = Array.from({ length: tables }, (_, t) => t);
  const prod = all.map((t) => relation('prod', t));
  const label = { env: 'bench', createdAt: '2026-01-01T00:00:00.000Z' };
  const [backupMs, backup] = await timed(() => adapter.backup('bench', prod, label));
  const [publishMs] = await timed(() =>
    adapter.replaceRelations({
      tables: all.map((t) => ({ from: relation('staging', t), to: relation('prod', t) })),
      views: [],
      drop: [],
    }),
  );
  const [fingerprintMs] = await timed(async () => {
    for (const table of prod) await adapter.fingerprint(table);
  });
  const [restoreMs] = await timed(() => adapter.restore(backup));
  return { backupMs, publishMs, fingerprintMs, restoreMs };
}
