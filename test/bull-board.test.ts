/**
 * Bull Board at /queues on a real all-in-one server (real Redis, real Git, real queues): the
 * page, its static files and its JSON API; read access as configured (a token-only console
 * challenges with Basic, the token as password); board actions need an API token and the board's
 * own origin, and the board is read-only when reads are open. Plus the adapter's template and
 * route matching on their own, and the page in a real Chromium.
 */
import { existsSync } from 'node:fs';
import t from 'tap';
import { BOARD_CSP, renderBoardTemplate } from '../console/bull-board-adapter.js';
import { waitFor } from '../testkit/system.js';
import { API_TOKEN, basic, startConsoleServices } from './helpers/console-services.js';

interface BoardQueue {
  name: string;
  counts: Record<string, number>;
  readOnlyMode: boolean;
  isPaused: boolean;
}

const QUEUES = ['alerts', 'poll', 'reconcile', 'results'];

async function boardQueues(base: string, authorization?: string): Promise<BoardQueue[]> {
  const res = await fetch(`${base}/queues/api/queues`, authorization ? { headers: { authorization } } : {});
  if (res.status !== 200) throw new Error(`GET /queues/api/queues: ${res.status}`);
  return ((await res.json()) as { queues: BoardQueue[] }).queues;
}

const put = (base: string, path: string, headers: Record<string, string> = {}) =>
  fetch(`${base}${path}`, { method: 'PUT', headers });

t.test('the template is filled safely or not at all', async (t) => {
  const page = renderBoardTemplate(
    '<link href="https://fonts.googleapis.com/css2?x" rel="stylesheet">\n<title><%= title %></title><base href="<%= basePath %>" /><script type="application/json"><%- uiConfig %></script>',
    { title: '<b>"x"</b>', basePath: '/queues/', uiConfig: '{"a":"\\u003c"}' },
  );
  t.equal(
    page,
    '<title>&#60;b&#62;&#34;x&#34;&#60;/b&#62;</title><base href="/queues/" /><script type="application/json">{"a":"\\u003c"}</script>',
    'escaped text, the JSON as given, no third-party font link',
  );
  t.throws(
    () => renderBoardTemplate('<%- title %>', { title: 'x' }),
    /raw title/,
    'raw output only for uiConfig',
  );
  t.throws(() => renderBoardTemplate('<% if (x) { %>', {}), /tags this adapter does not render/);
  t.throws(() => renderBoardTemplate('<%= missing %>', {}), /no value for missing/);
});

t.test('open reads: the board, its files and API are served, and it is read-only', async (t) => {
  const { base } = await startConsoleServices(t, 'open');

  const page = await fetch(`${base}/queues`);
  t.equal(page.status, 200);
  t.match(page.headers.get('content-type'), /^text\/html/);
  t.equal(page.headers.get('content-security-policy'), BOARD_CSP);
  t.equal(page.headers.get('x-frame-options'), 'DENY');
  const html = await page.text();
  t.match(html, '<base href="/queues/" />');
  t.match(html, /"boardTitle":"Fluke queues"/);
  t.notMatch(html, /<%|googleapis/);
  const script = /src="(static\/js\/main\.[^"]+\.js)"/.exec(html)?.[1];
  t.ok(script, 'the page names its script');

  const js = await fetch(`${base}/queues/${script}`);
  t.equal(js.status, 200, 'static files are served');
  t.match(js.headers.get('content-type'), /^text\/javascript/);
  t.ok((await js.arrayBuffer()).byteLength > 1000);
  t.equal((await fetch(`${base}/queues/queue/poll`)).status, 200, 'client-side routes get the page');
  t.equal(
    (await fetch(`${base}/queues/static/%2e%2e/%2e%2e/package.json`)).status,
    404,
    'no way out of static/',
  );
  t.equal((await fetch(`${base}/queues/static/js/nothing.js`)).status, 404);

  // The poll job of start-up completes: the listing carries real counts.
  const queues = await waitFor(
    'a completed poll job',
    () => boardQueues(base),
    (qs) => (qs.find((q) => q.name === 'poll')?.counts.completed ?? 0) >= 1,
  );
  t.same(queues.map((q) => q.name).sort(), QUEUES, 'every Fluke queue');
  t.ok(
    queues.every((q) => q.readOnlyMode),
    'read-only while reads are open',
  );
  t.ok(queues.every((q) => typeof q.counts.waiting === 'number' && typeof q.counts.failed === 'number'));

  const anonymous = await put(base, '/queues/api/queues/alerts/pause');
  t.equal(anonymous.status, 401, 'an action without a token is refused');
  t.match(anonymous.headers.get('www-authenticate'), /^Basic realm="fluke"/);
  t.match(await anonymous.json(), { code: 'unauthorized' });
  t.equal(
    (await put(base, '/queues/api/queues/alerts/pause', { authorization: 'Bearer wrong' })).status,
    403,
  );
  const withToken = await put(base, '/queues/api/queues/alerts/pause', {
    authorization: `Bearer ${API_TOKEN}`,
  });
  t.equal(withToken.status, 405, 'even with a token: the board is read-only');
  t.notOk((await boardQueues(base)).find((q) => q.name === 'alerts')?.isPaused, 'nothing was paused');
});

