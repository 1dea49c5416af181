#!/usr/bin/env node
// The packed `dbt-deploy` bin: the compiled CLI, no tsx. A checkout runs bin/dbt-deploy (tsx) instead.
import { main } from '../client/cli.js';

process.exitCode = await main(process.argv);
