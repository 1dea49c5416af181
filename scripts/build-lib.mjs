// Builds the package's lib/: compiled JavaScript with .d.ts, plus the example dbt project that
// `dbt-deploy demo` copies (its TypeScript helpers are compiled beside it). Run by `npm pack` (prepack).
import { execFileSync } from 'node:child_process';
import { chmodSync, cpSync, rmSync } from 'node:fs';

rmSync('lib', { recursive: true, force: true });
execFileSync(process.execPath, ['node_modules/typescript/bin/tsc', '-p', 'tsconfig.build.json'], {
  stdio: 'inherit',
});
cpSync('examples/jaffle_shop', 'lib/examples/jaffle_shop', {
  recursive: true,
  filter: (source) => !/(\/target|\/logs|\.duckdb(\.wal)?|\.ts)$/.test(source),
});
// The failure converter an encrypting worker loads by path (CommonJS, so tsc leaves it alone).
cpSync('worker/failure-converter.cjs', 'lib/worker/failure-converter.cjs');
chmodSync('lib/bin/dbt-deploy.js', 0o755);
