/**
 * The JSON routes of `/api/v1` (docs/api.md). Reads need a token only with
 * `server.api_read_access = "token"`; state changes always need one, a JSON body and POST (no
 * cookies, so no CSRF path). The git webhook is the exception: its signature authenticates it.
 * Route groups live beside this file; this one wires them and holds the small routes.
 */

import { InvalidCursorError } from '../shared/events.js';
import { redactSecrets } from '../shared/redact.js';
import type { DriftPolicy } from '../shared/types.js';
import type { StateStore } from '../store/desired-state/state-store.js';
import type { EventStore } from '../store/events/event-store.js';
import type { Enrollments } from '../store/identity/enrollments.js';
import type { AgentDirectory } from '../store/registry/agent-directory.js';
import type { RunStore, RunTarget } from '../store/runs/run-store.js';
import type { StatusStore } from '../store/statuses/status-store.js';
import { mountAgentRoutes } from './api-agents.js';
import { type ExecutionRouteDeps, mountExecutionRoutes } from './api-executions.js';
import { mountTaskRoutes } from './api-tasks.js';
import { mountWebhookRoutes, type WebhookDeps } from './api-webhooks.js';
import type { ConsoleAuth } from './auth.js';
import { jsonBody } from './json-body.js';
import { DEFAULT_EVENTS_LIMIT, pageOf, parseLimit, parsePageRequest, sortByKey } from './paging.js';
import { readinessCheck } from './readiness.js';
import { HttpError, Router } from './router.js';

export interface ApiDeps {
  auth: ConsoleAuth;
  directory: AgentDirectory;
  statuses: StatusStore;
  events: EventStore;
  state: StateStore;
  /** Enrollment records (release): store/identity/. */
  enrollments: Pick<Enrollments, 'get' | 'release'>;
  runs: Pick<RunStore, 'get'>;
  defaultPolicy: DriftPolicy;
  /** Creates the run and enqueues its fan-out; returns the run id. */
  requestReconcile(target: RunTarget): Promise<string>;
  /** Is Redis answering? */
  ping(): Promise<boolean>;
  /** The eviction-policy problem last found, or null (readiness.ts). */
  evictionProblem?: () => string | null;
  executions: Omit<ExecutionRouteDeps, 'auth'>;
  webhook: WebhookDeps;
}

const API = '/api/v1';

function parseTarget(body: unknown): RunTarget {
  const b = (body ?? {}) as { target?: unknown; name?: unknown };
  if (b.target === 'all') return { target: 'all' };
  if (b.target === 'agent' || b.target === 'task') {
    if (typeof b.name !== 'string' || b.name.length === 0) {
      throw new HttpError(400, 'bad_request', `target "${b.target}" needs a "name"`);
    }
    return { target: b.target, name: b.name };
  }
  throw new HttpError(400, 'bad_request', 'target must be "all", "agent" or "task"');
}

/** Written by the poll already redacted (shared/redact.ts); redacted again for anything older. */
function safeLastError<T extends { message: string }>(e: T | null): T | null {
  return e && { ...e, message: redactSecrets(e.message) };
}

/** Mounts every API route on `router` (other console parts mount theirs on the same router). */
export function createApiRouter(deps: ApiDeps, router = new Router()): Router {
  const { auth } = deps;

  router.get('/healthz', () => ({ status: 200, json: { ok: true } }));
  const notReady = readinessCheck({
    ping: deps.ping,
    ...(deps.evictionProblem ? { evictionProblem: deps.evictionProblem } : {}),
  });
  router.get('/readyz', async () => {
    const reason = await notReady();
    if (reason === null) return { status: 200, json: { ok: true, ready: true } };
    return { status: 503, json: { ready: false, reason, error: reason, code: 'not_ready' } };
  });

  mountAgentRoutes(router, deps);
  mountTaskRoutes(router, deps);
  mountExecutionRoutes(router, { ...deps.executions, auth });
  mountWebhookRoutes(router, deps.webhook);

  router.get(`${API}/drift`, async (req) => {
    auth.requireRead(req.headers);
    const page = parsePageRequest(req.query);
    const keyOf = (p: { agent: string; status: { task: string } }) => `${p.agent}\u0000${p.status.task}`;
    const problems = sortByKey(await deps.statuses.listProblems(), keyOf);
    const { items, next_cursor } = pageOf(problems, keyOf, page);
    return {
      status: 200,
      json: { drift: items.map((p) => ({ agent: p.agent, ...p.status })), next_cursor },
    };
  });

  router.get(`${API}/events`, async (req) => {
    auth.requireRead(req.headers);
    const limit = parseLimit(req.query, DEFAULT_EVENTS_LIMIT);
    try {
      const page = await deps.events.query({
        agent: req.query.get('agent') ?? undefined,
        task: req.query.get('task') ?? undefined,
        limit,
        before: req.query.get('cursor'),
      });
      return { status: 200, json: page };
    } catch (err) {
      if (err instanceof InvalidCursorError) throw new HttpError(400, 'invalid_cursor', err.message);
      throw err;
    }
  });

  router.get(`${API}/status`, async (req) => {
    auth.requireRead(req.headers);
    const [status, agents, known, problems] = await Promise.all([
      deps.state.status(),
      deps.directory.names(),
      deps.directory.known(),
      deps.statuses.listProblems(),
    ]);
    const drifted = problems.filter((p) => p.status.outcome === 'drifted').length;
    return {
      status: 200,
      json: {
        ...status,
        last_error: safeLastError(status.last_error),
        counts: {
          agents_connected: agents.length,
          agents_known: new Set([...agents, ...known.keys()]).size,
          tasks: status.task_count,
          drifted,
          failing: problems.length - drifted,
        },
      },
    };
  });

  router.post(`${API}/reconcile`, async (req) => {
    auth.requireWrite(req.headers);
    const target = parseTarget(jsonBody(req));
    if (target.target === 'agent') {
      const [entry, known] = await Promise.all([deps.directory.get(target.name), deps.directory.known()]);
      if (!entry && !known.has(target.name))
        throw new HttpError(404, 'not_found', `no agent "${target.name}"`);
    } else if (target.target === 'task') {
      const current = await deps.state.current();
      if (!current?.state.tasks.some((t) => t.name === target.name)) {
        throw new HttpError(404, 'not_found', `no task "${target.name}" in the current desired state`);
      }
    }
    const id = await deps.requestReconcile(target);
    return { status: 202, json: { id, status_url: `${API}/reconcile/${id}` } };
  });

  router.get(`${API}/reconcile/:id`, async (req) => {
    auth.requireRead(req.headers);
    const progress = await deps.runs.get(req.params.id as string);
    if (!progress) throw new HttpError(404, 'not_found', `no reconcile "${req.params.id}"`);
    return { status: 200, json: progress };
  });

  return router;
}
