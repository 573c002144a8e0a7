/**
 * The web UI in a real browser (Debian's Chromium through playwright-core) against a live system:
 * private Redis, a real Git repo of manifests, the all-in-one server and real agent processes.
 * Screenshots go to test-artifacts/ui/. Without Chromium the test skips, except in CI (CI=true),
 * where `.ci/run` installs it and its absence is a failure.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { type Browser, chromium, type Page } from 'playwright-core';
import t from 'tap';
import { freePort } from '../testkit/redis.js';
import { API_TOKEN, root, sandbox, spawnFluke, startSystem, waitFor } from '../testkit/system.js';
import { startHttpReceiver } from './helpers/http-receiver.js';

const CHROMIUM = process.env.FLUKE_CHROMIUM ?? '/usr/bin/chromium';
const ARTIFACTS = join(root, 'test-artifacts', 'ui');
const LAUNCH_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--no-first-run',
];
/** Generous: two busy cores run Redis, the server, two agents and Chromium at once. */
const WAIT = 45_000;
const SLOW_LINES = 12;

const shell = (name: string, check: string, command: string, extra = '') => `  shell "${name}" {
    check   = "${check}"
    command = "${command}"
${extra}  }
`;

function manifests(dir: string): Record<string, string> {
  return {
    'web.fluke.hcl': `task "site" {
  description = "Site <b>bold</b> & <img src=x onerror=\\"window.__xss=1\\">"
  selector { match_labels = { role = "web" } }
${shell('index', `test -f ${dir}/index`, `echo index > ${dir}/index`)}${shell(
  'config',
  `test -f ${dir}/config`,
  `echo config > ${dir}/config`,
  '    env = { APP_MODE = "prod" }\n',
)}}
`,
    // alert_only: drift checks never apply it, so only the manual reconcile below runs it.
    'slow.fluke.hcl': `task "slow" {
  description = "Prints a line a second"
  drift { policy = "alert_only" }
  selector { match_labels = { role = "web" } }
${shell(
  'count',
  `test -f ${dir}/slow`,
  `for i in $(seq 1 ${SLOW_LINES}); do echo line-$i; sleep 1; done; touch ${dir}/slow`,
)}}
`,
    'db.fluke.hcl': `task "schema" {
  selector {
    match_labels      = { role = "db" }
    match_expressions = [{ key = "zone", operator = "In", values = ["a", "b"] }]
  }
${shell('migrate', `test -f ${dir}/schema`, `echo schema > ${dir}/schema`)}}
`,
  };
}

async function noHorizontalOverflow(page: Page): Promise<number> {
  return page.evaluate(() => Math.max(document.documentElement.scrollWidth, document.body.scrollWidth));
}

