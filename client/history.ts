/**
 * `dbt-deploy history`: past deploys of an environment, found through the search attributes every
 * deploy carries, with what each published and who approved it (from its result).
 */
import type { Client } from '@temporalio/client';
import type { DeployResult } from '../workflows/types.js';
import { projectIdFor } from './codec.js';
import { deployResult } from './deploys.js';

export interface HistoryLine {
  deployId: string | null;
  workflowId: string;
  runId: string;
  workflowType: string;
  /** The result's status once ended (`published`, ...), or `running`. */
  status: string;
  strategy: string | null;
  startedAt: string;
  durationSeconds: number | null;
  published: string[];
  /** How many relations were published; `published` names at most the first `PUBLISHED_LISTED`. */
  publishedCount: number;
  decision: DeployResult['decision'] | null;
  gitSha: string | null;
}

export async function deployHistory(
  client: Client,
  project: string,
  env: string,
  limit = 20,
): Promise<HistoryLine[]> {
  const query = `DbtDeployProject = ${quote(projectIdFor(client, project))} AND DbtDeployEnv = ${quote(env)}`;
  const lines: HistoryLine[] = [];
  for await (const execution of client.workflow.list({ query, pageSize: limit })) {
    const attributes = execution.searchAttributes as Record<string, unknown[] | undefined>;
    const first = (name: string) => {
      const value = attributes[name]?.[0];
      return typeof value === 'string' ? value : null;
    };
    let result: DeployResult | null = null;
    if (execution.status.name !== 'RUNNING') {
      const handle = client.workflow.getHandle(execution.workflowId, execution.runId);
      result = await deployResult(handle).catch(() => null);
    }
    const closed = execution.closeTime?.getTime();
    lines.push({
      deployId:
        result?.deployId ??
        (typeof execution.memo?.['deployId'] === 'string' ? execution.memo['deployId'] : null),
      workflowId: execution.workflowId,
      runId: execution.runId,
      workflowType: execution.type,
      status: result?.status ?? first('DbtDeployStatus') ?? execution.status.name.toLowerCase(),
      strategy: result?.strategy ?? first('DbtDeployStrategy'),
      startedAt: execution.startTime.toISOString(),
      durationSeconds:
        closed === undefined ? null : Math.round((closed - execution.startTime.getTime()) / 1000),
      published: result?.published ?? [],
      publishedCount: result?.publishedCount ?? result?.published.length ?? 0,
      decision: result?.decision ?? null,
      gitSha: first('DbtDeployGitSha'),
    });
    if (lines.length >= limit) break;
  }
  return lines;
}

export function formatHistory(lines: HistoryLine[]): string {
  if (lines.length === 0) return 'no deploys found';
  const rows = lines.map((l) => [
    l.startedAt.replace('T', ' ').replace(/\.\d+Z$/, 'Z'),
    l.status,
    l.strategy ?? '-',
    l.durationSeconds === null ? '-' : `${l.durationSeconds}s`,
    String(l.publishedCount),
    l.decision ? `${l.decision.kind} by ${l.decision.by}` : '-',
    l.deployId ?? l.workflowId,
  ]);
  const header = ['started', 'status', 'strategy', 'took', 'published', 'approval', 'deploy'];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  return [header, ...rows]
    .map((r) =>
      r
        .map((c, i) => c.padEnd(widths[i]!))
        .join('  ')
        .trimEnd(),
    )
    .join('\n');
}

function quote(value: string): string {
  return `"${value.replaceAll('\\', '\\\\').replaceAll('"', '\\"')}"`;
}
