/**
 * How long `dbt-deploy plan` and `dbt-deploy status` take from the shell until they exit: the start-up
 * a person waits for on every command. Both ways the CLI ships are timed: bin/dbt-deploy in a checkout
 * (TypeScript through tsx) and the npm package's compiled lib/bin/dbt-deploy.js (`npm run build` makes
 * lib/; skipped when it is missing), by wall time and by CPU time (GNU time). `status` asks a private dev server, which answers "none running";
 * `--help` is the CLI's own floor (its imports, nothing else), and Node alone and tsx alone the floors below it. Median of 5 runs each. Prints a
 * markdown table; asserts nothing.
 *
 *   npm run build && npx tsx bench/cli.ts
 */
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { startDevServer } from '../client/dev-server.js';
import { createExampleWorkspace } from '../examples/jaffle_shop/workspace.js';
import { duration, median, printTable, timed } from './support/table.js';

const ROOT = join(import.meta.dirname, '..');
const RUNS = Number(process.env['BENCH_RUNS'] ?? '5');
const COMMAND = 'npm run build && npx tsx bench/cli.ts';

const ways: Array<{ name: string; command: string[] }> = [
  { name: 'checkout: bin/dbt-deploy (tsx)', command: [join(ROOT, 'bin', 'dbt-deploy')] },
];
const compiled = join(ROOT, 'lib', 'bin', 'dbt-deploy.js');
if (existsSync(compiled))
  ways.push({ name: 'package: lib/bin/dbt-deploy.js (node)', command: [process.execPath, compiled] });

/**
 * Wall time, and the CPU time of the command and its children from GNU time: on a loaded machine the
 * wall time waits for other processes, the CPU time much less.
 */
async function measure(file: string, args: string[], env: Record<string, string>) {
  const [wallMs, result] = await timed(() =>
    execa('/usr/bin/time', ['-f', 'cpu %U %S', file, ...args], { env, reject: false }),
  );
  if (result.exitCode !== 0) throw new Error(`${file} ${args.join(' ')} failed: ${result.stderr}`);
  const [, user, system] = /cpu ([\d.]+) ([\d.]+)\s*$/.exec(result.stderr) ?? [];
  return { wallMs, cpuMs: (Number(user) + Number(system)) * 1000 };
}

const dir = await mkdtemp(join(tmpdir(), 'dbt-deploy-cli-bench-'));
const server = await startDevServer({ startupTimeoutMs: 120_000 });
try {
  const project = await createExampleWorkspace(join(dir, 'jaffle_shop'));
  const env = { TEMPORAL_ADDRESS: server.address, TEMPORAL_NAMESPACE: server.namespace };
  const commands: Array<[string, string[]]> = [
    ['--help', ['--help']],
    ['plan', ['plan', '--project-dir', project.dir]],
    ['status', ['status', '--project-dir', project.dir]],
  ];
  const rows: string[][] = [];
  // The floors: Node alone, and tsx on an empty file (what any command through bin/dbt-deploy pays).
  const empty = join(dir, 'empty.ts');
  await writeFile(empty, '\n');
  const runs: Array<[string, string, string, string[]]> = [
    ['floor', 'node -e 0', process.execPath, ['-e', '0']],
    ['floor', 'tsx <empty file>', join(ROOT, 'node_modules', '.bin', 'tsx'), [empty]],
  ];
  for (const way of ways)
    for (const [label, args] of commands)
      runs.push([way.name, `dbt-deploy ${label}`, way.command[0]!, [...way.command.slice(1), ...args]]);
  for (const [how, label, file, args] of runs) {
    const wall: number[] = [];
    const cpu: number[] = [];
    for (let run = 0; run < RUNS; run += 1) {
      const measured = await measure(file, args, env);
      wall.push(measured.wallMs);
      cpu.push(measured.cpuMs);
    }
    rows.push([how, label, duration(median(wall)), duration(Math.min(...wall)), duration(median(cpu))]);
  }
  printTable(
    `CLI start-up, from the shell until exit (median of ${RUNS})`,
    COMMAND,
    ['how it runs', 'command', 'median', 'fastest', 'CPU (user+sys, median)'],
    rows,
  );
} finally {
  await server.stop();
  await rm(dir, { recursive: true, force: true });
}
