/**
 * The diff's statements on Snowflake and BigQuery, as data, against each vendor's documentation (each
 * expectation names the page it relies on; Snowflake pages are under
 * https://docs.snowflake.com/en/sql-reference/). No emulator here: DuckDB and PostgreSQL run the same
 * shapes for real in test/audits/diff-rules.test.ts. Also what every engine shares: only SELECTs, and a
 * custom assertion kept to one.
 */
import { describe, expect, it } from 'vitest';
import { diffStatementsFor } from '../../activities/diff.js';
import { ENGINES } from '../../activities/warehouses/capabilities.js';
import type { DiffPair } from '../../activities/warehouses/shared/diff-sql.js';

describe('Snowflake diff statements', () => {
  const sql = diffStatementsFor('snowflake');
  const prod = { database: 'analytics', schema: 'marts', identifier: 'fct_orders' };
  const candidate = { database: 'analytics_staging', schema: 'marts', identifier: 'fct_orders' };
  // Column names as information_schema.columns returns them (folded by Snowflake when dbt created them).
  const pair: DiffPair = {
    prod,
    candidate,
    columns: [
      { prod: 'ORDER_ID', candidate: 'ORDER_ID' },
      { prod: 'AMOUNT', candidate: 'AMOUNT' },
    ],
    key: [{ prod: 'ORDER_ID', candidate: 'ORDER_ID' }],
  };
  const P = '"ANALYTICS"."MARTS"."FCT_ORDERS"';
  const C = '"ANALYTICS_STAGING"."MARTS"."FCT_ORDERS"';

  it('reads the columns with precision and scale, names folded as dbt-snowflake leaves them', () => {
    // info-schema/columns: TABLE_SCHEMA, TABLE_NAME, COLUMN_NAME, ORDINAL_POSITION, DATA_TYPE,
    // NUMERIC_PRECISION, NUMERIC_SCALE (NULL for non-numeric types).
    expect(sql.columns(prod)).toBe(
      `SELECT column_name, CASE WHEN numeric_precision IS NULL THEN data_type ELSE data_type || '(' || numeric_precision || ',' || numeric_scale || ')' END AS data_type ` +
        `FROM "ANALYTICS".INFORMATION_SCHEMA.COLUMNS WHERE table_schema = 'MARTS' AND table_name = 'FCT_ORDERS' ORDER BY ordinal_position`,
    );
  });

  it('counts both sides in one statement', () => {
    // functions/count: COUNT(*) (answered from micro-partition metadata, no scan).
    expect(sql.counts(prod, candidate)).toBe(
      `SELECT (SELECT COUNT(*) FROM ${P}) AS prod_rows, (SELECT COUNT(*) FROM ${C}) AS candidate_rows`,
    );
    expect(sql.count(prod)).toBe(`SELECT COUNT(*) AS row_count FROM ${P}`);
  });

  it('checksums the shared columns with HASH_AGG, on the sampled keys past the threshold', () => {
    // functions/hash_agg: HASH_AGG( [ DISTINCT ] <expr> [ , <expr2> ... ] ), order-independent, 0 for no rows.
    // functions/to_char (TO_VARCHAR): values compared as text, so a retyped column with equal values matches.
    expect(sql.checksums(pair)).toBe(
      `SELECT (SELECT TO_VARCHAR(HASH_AGG(TO_VARCHAR(p."ORDER_ID"), TO_VARCHAR(p."AMOUNT"))) FROM ${P} AS p) AS prod_checksum, ` +
        `(SELECT TO_VARCHAR(HASH_AGG(TO_VARCHAR(c."ORDER_ID"), TO_VARCHAR(c."AMOUNT"))) FROM ${C} AS c) AS candidate_checksum`,
    );
    // functions/hash: HASH( <expr> [ , <expr> ... ] ); functions/mod; functions/abs. ABS after MOD keeps
    // the bucket in 0..9999 whatever the sign of the 64-bit hash.
    expect(sql.checksums({ ...pair, sampleBasisPoints: 1000 })).toContain(
      `FROM ${P} AS p WHERE ABS(MOD(HASH(TO_VARCHAR(p."ORDER_ID")), 10000)) < 1000) AS prod_checksum`,
    );
  });

  it('matches rows by key in one FULL OUTER JOIN', () => {
    // constructs/join: FULL OUTER JOIN; constructs/with (CTEs); functions/hash for the row's hash.
    expect(sql.compare(pair)).toBe(
      `WITH p AS (SELECT p."ORDER_ID" AS k0, HASH(TO_VARCHAR(p."ORDER_ID"), TO_VARCHAR(p."AMOUNT")) AS h__, 1 AS present__ FROM ${P} AS p), ` +
        `c AS (SELECT c."ORDER_ID" AS k0, HASH(TO_VARCHAR(c."ORDER_ID"), TO_VARCHAR(c."AMOUNT")) AS h__, 1 AS present__ FROM ${C} AS c) ` +
        'SELECT COALESCE(SUM(CASE WHEN p.present__ IS NULL THEN 1 ELSE 0 END), 0) AS added, ' +
        'COALESCE(SUM(CASE WHEN c.present__ IS NULL THEN 1 ELSE 0 END), 0) AS removed, ' +
        'COALESCE(SUM(CASE WHEN p.present__ IS NOT NULL AND c.present__ IS NOT NULL AND p.h__ <> c.h__ THEN 1 ELSE 0 END), 0) AS changed ' +
        'FROM p FULL OUTER JOIN c ON p.k0 = c.k0',
    );
  });

  it('samples rows as JSON, NULL columns kept', () => {
    // functions/object_construct_keep_null: OBJECT_CONSTRUCT_KEEP_NULL(<table alias>.*) keeps NULL values;
    // functions/to_json: the OBJECT as JSON text. operators-subquery: NOT EXISTS (correlated).
    expect(sql.sample('added', pair, 3)).toBe(
      `SELECT TO_JSON(OBJECT_CONSTRUCT_KEEP_NULL(c.*)) AS row_json FROM ${C} AS c ` +
        `WHERE NOT EXISTS (SELECT 1 FROM ${P} AS p WHERE p."ORDER_ID" = c."ORDER_ID") ORDER BY c."ORDER_ID" LIMIT 3`,
    );
    expect(sql.sample('removed', pair, 3)).toBe(
      `SELECT TO_JSON(OBJECT_CONSTRUCT_KEEP_NULL(p.*)) AS row_json FROM ${P} AS p ` +
        `WHERE NOT EXISTS (SELECT 1 FROM ${C} AS c WHERE c."ORDER_ID" = p."ORDER_ID") ORDER BY p."ORDER_ID" LIMIT 3`,
    );
    expect(sql.sample('changed', pair, 3)).toBe(
      `SELECT TO_JSON(OBJECT_CONSTRUCT_KEEP_NULL(p.*)) AS before_json, TO_JSON(OBJECT_CONSTRUCT_KEEP_NULL(c.*)) AS after_json ` +
        `FROM ${P} AS p JOIN ${C} AS c ON p."ORDER_ID" = c."ORDER_ID" ` +
        `WHERE HASH(TO_VARCHAR(p."ORDER_ID"), TO_VARCHAR(p."AMOUNT")) <> HASH(TO_VARCHAR(c."ORDER_ID"), TO_VARCHAR(c."AMOUNT")) ` +
        `ORDER BY p."ORDER_ID" LIMIT 3`,
    );
  });

  it('counts lost keys exactly for no_lost_keys', () => {
    // operators-subquery: [ NOT ] EXISTS; functions/count.
    expect(sql.lostKeys(pair)).toBe(
      `SELECT COUNT(*) AS lost FROM ${P} AS p WHERE NOT EXISTS (SELECT 1 FROM ${C} AS c WHERE c."ORDER_ID" = p."ORDER_ID")`,
    );
  });

  it('quotes catalogue column names as stored: a lower-case quoted column stays lower case', () => {
    const quoted = { ...pair, columns: [{ prod: 'order id', candidate: 'order id' }], key: undefined };
    expect(sql.checksums(quoted)).toContain('TO_VARCHAR(p."order id")');
  });
});

