/**
 * The Temporal Web UI as an operator uses it: headless Chromium finds a finished deploy by the search
 * attributes the workflow keeps and opens it to see its steps. The deploy's payloads are encrypted
 * (client/codec.ts): the UI shows the steps only because it decodes them through `dbt-deploy
 * codec-server`'s protocol, at the endpoint the run's dev server names (`--ui-codec-endpoint`). The
 * screenshots are kept under .test-runs/ui/ so a person can check what the assertions saw.
 */
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { type Browser, chromium, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { AesGcmCodec, projectAlias } from '../../client/codec.js';
import { type CodecServer, startCodecServer } from '../../client/codec-server.js';
import { exampleProject, ROOT, startTestWorker, type TestWorker } from '../support/harness.js';
import type { DeployResult } from '../../workflows/types.js';

/** Debian's build: playwright's own browser downloads cannot reach their host from these machines. */
const CHROMIUM = '/usr/bin/chromium';
const SCREENSHOTS = join(ROOT, '.test-runs', 'ui');
/** With encrypted payloads the search attributes name the project by its alias. */
const QUERY = `DbtDeployProject = "${projectAlias('jaffle_shop')}" AND DbtDeployStatus = "published"`;
const codec = new AesGcmCodec([{ id: 'ui-test', key: randomBytes(32) }]);
/** The UI is a single-page app that loads its data after the page: a cold first render is slow on 2 cores. */
const UI_TIMEOUT_MS = 60_000;

interface Session {
  page: Page;
  worker: TestWorker;
  deploy: DeployResult;
}

describe('Temporal Web UI', () => {
  let browser: Browser | undefined;
  let worker: TestWorker | undefined;
  let session: Session | undefined;
  let codecServer: CodecServer | undefined;

  beforeAll(async () => {
    // Without Chromium each test fails on its own (below): a failing beforeAll would count them as skipped.
    if (!existsSync(CHROMIUM)) return;
    await mkdir(SCREENSHOTS, { recursive: true });
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
    const page = await browser.newPage({ viewport: { width: 1600, height: 1300 } });
    page.setDefaultTimeout(UI_TIMEOUT_MS);
    const project = await exampleProject();
    codecServer = await startCodecServer({
      codec,
      port: inject('uiCodecPort'),
      origins: [inject('temporalUiUrl')],
    });
    worker = await startTestWorker('test-ui', undefined, { codec });
    session = { page, worker, deploy: await worker.deploy({ projectDir: project.dir }) };
  });
  afterAll(async () => {
    await browser?.close();
    await worker?.stop();
    await codecServer?.close();
  });

  /** CI installs Chromium, so its absence is a broken setup to report, not a reason to skip. */
  function ui(): Session {
    if (!session) {
      throw new Error(`${CHROMIUM} is missing: run \`scripts/setup --browser\` to install Debian's chromium`);
    }
    return session;
  }

  /** The deploys list, filtered the way an operator would look for this one. */
  async function openDeployList({ page, worker }: Session): Promise<void> {
    const query = encodeURIComponent(QUERY);
    await page.goto(`${inject('temporalUiUrl')}/namespaces/${worker.namespace}/workflows?query=${query}`);
  }

  /** The deploy's own page, reached from the list as a person would. */
  async function openDeploy(session: Session): Promise<void> {
    const { page, deploy } = session;
    await openDeployList(session);
    await page.getByRole('link', { name: deploy.workflowId, exact: true }).click();
    await page.waitForURL(`**/workflows/${deploy.workflowId}/**`);
    // The click leaves the pointer where the timeline opens, and its hover box covers a step's label.
    await page.mouse.move(0, 0);
  }

  it('lists the published deploy when filtered by its project and status', async () => {
    const session = ui();
    const { page, worker, deploy } = session;
    expect(deploy.status).toBe('published');
    expect(deploy.workflowId).toBe(`dbt-deploy-${projectAlias('jaffle_shop')}-prod`);
    // Visibility is written after the workflow closes: a page loaded before that never shows the row.
    await expect
      .poll(async () => (await worker.client.workflow.count(QUERY)).count, { timeout: 15_000 })
      .toBeGreaterThan(0);

    await openDeployList(session);
    const row = page.getByRole('row').filter({ hasText: deploy.workflowId });
    await row.waitFor();
    await page.screenshot({ path: join(SCREENSHOTS, 'deploy-list.png') });
    // UI 2.54 upper-cases the status badge with CSS, which innerText reflects.
    expect((await row.innerText()).toLowerCase()).toContain('completed');
    expect(await row.innerText()).toContain('deployWorkflow');
  });

  it("opens the deploy and shows every step's title in its event timeline", async () => {
    const session = ui();
    const { page, deploy } = session;
    await openDeploy(session);

    // Each activity carries its step title as its summary, and the timeline labels the activity with it.
    const titles = deploy.steps.map((s) => s.title);
    expect(titles.some((t) => t.startsWith('Build and test every model'))).toBe(true);
    expect(titles.some((t) => t.startsWith('Audit:'))).toBe(true);
    // The timeline shortens long labels, so each title is looked for by its opening words.
    for (const title of titles) {
      await page.getByText(title.slice(0, 40)).filter({ visible: true }).first().waitFor();
    }
    await page.screenshot({ path: join(SCREENSHOTS, 'deploy-history.png') });
    // The titles are sealed in history: the browser read them through the codec server.
    expect(codecServer!.counts.decode).toBeGreaterThan(0);
  });

  it("shows every step as completed in the deploy's current details under User Metadata", async () => {
    const session = ui();
    const { page, deploy } = session;
    await openDeploy(session);
    await page.getByRole('tab', { name: 'User Metadata' }).click();
    await page.getByText('Current Details').first().waitFor();

    // The workflow's current details is a markdown list, one item per step: `✔ <title> — <summary>`.
    // The UI's markdown renders straight quotes as typographic ones; compare with them undone.
    const plain = (text: string) =>
      text.replace(/[“”]/g, '"').replace(/[‘’]/g, "'").replace(/\s+/g, ' ').trim();
    // UI 2.54 renders each markdown field in its own iframe (`/render?content=…`); the details are the
    // one whose list items carry the step icons.
    let items: string[] = [];
    await expect
      .poll(
        async () => {
          for (const frame of page.frames().filter((f) => f.url().includes('/render'))) {
            const texts = await frame.getByRole('listitem').allInnerTexts();
            if (texts.some((t) => t.includes('✔'))) items = texts.map(plain);
          }
          return items.length;
        },
        { timeout: UI_TIMEOUT_MS },
      )
      .toBeGreaterThan(0);
    for (const step of deploy.steps) {
      // The whole item must match, so a step shown as running or failed fails here.
      expect(items).toContain(plain(`✔ ${step.title}${step.summary ? ` — ${step.summary}` : ''}`));
    }
    await page.screenshot({ path: join(SCREENSHOTS, 'deploy-steps.png') });
  });
});
