/**
 * `npm run bench`: runs every table script in bench/ one after the other and prints their markdown
 * tables, each with the command that reproduces it. A script is found by being here (`bench/*.ts`),
 * so a new one needs no entry; scripts that package.json runs on their own (`bench:<name>`, e.g. the
 * BigQuery emulator's) are left to that script. `BENCH_ONLY=duckdb,postgres` runs only those.
 * Each script runs in its own process, so one that fails does not stop the others.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { execa } from 'execa';
import { machine } from './support/table.js';

const HERE = import.meta.dirname;
const ROOT = join(HERE, '..');
const own = Object.keys(
  (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { scripts: Record<string, string> })
    .scripts,
)
  .filter((name) => name.startsWith('bench:'))
  .map((name) => name.slice('bench:'.length));
const only = process.env['BENCH_ONLY']?.split(',').map((name) => name.trim());
const scripts = readdirSync(HERE)
  .filter((file) => file.endsWith('.ts') && file !== basename(import.meta.filename))
  .map((file) => file.replace(/\.ts$/, ''))
  .filter((name) => !own.includes(name) && (!only || only.includes(name)))
  .sort();

console.log(`## Benchmarks, ${new Date().toISOString().slice(0, 10)}\n`);
console.log(`${machine()}; scripts: ${scripts.map((s) => `bench/${s}.ts`).join(', ')}\n`);
let failed = 0;
for (const name of scripts) {
  const started = performance.now();
  const run = await execa('npx', ['tsx', join('bench', `${name}.ts`)], {
    cwd: ROOT,
    stdout: 'inherit',
    stderr: 'inherit',
    reject: false,
  });
  const seconds = ((performance.now() - started) / 1000).toFixed(0);
  if (run.exitCode !== 0) {
    failed += 1;
    console.log(`_bench/${name}.ts failed (exit ${run.exitCode}) after ${seconds} s_\n`);
  } else {
    console.error(`bench/${name}.ts took ${seconds} s`);
  }
}
process.exitCode = failed > 0 ? 1 : 0;