describe('BigQuery diff statements', () => {
  const sql = diffStatementsFor('bigquery');
  const prod = { database: 'acme-data', schema: 'analytics', identifier: 'fct_orders' };
  const candidate = { database: 'acme-data', schema: 'analytics_staging', identifier: 'fct_orders' };
  const pair: DiffPair = {
    prod,
    candidate,
    columns: [
      { prod: 'order_id', candidate: 'order_id' },
      { prod: 'amount', candidate: 'amount' },
    ],
    key: [{ prod: 'order_id', candidate: 'order_id' }],
  };
  const P = '`acme-data`.`analytics`.`fct_orders`';
  const C = '`acme-data`.`analytics_staging`.`fct_orders`';
  const hash = (alias: string, columns: string[]) =>
    `FARM_FINGERPRINT(TO_JSON_STRING(STRUCT(${columns.map((c) => `${alias}.\`${c}\``).join(', ')})))`;

  it('reads the columns from the dataset INFORMATION_SCHEMA', () => {
    // https://cloud.google.com/bigquery/docs/information-schema-columns
    // (`project`.`dataset`.INFORMATION_SCHEMA.COLUMNS: table_name, column_name, ordinal_position, data_type)
    expect(sql.columns(prod)).toBe(
      "SELECT column_name, data_type FROM `acme-data`.`analytics`.INFORMATION_SCHEMA.COLUMNS WHERE table_name = 'fct_orders' ORDER BY ordinal_position",
    );
  });

  it('counts both sides in one statement', () => {
    // https://cloud.google.com/bigquery/docs/reference/standard-sql/aggregate_functions#count
    // (COUNT(*) on a table reads no bytes: it is answered from table metadata)
    expect(sql.counts(prod, candidate)).toBe(
      `SELECT (SELECT COUNT(*) FROM ${P}) AS prod_rows, (SELECT COUNT(*) FROM ${C}) AS candidate_rows`,
    );
  });

  it('checksums a FARM_FINGERPRINT per row, summed as BIGNUMERIC', () => {
    // https://cloud.google.com/bigquery/docs/reference/standard-sql/hash_functions#farm_fingerprint
    // https://cloud.google.com/bigquery/docs/reference/standard-sql/json_functions#to_json_string (NULLs kept)
    // https://cloud.google.com/bigquery/docs/reference/standard-sql/data-types#decimal_types (an INT64 sum overflows)
    expect(sql.checksums(pair)).toBe(
      `SELECT (SELECT CAST(COALESCE(SUM(CAST(${hash('p', ['order_id', 'amount'])} AS BIGNUMERIC)), 0) AS STRING) FROM ${P} AS p) AS prod_checksum, ` +
        `(SELECT CAST(COALESCE(SUM(CAST(${hash('c', ['order_id', 'amount'])} AS BIGNUMERIC)), 0) AS STRING) FROM ${C} AS c) AS candidate_checksum`,
    );
    // https://cloud.google.com/bigquery/docs/reference/standard-sql/mathematical_functions#mod and #abs:
    // ABS after MOD, because ABS of the smallest INT64 is an error.
    expect(sql.checksums({ ...pair, sampleBasisPoints: 1000 })).toContain(
      `FROM ${P} AS p WHERE ABS(MOD(${hash('p', ['order_id'])}, 10000)) < 1000) AS prod_checksum`,
    );
  });

  it('matches rows by key in one FULL OUTER JOIN', () => {
    // https://cloud.google.com/bigquery/docs/reference/standard-sql/query-syntax#full_join
    // https://cloud.google.com/bigquery/docs/reference/standard-sql/query-syntax#with_clause
    expect(sql.compare({ ...pair, sampleBasisPoints: 1000 })).toBe(
      `WITH p AS (SELECT p.\`order_id\` AS k0, ${hash('p', ['order_id', 'amount'])} AS h__, 1 AS present__ FROM ${P} AS p WHERE ABS(MOD(${hash('p', ['order_id'])}, 10000)) < 1000), ` +
        `c AS (SELECT c.\`order_id\` AS k0, ${hash('c', ['order_id', 'amount'])} AS h__, 1 AS present__ FROM ${C} AS c WHERE ABS(MOD(${hash('c', ['order_id'])}, 10000)) < 1000) ` +
        'SELECT COALESCE(SUM(CASE WHEN p.present__ IS NULL THEN 1 ELSE 0 END), 0) AS added, ' +
        'COALESCE(SUM(CASE WHEN c.present__ IS NULL THEN 1 ELSE 0 END), 0) AS removed, ' +
        'COALESCE(SUM(CASE WHEN p.present__ IS NOT NULL AND c.present__ IS NOT NULL AND p.h__ <> c.h__ THEN 1 ELSE 0 END), 0) AS changed ' +
        'FROM p FULL OUTER JOIN c ON p.k0 = c.k0',
    );
  });

  it('samples whole rows with TO_JSON_STRING of the table alias', () => {
    // https://cloud.google.com/bigquery/docs/reference/standard-sql/json_functions#to_json_string
    // (a table alias in an expression is the row as a STRUCT)
    // https://cloud.google.com/bigquery/docs/reference/standard-sql/subqueries#exists_subquery_concepts
    expect(sql.sample('added', pair, 3)).toBe(
      `SELECT TO_JSON_STRING(c) AS row_json FROM ${C} AS c WHERE NOT EXISTS (SELECT 1 FROM ${P} AS p WHERE p.\`order_id\` = c.\`order_id\`) ORDER BY c.\`order_id\` LIMIT 3`,
    );
    expect(sql.sample('changed', pair, 2)).toBe(
      `SELECT TO_JSON_STRING(p) AS before_json, TO_JSON_STRING(c) AS after_json FROM ${P} AS p JOIN ${C} AS c ON p.\`order_id\` = c.\`order_id\` ` +
        `WHERE ${hash('p', ['order_id', 'amount'])} <> ${hash('c', ['order_id', 'amount'])} ORDER BY p.\`order_id\` LIMIT 2`,
    );
  });

  it('counts lost keys exactly for no_lost_keys', () => {
    expect(sql.lostKeys(pair)).toBe(
      `SELECT COUNT(*) AS lost FROM ${P} AS p WHERE NOT EXISTS (SELECT 1 FROM ${C} AS c WHERE c.\`order_id\` = p.\`order_id\`)`,
    );
  });
});

