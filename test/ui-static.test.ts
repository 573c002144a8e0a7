/**
 * The web UI's static files: what is served, with which headers, and that nothing outside the
 * folder ever is. Plus a parse check of every browser module and of its imports, so a broken
 * module graph fails here before it fails in a browser.
 */

import uWS from 'uWebSockets.js';
import { execFile } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import pino from 'pino';
import t from 'tap';
import { mountRouter } from '../console/http-server.js';
import { type HttpResponse, Router } from '../console/router.js';
import { defaultUiDir, loadStaticFiles, mountUi, UI_CSP } from '../console/static.js';
import { root } from '../testkit/system.js';

const run = promisify(execFile);
const UI = join(root, 'console', 'ui');

async function get(
  router: Router,
  path: string,
  headers: Record<string, string> = {},
): Promise<HttpResponse> {
  const found = router.match('GET', path);
  if (found === 'not_found') return { status: 404 };
  if (found === 'method_not_allowed') return { status: 405 };
  return found.handler({
    method: 'GET',
    path,
    query: new URLSearchParams(),
    params: found.params,
    headers,
    body: null,
  });
}

t.test('the UI folder is found from source and from dist/', async (t) => {
  t.equal(defaultUiDir(), UI);
  t.ok(existsSync(join(defaultUiDir(), 'index.html')));
  // The server runs from dist/, which holds no copy of the folder: it must resolve to the same one.
  const built = join(root, 'dist', 'console', 'static.js');
  if (!existsSync(built)) {
    t.fail('dist/ is not built: run `npm run build` first');
    return;
  }
  const { stdout } = await run(
    process.execPath,
    [
      '--input-type=module',
      '-e',
      `import(${JSON.stringify(built)}).then((m) => console.log(m.defaultUiDir()))`,
    ],
    { cwd: tmpdir() },
  );
  t.equal(stdout.trim(), UI);
});

t.test('/ is index.html and /ui/<file> the assets, with types, ETag and no-cache', async (t) => {
  const router = mountUi(new Router());
  const index = await get(router, '/');
  t.equal(index.status, 200);
  t.match(index.headers, {
    'content-type': 'text/html; charset=utf-8',
    'cache-control': 'no-cache',
    'x-content-type-options': 'nosniff',
    'content-security-policy': UI_CSP,
  });
  t.match(String(index.raw), /<script type="module" src="\/ui\/app.js">/);
  for (const [file, type] of [
    ['app.js', 'text/javascript; charset=utf-8'],
    ['style.css', 'text/css; charset=utf-8'],
    ['favicon.svg', 'image/svg+xml'],
  ] as const) {
    const res = await get(router, `/ui/${file}`);
    t.equal(res.status, 200, file);
    t.equal(res.headers?.['content-type'], type, `${file} type`);
    t.same(res.raw, readFileSync(join(UI, file)), `${file} body`);
  }
  const etag = index.headers?.etag ?? '';
  t.match(etag, /^"[\w-]+"$/);
  const again = await get(router, '/', { 'if-none-match': etag });
  t.equal(again.status, 304, 'a matching If-None-Match revalidates without a body');
  t.equal(again.raw, '');
  t.equal(
    (await get(router, '/', { 'if-none-match': `"other", W/${etag}` })).status,
    304,
    'lists and weak tags',
  );
  t.equal((await get(router, '/', { 'if-none-match': '"other"' })).status, 200);
});

t.test('only files of the folder itself: traversal, sub-paths and unknown names are 404', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'fluke-ui-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(join(dir, 'index.html'), '<!doctype html><title>x</title>');
  writeFileSync(join(dir, 'a.js'), 'export {};');
  writeFileSync(join(dir, 'notes.md'), 'not a served type');
  writeFileSync(join(dir, '.hidden.js'), 'secret');
  mkdirSync(join(dir, 'sub'));
  writeFileSync(join(dir, 'sub', 'b.js'), 'export {};');
  writeFileSync(join(dir, '..', `${dir.split('/').pop()}-outside.js`), 'outside');
  t.teardown(() => rmSync(join(dir, '..', `${dir.split('/').pop()}-outside.js`), { force: true }));

  t.same([...loadStaticFiles(dir).keys()].sort(), ['a.js', 'index.html']);
  const router = mountUi(new Router(), { dir });
  t.equal((await get(router, '/ui/a.js')).status, 200);
  for (const path of [
    '/ui/notes.md',
    '/ui/.hidden.js',
    '/ui/sub/b.js',
    '/ui/sub',
    '/ui/..%2Fpackage.json',
    '/ui/%2e%2e%2fpackage.json',
    `/ui/..%2F${dir.split('/').pop()}-outside.js`,
    '/ui/../package.json',
    '/ui/',
    '/ui/%zz',
    '/index.html',
    '/package.json',
  ]) {
    const res = await get(router, path);
    t.equal(res.status, 404, path);
  }
});

