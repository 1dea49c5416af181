# The dbt-deploy worker: Node 20, the dbt virtualenv (dbt-core 1.11 with the DuckDB, PostgreSQL,
# Snowflake and BigQuery adapters) and this package as `npm pack` makes it. Both installs run
# scripts/setup, the script `npm test` and `npm run demo` run, so the image has exactly the pins the
# tests ran with: `--only=npm` (npm ci from package-lock.json) to build the package, `--only=dbt`
# (scripts/requirements-dbt*.txt) for the virtualenv.
#
#   docker build -t dbt-temporal-deploy .
#   docker run --rm dbt-temporal-deploy --help
#
# docker-compose.yml runs it beside Temporal and PostgreSQL; docs/operations.md ("Containers") says how,
# and what of it the test suite exercises (Docker does not run on the project's CI machines).

ARG NODE_IMAGE=node:20-bookworm-slim

# --- build: the npm packages, then the package tarball (prepack compiles lib/) -----------------------
FROM ${NODE_IMAGE} AS build
WORKDIR /src
COPY package.json package-lock.json ./
COPY scripts/setup scripts/
RUN bash scripts/setup --only=npm
COPY . .
RUN npm pack --pack-destination /dist && mv /dist/dbt-temporal-deploy-*.tgz /dist/dbt-temporal-deploy.tgz

# --- the worker image -----------------------------------------------------------------------------
FROM ${NODE_IMAGE}
# python3-venv for the dbt virtualenv; git for `dbt deps` in projects with packages.
RUN apt-get update \
  && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends python3 python3-venv git ca-certificates \
  && rm -rf /var/lib/apt/lists/*
WORKDIR /opt/dbt-deploy
COPY scripts/setup scripts/requirements-dbt.txt scripts/requirements-dbt-bigquery.txt scripts/
RUN bash scripts/setup --only=dbt
COPY --from=build /dist/dbt-temporal-deploy.tgz /tmp/
# Installed as a team installs it (the package test does the same): the peers come with it.
RUN echo '{"name":"dbt-deploy-worker","private":true,"type":"module"}' > package.json \
  && npm install --omit=dev --no-audit --no-fund /tmp/dbt-temporal-deploy.tgz \
  && rm /tmp/dbt-temporal-deploy.tgz
# The example project with its raw sources loaded into its own DuckDB file, ready to deploy:
# `docker compose exec worker dbt-deploy deploy --project-dir /opt/dbt-deploy/example/jaffle_shop`.
RUN node --input-type=module -e "import { createExampleWorkspace } from '/opt/dbt-deploy/node_modules/dbt-temporal-deploy/lib/examples/jaffle_shop/workspace.js'; await createExampleWorkspace('/opt/dbt-deploy/example/jaffle_shop');" \
  && chown -R node:node /opt/dbt-deploy/example
ENV PATH=/opt/dbt-deploy/node_modules/.bin:$PATH \
  DBT_BIN=/opt/dbt-deploy/.venv/bin/dbt \
  DBT_SEND_ANONYMOUS_USAGE_STATS=false \
  DO_NOT_TRACK=1
USER node
# Prometheus metrics, when the worker runs with --metrics 0.0.0.0:9464.
EXPOSE 9464
ENTRYPOINT ["dbt-deploy"]
CMD ["worker"]
