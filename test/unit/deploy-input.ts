import type { DeployInput } from '../../workflows/types.js';

/** A deploy input for plan tests: the example project's names; override what a test is about. */
export function deployInput(overrides: Partial<DeployInput> = {}): DeployInput {
  return {
    deployId: 'prod-1',
    project: 'jaffle_shop',
    projectDir: '/p',
    profilesDir: '/p',
    profile: 'jaffle_shop',
    env: 'prod',
    strategy: 'wac',
    engine: 'duckdb',
    targets: { prod: 'prod', staging: 'staging' },
    publishTags: ['mart', 'utils'],
    ...overrides,
  };
}