describe('on every engine', () => {
  const relation = { database: 'db', schema: 's', identifier: 't' };
  const pair: DiffPair = {
    prod: relation,
    candidate: { ...relation, schema: 's2' },
    columns: [{ prod: 'id', candidate: 'id' }],
    key: [{ prod: 'id', candidate: 'id' }],
  };

  it.each(ENGINES)('%s: the diff only reads, and an assertion runs as one subquery', (engine) => {
    const sql = diffStatementsFor(engine);
    const all = [
      sql.columns(relation),
      sql.count(relation),
      sql.counts(pair.prod, pair.candidate),
      sql.checksums(pair),
      sql.compare(pair),
      sql.sample('added', pair, 3),
      sql.sample('removed', pair, 3),
      sql.sample('changed', pair, 3),
      sql.lostKeys(pair),
    ];
    for (const statement of all) expect(statement).toMatch(/^(SELECT|WITH) /);
    // A trailing semicolon goes, and a trailing comment cannot swallow the closing parenthesis.
    expect(sql.assertion('select * from t -- the bad ones;', 5)).toBe(
      'SELECT * FROM (\nselect * from t -- the bad ones\n) AS assertion LIMIT 5',
    );
  });

  it('needs a key to match rows', () => {
    const sql = diffStatementsFor('duckdb');
    expect(() => sql.compare({ ...pair, key: undefined })).toThrow(/a key is needed/);
  });
});
