/**
 * A working copy of this example with its raw sources loaded: what the demo and the tests deploy.
 * Build output and database files of the original are left behind, so every copy starts clean.
 */
import { cp, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadRawData } from './raw-data.js';

export const EXAMPLE_DIR = fileURLToPath(new URL('.', import.meta.url));

export interface ExampleWorkspace {
  dir: string;
  /** The DuckDB file the example's profiles.yml points at. */
  database: string;
}

/** Replaces `dir` with a fresh copy of the example and loads its raw sources. */
export async function createExampleWorkspace(dir: string): Promise<ExampleWorkspace> {
  await rm(dir, { recursive: true, force: true });
  await cp(EXAMPLE_DIR, dir, {
    recursive: true,
    filter: (source) => !/(\/target|\/logs|\.duckdb(\.wal)?)$/.test(source),
  });
  const database = join(dir, 'jaffle_shop.duckdb');
  await loadRawData(database);
  return { dir, database };
}