t.test('a missing folder does not break the API: / answers 404 JSON', async (t) => {
  const router = mountUi(new Router(), {
    dir: join(tmpdir(), 'fluke-no-such-ui-dir'),
    logger: pino({ level: 'silent' }),
  });
  const res = await get(router, '/');
  t.equal(res.status, 404);
  t.match(res.json, { code: 'not_found' });
});

t.test('over real HTTP (uWS): headers, HEAD, 304 and the API routes untouched', async (t) => {
  const router = new Router().get('/api/v1/status', () => ({ status: 200, json: { ok: true } }));
  mountUi(router);
  const app = uWS.App();
  mountRouter(app, { router, maxBodyBytes: 1024, logger: pino({ level: 'silent' }) });
  const socket = await new Promise<uWS.us_listen_socket>((resolve, reject) =>
    app.listen('127.0.0.1', 0, (s) => (s ? resolve(s) : reject(new Error('listen failed')))),
  );
  t.teardown(() => uWS.us_listen_socket_close(socket));
  const base = `http://127.0.0.1:${uWS.us_socket_local_port(socket)}`;

  const page = await fetch(`${base}/`);
  t.equal(page.status, 200);
  t.equal(page.headers.get('content-type'), 'text/html; charset=utf-8');
  t.equal(page.headers.get('content-security-policy'), UI_CSP);
  t.equal(page.headers.get('x-frame-options'), 'DENY');
  t.match(await page.text(), /<title>Fluke<\/title>/);
  const etag = page.headers.get('etag') ?? '';
  const cached = await fetch(`${base}/`, { headers: { 'if-none-match': etag } });
  t.equal(cached.status, 304);
  const js = await fetch(`${base}/ui/app.js`);
  t.equal(js.headers.get('content-type'), 'text/javascript; charset=utf-8');
  t.equal(js.headers.get('cache-control'), 'no-cache');
  t.equal((await fetch(`${base}/ui/nope.js`)).status, 404);
  t.equal((await fetch(`${base}/ui/..%2F..%2Fpackage.json`)).status, 404);
  t.same(await (await fetch(`${base}/api/v1/status`)).json(), { ok: true });
  t.equal((await fetch(`${base}/`, { method: 'POST' })).status, 405);
});

t.test('every browser module parses, and every relative import names a file of the folder', async (t) => {
  const files = readdirSync(UI).filter((f) => f.endsWith('.js'));
  t.ok(files.includes('app.js'));
  for (const file of files) {
    // package.json says "type": "module", so node checks these as ES modules.
    await t.resolves(run(process.execPath, ['--check', join(UI, file)]), `${file} parses`);
    const source = readFileSync(join(UI, file), 'utf8');
    for (const m of source.matchAll(/^\s*(?:import|export)\s[^'"]*from\s+'([^']+)'/gm)) {
      const spec = m[1] ?? '';
      t.match(spec, /^\.\/[\w-]+\.js$/, `${file} imports ${spec} from the same folder (no bundler, no CDN)`);
      t.ok(files.includes(spec.slice(2)), `${file} → ${spec} exists`);
    }
    // Named imports must be exported by their module: a missing one stops the whole app at load.
    for (const m of source.matchAll(/^\s*import\s*\{([^}]*)\}\s*from\s+'\.\/([\w-]+\.js)'/gm)) {
      const target = readFileSync(join(UI, m[2] ?? ''), 'utf8');
      for (const raw of (m[1] ?? '').split(',')) {
        const name = raw
          .trim()
          .split(/\s+as\s+/)[0]
          ?.trim();
        if (!name) continue;
        const exported = new RegExp(
          `^export\\s+(?:async\\s+)?(?:function\\*?|const|let|class)\\s+${name}\\b`,
          'm',
        );
        t.match(target, exported, `${file} imports ${name}, which ${m[2]} exports`);
      }
    }
    t.notMatch(
      source,
      /\.innerHTML\s*=|insertAdjacentHTML|outerHTML\s*=|document\.write/,
      `${file} writes no HTML`,
    );
  }
});