const chromiumMissing = !existsSync(CHROMIUM);
if (chromiumMissing && process.env.CI !== 'true') {
  t.plan(0, `skip: no Chromium at ${CHROMIUM} (apt-get install chromium, or set FLUKE_CHROMIUM)`);
} else {
  t.test('the web UI against a live system', async (t) => {
    if (chromiumMissing) {
      t.fail(`Chromium is missing at ${CHROMIUM}; .ci/run installs it (CI=true)`);
      return;
    }
    mkdirSync(ARTIFACTS, { recursive: true });
    const host = sandbox(t);
    const receiver = await startHttpReceiver();
    t.teardown(() => receiver.close());
    const sys = await startSystem(t, { files: manifests(host), alertWebhook: `${receiver.url}/hook` });
    await sys.startAgent('web-01', { role: 'web', env: 'production' });
    await sys.startAgent('db-01', { role: 'db', zone: 'a' });
    const status = await waitFor(
      'both agents connected and the first results in',
      () =>
        sys.get<{ revision: string | null; counts: { agents_connected: number; drifted: number } }>(
          '/api/v1/status',
        ),
      (s) => s.revision !== null && s.counts.agents_connected === 2 && s.counts.drifted >= 1,
      WAIT * 2,
    );
    let revision = status.revision as string;

    const browser: Browser = await chromium.launch({ executablePath: CHROMIUM, args: LAUNCH_ARGS });
    t.teardown(() => browser.close());
    const errors: string[] = [];
    const open = async (viewport: { width: number; height: number }) => {
      const context = await browser.newContext({ viewport });
      const page = await context.newPage();
      page.setDefaultTimeout(WAIT);
      page.on('pageerror', (err) => errors.push(err.message));
      // The page must live within its own Content-Security-Policy (no inline script or style).
      page.on('console', (m) => {
        if (/Content Security Policy/i.test(m.text())) errors.push(m.text());
      });
      return page;
    };
    const page = await open({ width: 1280, height: 900 });
    const shot = (p: Page, name: string) =>
      p.screenshot({ path: join(ARTIFACTS, `${name}.png`), fullPage: true });
    const main = page.locator('main');

    await t.test('the dashboard shows the revision, the agents and recent events', async (t) => {
      await page.goto(sys.url('/'));
      await main.locator('[data-card="Revision"] code').getByText(revision.slice(0, 12)).waitFor();
      t.equal(await page.title(), 'Overview · Fluke');
      t.equal(await page.locator('[data-card="Agents"] .card-value').textContent(), '2 / 2');
      t.match(await page.locator('[data-card="Revision"] code').getAttribute('title'), revision);
      await main.locator('.events li').first().waitFor();
      t.ok((await main.locator('.events li').count()) > 0, 'recent events are listed');
      await shot(page, 'dashboard');
    });

    await t.test('the agents list filters by label', async (t) => {
      await page.getByRole('link', { name: 'Agents', exact: true }).click();
      await main.getByRole('link', { name: 'web-01' }).waitFor();
      await main.getByRole('link', { name: 'db-01' }).waitFor();
      t.match(
        await main.locator('tr', { hasText: 'web-01' }).textContent(),
        /connected.*env=production.*role=web/,
      );
      await shot(page, 'agents');
      await page.getByLabel('Filter by labels').fill('role=db');
      await page.getByRole('button', { name: 'Filter' }).click();
      await page.waitForURL(/#\/agents\?label=role%3Ddb$/);
      await waitFor(
        'the filtered list',
        () => main.locator('tbody tr').allTextContents(),
        (rows) => rows.length === 1 && /db-01/.test(rows[0] ?? ''),
        WAIT,
      );
      t.pass('only db-01 has role=db');
      await page.getByLabel('Filter by labels').fill('nonsense');
      await page.getByRole('button', { name: 'Filter' }).click();
      await main.getByText('"nonsense" is not key=value').waitFor();
    });

    await t.test('an agent page: labels, matched tasks with status, events', async (t) => {
      await page.goto(sys.url('/#/agents/web-01'));
      const tasks = main.locator('section', { has: page.getByRole('heading', { name: 'Tasks' }) });
      await tasks
        .locator('tr', { hasText: 'site' })
        .locator('[data-status="satisfied"], [data-status="applied"]')
        .waitFor();
      await tasks.locator('tr', { hasText: 'slow' }).locator('[data-status="drifted"]').waitFor();
      t.ok(await main.getByText('env=production').isVisible());
      t.ok(await tasks.locator('tr', { hasText: 'slow' }).getByRole('link', { name: 'output' }).isVisible());
      await main.locator('.events li').first().waitFor();
      await shot(page, 'agent');
    });

    await t.test('tasks list and a task page: steps in order, text escaped', async (t) => {
      await page.getByRole('link', { name: 'Tasks', exact: true }).click();
      for (const name of ['site', 'slow', 'schema'])
        await main.getByRole('link', { name, exact: true }).waitFor();
      t.match(await main.locator('tr', { hasText: 'schema' }).textContent(), /role=db.*zone In \(a, b\)/);
      await main.getByRole('link', { name: 'site', exact: true }).click();
      await page.waitForURL(/#\/tasks\/site$/);
      const steps = main.locator('ol.steps > li');
      await steps.first().waitFor();
      t.same(await steps.locator('.step-head strong').allTextContents(), ['index', 'config']);
      t.ok(await steps.nth(0).getByText(`test -f ${host}/index`).isVisible(), 'the check is shown');
      t.ok(
        await steps.nth(1).getByText('APP_MODE=[redacted]').isVisible(),
        'env is shown, its value redacted',
      );
      t.notOk(/APP_MODE=prod/.test((await steps.nth(1).textContent()) ?? ''), 'the env value is not shown');
      const lead = await main.locator('.lead').textContent();
      t.equal(lead, 'Site <b>bold</b> & <img src=x onerror="window.__xss=1">', 'markup shows as text');
      t.equal(await page.evaluate(() => (window as unknown as { __xss?: number }).__xss), undefined);
      t.equal(await main.locator('.lead b, .lead img').count(), 0);
      await main.locator('tr', { hasText: 'web-01' }).waitFor();
      await shot(page, 'task');
    });

    await t.test('drift, and events with filters and paging', async (t) => {
      await page.getByRole('link', { name: 'Drift', exact: true }).click();
      const row = main.locator('tr', { hasText: 'slow' });
      await row.locator('[data-status="drifted"]').waitFor();
      t.match(await row.textContent(), /web-01.*slow.*drifted.*alert only.*drifted: count/);
      await shot(page, 'drift');

      // A drift check that finds the same drift again records nothing (a quiet check), but every
      // new revision is checked and recorded: two commits that touch no manifest give the
      // alert_only task three `drifted` events, enough to page.
      for (let i = 1; i <= 2; i++) {
        revision = await sys.repo.commit({ 'NOTES.md': `revision ${i}\n` });
        await waitFor(
          `event ${i + 1} of web-01 · slow`,
          () => sys.get<{ events: unknown[] }>('/api/v1/events?agent=web-01&task=slow&limit=3'),
          (p) => p.events.length >= i + 1,
          WAIT,
        );
      }
      await waitFor(
        'the last commit in force',
        () => sys.get<{ revision: string | null }>('/api/v1/status'),
        (st) => st.revision === revision,
        WAIT,
      );
      await page.goto(sys.url('/#/events?limit=2'));
      await main.locator('.events li').nth(1).waitFor();
      await page.getByLabel('Agent').fill('web-01');
      await page.getByLabel('Task').fill('slow');
      await page.getByRole('button', { name: 'Filter' }).click();
      await page.waitForURL(/#\/events\?agent=web-01&task=slow&limit=2$/);
      const summaries = () => main.locator('.events summary').allTextContents();
      await waitFor(
        'only web-01 · slow events',
        summaries,
        (s) => s.length === 2 && s.every((line) => /web-01 · slow/.test(line)),
        WAIT,
      );
      const keys = () =>
        main.locator('.events li').evaluateAll((els) => els.map((e) => e.getAttribute('data-key')));
      await main.getByRole('link', { name: 'Older →' }).click();
      await page.waitForURL(/cursor=/);
      // Older pages are stable: the UI must show exactly what the API gives for that cursor.
      const cursor = new URLSearchParams(page.url().split('?')[1]).get('cursor') ?? '';
      const older = await sys.get<{ events: { id: string }[] }>(
        `/api/v1/events?agent=web-01&task=slow&limit=2&cursor=${encodeURIComponent(cursor)}`,
      );
      t.ok(older.events.length > 0, 'there is an older page');
      await waitFor(
        'the older page',
        keys,
        (k) => JSON.stringify(k) === JSON.stringify(older.events.map((e) => e.id)),
        WAIT,
      );
      t.match(await summaries(), [/web-01 · slow/], '"Older" pages on with the cursor, filters kept');

      // The view refreshes itself every few seconds; what the reader opened stays open.
      const opened = main.locator('.events li').first();
      await opened.locator('summary').click();
      await opened.locator('.event-body').getByText('count', { exact: true }).waitFor();
      const key = await opened.getAttribute('data-key');
      await shot(page, 'events');
      const stamp = await page.locator('#updated').textContent();
      await waitFor(
        'a refresh',
        () => page.locator('#updated').textContent(),
        (s) => s !== stamp,
        WAIT,
      );
      t.equal(
        await main.locator(`.events li[data-key="${key}"] details`).getAttribute('open'),
        '',
        'an opened event stays open across refreshes',
      );
      await main.getByRole('link', { name: '← Newest' }).click();
      await page.waitForURL(/#\/events\?agent=web-01&task=slow&limit=2$/);
    });

    await t.test('Reconcile now: token prompt, run progress, live output of a slow task', async (t) => {
      await page.goto(sys.url('/#/agents/web-01'));
      await page.getByRole('button', { name: 'Reconcile now' }).click();
      await page.getByText('API token needed').first().waitFor();
      t.ok(await page.locator('#token-input').isVisible(), 'the token box opens');

      await page.locator('#token-input').fill(API_TOKEN);
      await page.getByRole('button', { name: 'Save' }).click();
      t.equal(await page.evaluate(() => localStorage.getItem('fluke.apiToken')), API_TOKEN);
      await page.getByRole('button', { name: 'Reconcile now' }).click();
      await page.waitForURL(/#\/runs\/[\w-]+$/);
      const runUrl = page.url();
      const output = main.locator('pre.output');
      // If a drift check of `slow` is running when the run arrives, the agent refuses it as busy and
      // the reconcile is put back as a new instruction: the execution first listed never starts.
      // The run page then lists the new one; open the live output again, at most three times.
      let shown = false;
      for (let attempt = 1; attempt <= 3 && !shown; attempt++) {
        if (attempt > 1) await page.goto(runUrl);
        const live = main
          .locator('tr', { hasText: 'slow' })
          .getByRole('link', { name: 'live output' })
          .last();
        await live.waitFor();
        if (attempt === 1) await shot(page, 'run');
        await live.click();
        await page.waitForURL(/#\/executions\//);
        shown = await output
          .getByText('line-1', { exact: true })
          .waitFor({ timeout: 30_000 })
          .then(
            () => true,
            () => false,
          );
      }
      t.ok(shown, 'line-1 of the live output is shown');
      const state = await main.locator('[data-status]').first().textContent();
      const seen = await output.textContent();
      t.match(state, /running/, 'line-1 is on screen while the execution still runs');
      t.notMatch(seen, new RegExp(`line-${SLOW_LINES}\\b`), 'and before its last line');
      await shot(page, 'execution-live');

      await output.getByText(`line-${SLOW_LINES}`, { exact: true }).waitFor();
      const steps = main.locator('section', { has: page.getByRole('heading', { name: 'Steps' }) });
      await steps.locator('tr', { hasText: 'count' }).getByText('applied').waitFor();
      t.match(await main.locator('[data-status]').first().textContent(), /applied/);
      const lines = (await output.textContent())?.match(/^line-\d+$/gm) ?? [];
      t.same(
        lines,
        Array.from({ length: SLOW_LINES }, (_, i) => `line-${i + 1}`),
        'every line once, in order',
      );
      await shot(page, 'execution-done');

      await page.goBack();
      await main.getByText('finished').first().waitFor();
      t.match(await main.locator('.counts').textContent(), /2 succeeded.*0 failed/);
      t.ok(existsSync(join(host, 'slow')), 'the manual reconcile applied the alert_only task');
    });

    await t.test('on a phone: no horizontal overflow, tables become cards', async (t) => {
      const phone = await open({ width: 390, height: 844 });
      for (const [route, name, ready] of [
        ['/', 'phone-dashboard', revision.slice(0, 12)],
        ['/#/agents', 'phone-agents', 'db-01'],
        ['/#/agents/web-01', 'phone-agent', 'env=production'],
        ['/#/tasks/site', 'phone-task', `test -f ${host}/config`],
        ['/#/events', 'phone-events', 'web-01'],
      ] as const) {
        await phone.goto(sys.url(route));
        await phone.locator('main').getByText(ready).first().waitFor();
        t.ok((await noHorizontalOverflow(phone)) <= 390, `${route} fits 390px`);
        await shot(phone, name);
      }
      t.equal(await phone.locator('thead').first().isVisible(), false, 'table headers give way to labels');
      await phone.close();
    });

    await t.test('a server that wants a token for reads: the UI asks for it, then shows data', async (t) => {
      // A second gateway on the same Redis, with reads closed: it serves the same data.
      const [agentsPort, httpPort] = [await freePort(), await freePort()];
      const file = join(sys.dir, 'gateway-read-token.hcl');
      const source = readFileSync(sys.configFile, 'utf8')
        .replace(/listen_agents\s*=\s*"[^"]*"/, `listen_agents = "127.0.0.1:${agentsPort}"`)
        .replace(/listen_http\s*=\s*"[^"]*"/, `listen_http = "127.0.0.1:${httpPort}"`)
        .replace(/(api_tokens\s*=.*\n)/, '$1  api_read_access = "token"\n');
      t.match(source, /api_read_access = "token"/);
      writeFileSync(file, source);
      const gateway = spawnFluke(['gateway', '--config', file]);
      t.teardown(() => gateway.stop('SIGKILL'));
      const base = `http://127.0.0.1:${httpPort}`;
      await waitFor(
        'the gateway',
        async () => (await fetch(`${base}/healthz`)).status,
        (s) => s === 200,
        WAIT,
      ).catch((err: Error) => {
        throw new Error(`${err.message}\ngateway output:\n${gateway.output()}`);
      });
      t.equal((await fetch(`${base}/api/v1/status`)).status, 401, 'reads need a token there');

      const reader = await open({ width: 1280, height: 900 });
      await reader.goto(`${base}/`);
      await reader.locator('main').getByText('API token needed').waitFor();
      t.ok(await reader.locator('#token-input').isVisible(), 'the token box opens by itself');
      await shot(reader, 'read-token-prompt');
      await reader.locator('#token-input').fill(API_TOKEN);
      await reader.getByRole('button', { name: 'Save' }).click();
      await reader.locator('[data-card="Revision"] code').getByText(revision.slice(0, 12)).waitFor();
      t.equal(await reader.locator('main').getByText('API token needed').count(), 0, 'the prompt is gone');
      await reader.goto(`${base}/#/agents/web-01`);
      await reader.locator('main').getByText('env=production').waitFor();
      await reader.close();
    });

    await t.test('a bad commit shows its file:line; the good revision stays', async (t) => {
      await sys.repo.commit({
        'broken.fluke.hcl': 'task "broken" {\n  selector {}\n  shell "x" { command = "true" }\n}\n',
      });
      await page.goto(sys.url('/'));
      await main.getByText('broken.fluke.hcl:3').waitFor();
      t.match(await main.locator('.notice').textContent(), /rejected.*broken\.fluke\.hcl:3.*check/);
      t.match(
        await main.locator('.notice').textContent(),
        new RegExp(`${revision.slice(0, 12)} stays in force`),
      );
      await shot(page, 'dashboard-bad-commit');
    });

    t.same(errors, [], 'no uncaught errors and no CSP violations in the page');
  });
}
