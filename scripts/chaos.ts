/**
 * `npm run chaos -- [--trials N] [--seed S] [--parallel P] [--only I,J] [--resume] [--kind K]
 * [--engine E] [--timeout SECONDS] [--no-doc]`: the chaos run (see docs/reliability.md). Starts its own Temporal dev server and PostgreSQL cluster, runs
 * N trials drawn from the seed (a few at once: much of a trial is waiting for a heartbeat timeout),
 * prints the table of faults and outcomes and writes it into docs/reliability.md with the command that
 * made it. Each outcome is also appended to .test-runs/chaos/seed<S>.jsonl; `--resume` skips the
 * trials found there, so an interrupted run goes on where it stopped. Exit code 1 when any invariant
 * broke.
 */
import { appendFile, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { Client, Connection } from '@temporalio/client';
import { startDevServer } from '../client/dev-server.js';
import { bundleDeployWorkflows } from '../worker/worker.js';
import {
  type ChaosEngine,
  drawTrial,
  ENGINES,
  EXTRA_FAULT_KINDS,
  FAULT_KINDS,
  type FaultKind,
  type TrialSpec,
} from '../test/chaos/faults.js';
import { formatTables, trialName, writeReliabilityDoc } from '../test/chaos/report.js';
import { type ChaosEnvironment, runTrial, type TrialOutcome } from '../test/chaos/trial.js';
import { startPostgres } from '../test/support/postgres.js';

const ROOT = new URL('..', import.meta.url).pathname;

const { values } = parseArgs({
  options: {
    trials: { type: 'string', default: '50' },
    seed: { type: 'string' },
    parallel: { type: 'string', default: '3' },
    only: { type: 'string' },
    resume: { type: 'boolean', default: false },
    kind: { type: 'string' },
    engine: { type: 'string' },
    timeout: { type: 'string', default: '600' },
    'no-doc': { type: 'boolean', default: false },
  },
});
const trials = Number(values.trials);
const seed = values.seed !== undefined ? Number(values.seed) : Math.floor(Date.now() / 1000) % 100_000;
const parallel = Math.max(1, Number(values.parallel));
if (!Number.isInteger(trials) || trials < 1 || !Number.isInteger(seed) || !Number.isInteger(parallel)) {
  console.error('chaos: --trials, --seed and --parallel take whole numbers, e.g. --trials 50 --seed 7');
  process.exit(2);
}
const only = values.only?.split(',').map(Number);
const fixed = {
  ...(values.kind ? { kind: values.kind as FaultKind } : {}),
  ...(values.engine ? { engine: values.engine as ChaosEngine } : {}),
};
if (
  (fixed.kind && ![...FAULT_KINDS, ...EXTRA_FAULT_KINDS].includes(fixed.kind)) ||
  (fixed.engine && !ENGINES.includes(fixed.engine))
) {
  console.error(
    `chaos: --kind takes ${[...FAULT_KINDS, ...EXTRA_FAULT_KINDS].join(', ')}; --engine takes ${ENGINES.join(', ')}`,
  );
  process.exit(2);
}
const specs: TrialSpec[] = (only ?? Array.from({ length: trials }, (_, i) => i)).map((i) =>
  drawTrial(seed, i, fixed),
);
const logDir = join(ROOT, '.test-runs', 'chaos');
const resultsFile = join(logDir, `seed${seed}.jsonl`);
await mkdir(logDir, { recursive: true });
const earlier: TrialOutcome[] = values.resume
  ? (await readFile(resultsFile, 'utf8').catch(() => ''))
      .split('\n')
      .filter(Boolean)
      .map((line) => JSON.parse(line) as TrialOutcome)
      .filter((o) => specs.some((s) => s.index === o.spec.index))
  : [];
// A fresh run starts a fresh results file; only --resume reads what an earlier one left.
if (!values.resume) await writeFile(resultsFile, '');
const command = `npm run chaos -- --trials ${trials} --seed ${seed} --parallel ${parallel}${values.only ? ` --only ${values.only}` : ''}${values.resume ? ' --resume' : ''}${values.kind ? ` --kind ${values.kind}` : ''}${values.engine ? ` --engine ${values.engine}` : ''}`;
process.env['DBT_SEND_ANONYMOUS_USAGE_STATS'] = 'false';
process.env['DO_NOT_TRACK'] = '1';

console.log(`chaos: ${specs.length} trials, seed ${seed}, ${parallel} at a time`);
const scratchRoot = await mkdtemp(join(tmpdir(), 'dbt-deploy-chaos-'));
const [server, postgres, bundle] = await Promise.all([
  startDevServer({ namespace: 'chaos', startupTimeoutMs: 120_000 }),
  startPostgres(),
  bundleDeployWorkflows(),
]);
const bundlePath = join(scratchRoot, 'workflow-bundle.js');
await writeFile(bundlePath, bundle.code);
const connection = await Connection.connect({ address: server.address });
const env: ChaosEnvironment = {
  client: new Client({ connection, namespace: 'chaos' }),
  address: server.address,
  namespace: 'chaos',
  bundlePath,
  postgres,
  scratchRoot,
  logDir,
  trialTimeoutMs: Number(values.timeout) * 1000,
};

const started = Date.now();
const outcomes: TrialOutcome[] = [...earlier];
if (earlier.length > 0) console.log(`chaos: ${earlier.length} trials taken from ${resultsFile}`);
try {
  const queue = specs.filter((s) => !earlier.some((o) => o.spec.index === s.index));
  await Promise.all(
    Array.from({ length: parallel }, async () => {
      for (let spec = queue.shift(); spec; spec = queue.shift()) {
        const outcome = await runTrial(env, spec);
        outcomes.push(outcome);
        await appendFile(resultsFile, `${JSON.stringify(outcome)}\n`);
        const verdict =
          outcome.breaks.length > 0
            ? `BROKE: ${outcome.breaks.join('; ')}`
            : outcome.status === 'setup-failed'
              ? `trial could not run: ${outcome.reason}`
              : 'ok';
        console.log(
          `[${outcomes.length}/${specs.length}] ${trialName(spec)} ${spec.engine} ${spec.strategy} ${spec.kind}@${spec.stepId}: ${outcome.status} in ${outcome.seconds} s, ${verdict}`,
        );
      }
    }),
  );
} finally {
  await connection.close();
  await Promise.all([server.stop(), postgres.stop()]);
  await rm(scratchRoot, { recursive: true, force: true });
}

outcomes.sort((a, b) => a.spec.index - b.spec.index);
const minutes = ((Date.now() - started) / 60_000).toFixed(1);
const tables = formatTables(outcomes);
console.log(`\n${tables}\n\n${minutes} min; worker logs in .test-runs/chaos/`);
if (!values['no-doc']) {
  const generated = [
    `Made by \`${command}\` on ${new Date().toISOString().slice(0, 10)} (${minutes} min, ${specs.length} trials).`,
    '',
    tables,
  ].join('\n');
  await writeReliabilityDoc(join(ROOT, 'docs', 'reliability.md'), generated);
  console.log('written to docs/reliability.md');
}
process.exitCode = outcomes.some((o) => o.breaks.length > 0 || o.status === 'setup-failed') ? 1 : 0;
