/**
 * Bull Board at `/queues` on listen_http, over every Fluke BullMQ queue (store/queues/board.ts
 * builds the board's view of them).
 *
 * Who may do what:
 * - Everything under /queues needs what the API's reads need (`server.api_read_access`); a missing
 *   token is a 401 with a Basic challenge, so a browser prompts (any user, the API token as
 *   password).
 * - Board actions (retry, promote, clean, pause, add, obliterate…) change state: they need an API
 *   token, as `POST /api/v1/reconcile` does, and must come from the board's own origin.
 * - When reads are open, the board is also read-only (`readOnlyMode`): an anonymous viewer sees
 *   no action buttons, and even a token holder cannot act through it. Full control needs
 *   `api_read_access = "token"`, where whoever sees the board has presented an API token already.
 */
import { createRequire } from 'node:module';
import { dirname } from 'node:path';
import { createBullBoard } from '@bull-board/api';
import type { Logger } from 'pino';
import type { BoardQueue } from '../store/queues/board.js';
import type { ConsoleAuth } from './auth.js';
import { UwsBoardAdapter } from './bull-board-adapter.js';
import { authorize } from './challenge.js';
import { type GuardOptions, hostAllowed, hostPart, originMatches } from './http-guard.js';
import { errorBody, type Handler, type HttpRequest, type HttpResponse, type Router } from './router.js';

export interface BullBoardOptions {
  /** The queues as the board shows them, read-only or not. */
  queues: (readOnlyMode: boolean) => readonly BoardQueue[];
  auth: ConsoleAuth;
  /** The Host allowlist and TLS flag: an action's Origin must be this server as allowed. */
  guard: GuardOptions;
  logger: Logger;
  /** Default `/queues`. */
  basePath?: string;
}

const WRITE_METHODS = ['POST', 'PUT', 'PATCH', 'DELETE'];

/**
 * Browsers send cached Basic credentials on cross-site requests too: refuse an action whose
 * Origin is another site, or that a browser marks cross-site. Non-browser clients send neither.
 * The Origin is checked against the Host allowlist, never against the Host header alone: under
 * DNS rebinding the attacker's page sends its own name as both.
 */
export function crossSiteRefusal(
  req: Pick<HttpRequest, 'headers' | 'body'>,
  guard: GuardOptions,
): HttpResponse | null {
  const site = req.headers['sec-fetch-site'];
  const origin = req.headers.origin;
  const host = req.headers.host ?? '';
  let foreign = site !== undefined && site !== 'same-origin';
  if (origin !== undefined) foreign ||= !originMatches(origin, host, guard.policy, guard.tls);
  // Without an Origin the Host must still be allowed (the router's guard checks it too).
  const name = hostPart(host);
  foreign ||= name === null || !hostAllowed(guard.policy, name);
  if (foreign)
    return { status: 403, json: errorBody('cross_site', 'board actions must come from the board itself') };
  const type = (req.headers['content-type'] ?? '').split(';')[0]?.trim().toLowerCase();
  if (req.body && req.body.length > 0 && type !== 'application/json')
    return { status: 415, json: errorBody('unsupported_media_type', 'send Content-Type: application/json') };
  return null;
}

export function mountBullBoard(router: Router, o: BullBoardOptions): Router {
  const basePath = o.basePath ?? '/queues';
  const adapter = new UwsBoardAdapter(basePath);
  const readOnlyMode = o.auth.readAccess === 'open';
  createBullBoard({
    queues: o.queues(readOnlyMode),
    serverAdapter: adapter,
    options: {
      uiBasePath: dirname(createRequire(import.meta.url).resolve('@bull-board/ui/package.json')),
      uiConfig: {
        boardTitle: 'Fluke queues',
        miscLinks: [{ text: 'Fluke console', url: '/' }],
        hideDocsLink: true,
      },
    },
  });
  const log = o.logger.child({ component: 'bull-board' });
  const handler: Handler = async (req) => {
    const write = WRITE_METHODS.includes(req.method);
    const refused =
      authorize((h) => (write ? o.auth.requireWrite(h) : o.auth.requireRead(h)), req) ??
      (write ? crossSiteRefusal(req, o.guard) : null);
    if (refused) {
      if (write)
        log.warn({ method: req.method, path: req.path, status: refused.status }, 'board action refused');
      return refused;
    }
    const response = await adapter.handle(req);
    // An audit line per action: who acted is not known (tokens are not named), what and when is.
    if (write) log.info({ method: req.method, path: req.path, status: response.status }, 'board action');
    return response;
  };
  for (const method of ['GET', ...WRITE_METHODS]) router.add(method, `${basePath}/*`, handler);
  return router;
}
