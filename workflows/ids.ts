/**
 * The names every operation goes by, in one place: the client, the schedule wrapper and the schedules
 * all build them here. Pure string functions, so workflow code may use them.
 */

/**
 * The name a project goes by in workflow ids, schedule ids and the `DbtDeployProject` search attribute:
 * its alias when the payloads are encrypted (`projectAlias`, set by the client), else its name.
 */
export function projectIdOf(input: { project: string; projectAlias?: string }): string {
  return input.projectAlias ?? input.project;
}

/** One workflow id per project and environment: the server itself refuses a second concurrent deploy. */
export function deployWorkflowId(project: string, env: string): string {
  return `dbt-deploy-${project}-${env}`;
}

/**
 * Sortable and readable: `prod-20261125t171500-3fa2`. Also names the deploy's backup location.
 * `suffix` tells apart two deploys started in the same second (random on the client, `uuid4()` in a
 * workflow, so the workflow stays deterministic).
 */
export function deployIdOf(env: string, at: Date, suffix: string): string {
  const stamp = at.toISOString().replace(/[-:]/g, '').replace(/\..*$/, '').toLowerCase();
  return `${env}-${stamp}-${suffix}`.replace(/[^a-z0-9-]/gi, '_');
}