t.test('token reads: Basic challenge, the token as password, actions from the board only', async (t) => {
  const { base } = await startConsoleServices(t, 'token');
  const auth = basic(API_TOKEN);

  const refused = await fetch(`${base}/queues`);
  t.equal(refused.status, 401, 'no credentials, no board');
  t.equal(refused.headers.get('www-authenticate'), 'Basic realm="fluke", charset="UTF-8"');
  t.equal((await fetch(`${base}/queues/api/queues`)).status, 401, 'nor its API');
  t.equal((await fetch(`${base}/queues/static/favicon.ico`)).status, 401, 'nor its files');
  t.equal(
    (await fetch(`${base}/queues`, { headers: { authorization: basic('not-the-token') } })).status,
    403,
  );

  const page = await fetch(`${base}/queues`, { headers: { authorization: auth } });
  t.equal(page.status, 200, 'Basic with the API token as password');
  t.match(await page.text(), /Fluke queues/);
  const bearer = await boardQueues(base, `Bearer ${API_TOKEN}`);
  t.same(bearer.map((q) => q.name).sort(), QUEUES, 'Bearer works too');
  t.ok(
    bearer.every((q) => !q.readOnlyMode),
    'the board can act when whoever sees it holds a token',
  );

  t.equal((await put(base, '/queues/api/queues/alerts/pause')).status, 401, 'an action without a token');
  const foreign = await put(base, '/queues/api/queues/alerts/pause', {
    authorization: auth,
    origin: 'https://evil.example',
  });
  t.equal(foreign.status, 403, 'an action from another origin (cached Basic credentials)');
  t.match(await foreign.json(), { code: 'cross_site' });
  t.equal(
    (
      await put(base, '/queues/api/queues/alerts/pause', {
        authorization: auth,
        'sec-fetch-site': 'cross-site',
      })
    ).status,
    403,
  );
  t.notOk((await boardQueues(base, auth)).find((q) => q.name === 'alerts')?.isPaused, 'still running');

  const paused = await put(base, '/queues/api/queues/alerts/pause', { authorization: auth });
  t.equal(paused.status, 200, 'a board action with the token');
  t.ok(
    (await boardQueues(base, auth)).find((q) => q.name === 'alerts')?.isPaused,
    'the queue is paused in Redis',
  );
  t.equal((await put(base, '/queues/api/queues/alerts/resume', { authorization: auth })).status, 200);
  t.notOk((await boardQueues(base, auth)).find((q) => q.name === 'alerts')?.isPaused);

  const unknown = await fetch(`${base}/queues/api/queues/nope/1`, { headers: { authorization: auth } });
  t.equal(unknown.status, 404, "bull-board's own errors pass through");
});

const CHROMIUM = '/usr/bin/chromium';
t.test(
  'the board renders in a real browser, under its CSP',
  { skip: !existsSync(CHROMIUM) && 'no Chromium' },
  async (t) => {
    const { base } = await startConsoleServices(t, 'token');
    const { chromium } = await import('playwright-core');
    const browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
    t.teardown(() => browser.close());
    const context = await browser.newContext({ httpCredentials: { username: 'ops', password: API_TOKEN } });
    const page = await context.newPage();
    const problems: string[] = [];
    page.on('console', (m) => {
      if (m.type() === 'error') problems.push(m.text());
    });
    page.on('pageerror', (e) => problems.push(e.message));
    const response = await page.goto(`${base}/queues`);
    t.equal(response?.status(), 200);
    for (const name of QUEUES) {
      await page.getByText(name, { exact: true }).first().waitFor({ timeout: 60_000 });
    }
    t.pass('every queue is listed by the board UI');
    t.same(
      problems.filter((p) => /Content Security Policy|Refused to/i.test(p)),
      [],
      'nothing was blocked by the CSP',
    );
  },
);
