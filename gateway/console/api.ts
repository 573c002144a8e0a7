/**
 * The JSON routes of `/api/v1` (SPEC.md "HTTP API"). Reads are open; state changes need an API
 * token in `Authorization: Bearer`, a JSON body and POST — no cookies, so no CSRF path.
 */

import type { AgentDirectory } from '../../reconciler/agent-directory.js';
import type { EventStore } from '../../reconciler/event-store/event-store.js';
import type { RunStore, RunTarget } from '../../reconciler/run-store.js';
import type { StateStore } from '../../reconciler/state-store.js';
import type { StatusStore } from '../../reconciler/status-store/status-store.js';
import { bearerToken, createTokenVerifier } from '../../shared/auth.js';
import { clampLimit, InvalidCursorError } from '../../shared/events.js';
import { tasksForAgent } from '../../shared/plan.js';
import type { TaskStatus } from '../../shared/status.js';
import type { DriftPolicy } from '../../shared/types.js';
import { HttpError, type HttpRequest, Router } from './router.js';
import { agentView, hasLabels, parseLabelFilters, taskSummary } from './views.js';

export interface ApiDeps {
  directory: AgentDirectory;
  statuses: StatusStore;
  events: EventStore;
  state: StateStore;
  runs: RunStore;
  defaultPolicy: DriftPolicy;
  apiTokens: readonly string[];
  /** Creates the run and enqueues its fan-out; returns the run id. */
  requestReconcile(target: RunTarget): Promise<string>;
  /** Is Redis answering? */
  ping(): Promise<boolean>;
}

const API = '/api/v1';

export function requireToken(
  verify: (t: string | null) => unknown,
  hasTokens: boolean,
  req: HttpRequest,
): void {
  if (!hasTokens)
    throw new HttpError(403, 'api_read_only', 'no api_tokens are configured: the API is read-only');
  const token = bearerToken(req.headers.authorization);
  if (!token) throw new HttpError(401, 'unauthorized', 'missing Authorization: Bearer <api token>');
  if (!verify(token)) throw new HttpError(403, 'forbidden', 'API token refused');
}

export function jsonBody(req: HttpRequest): unknown {
  const type = (req.headers['content-type'] ?? '').split(';')[0]?.trim().toLowerCase();
  if (type !== 'application/json')
    throw new HttpError(415, 'unsupported_media_type', 'send Content-Type: application/json');
  try {
    return JSON.parse(req.body?.toString('utf8') ?? '');
  } catch {
    throw new HttpError(400, 'bad_json', 'request body is not valid JSON');
  }
}

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

export function createApiRouter(deps: ApiDeps, router = new Router()): Router {
  const verifyApi = createTokenVerifier({ agent_tokens: deps.apiTokens, scoped_agent_tokens: [] });
  const statusMap = async (agents: string[]) => {
    const map = new Map<string, Map<string, TaskStatus>>();
    await Promise.all(
      agents.map(async (a) =>
        map.set(a, new Map((await deps.statuses.listStatuses(a)).map((s) => [s.task, s]))),
      ),
    );
    return map;
  };

  router.get('/healthz', () => ({ status: 200, json: { ok: true } }));
  router.get('/readyz', async () => {
    const ok = await deps.ping().catch(() => false);
    return {
      status: ok ? 200 : 503,
      json: ok ? { ok: true } : { error: 'redis unreachable', code: 'not_ready' },
    };
  });

  router.get(`${API}/agents`, async (req) => {
    const filter = parseLabelFilters(req.query.getAll('label'));
    if (typeof filter === 'string') throw new HttpError(400, 'bad_request', filter);
    const [entries, known, current] = await Promise.all([
      deps.directory.list(),
      deps.directory.known(),
      deps.state.current(),
    ]);
    const connected = new Map(entries.map((e) => [e.name, e]));
    const names = [...new Set([...connected.keys(), ...known.keys()])].sort();
    const views = await Promise.all(
      names.map(async (n) =>
        agentView(
          n,
          connected.get(n) ?? null,
          known.get(n) ?? null,
          current?.state ?? null,
          await deps.statuses.listStatuses(n),
        ),
      ),
    );
    return { status: 200, json: { agents: views.filter((v) => hasLabels(v.labels, filter)) } };
  });

  router.get(`${API}/agents/:name`, async (req) => {
    const name = req.params.name as string;
    const [entry, known, current, statuses] = await Promise.all([
      deps.directory.get(name),
      deps.directory.known(),
      deps.state.current(),
      deps.statuses.listStatuses(name),
    ]);
    if (!entry && !known.has(name) && statuses.length === 0)
      throw new HttpError(404, 'not_found', `no agent "${name}"`);
    const view = agentView(name, entry, known.get(name) ?? null, current?.state ?? null, statuses);
    const byTask = new Map(statuses.map((s) => [s.task, s]));
    const matched =
      entry && current ? tasksForAgent(entry.labels, current.state).map((t) => t.name) : [...byTask.keys()];
    const events = await deps.events.query({ agent: name, limit: 20 });
    return {
      status: 200,
      json: {
        agent: {
          ...view,
          tasks: matched.map((task) => ({ task, status: byTask.get(task) ?? null })),
          events: events.events,
        },
      },
    };
  });

  router.get(`${API}/tasks`, async () => {
    const [current, agents] = await Promise.all([deps.state.current(), deps.directory.list()]);
    const statuses = await statusMap(agents.map((a) => a.name));
    const tasks = (current?.state.tasks ?? []).map((t) =>
      taskSummary(t, deps.defaultPolicy, agents, (a, task) => statuses.get(a)?.get(task)),
    );
    return { status: 200, json: { revision: current?.revision ?? null, tasks } };
  });

  router.get(`${API}/tasks/:name`, async (req) => {
    const current = await deps.state.current();
    const task = current?.state.tasks.find((t) => t.name === req.params.name);
    if (!task) throw new HttpError(404, 'not_found', `no task "${req.params.name}"`);
    const agents = await deps.directory.list();
    const statuses = await statusMap(agents.map((a) => a.name));
    const summary = taskSummary(task, deps.defaultPolicy, agents, (a, t) => statuses.get(a)?.get(t));
    const matched = agents.filter((a) => tasksForAgent(a.labels, { tasks: [task] }).length > 0);
    return {
      status: 200,
      json: {
        task: {
          ...task,
          ...summary,
          steps: task.steps,
          agents: matched.map((a) => ({
            name: a.name,
            connected: true,
            status: statuses.get(a.name)?.get(task.name) ?? null,
          })),
        },
      },
    };
  });

  router.get(`${API}/drift`, async () => {
    const problems = await deps.statuses.listProblems();
    return { status: 200, json: { drift: problems.map((p) => ({ agent: p.agent, ...p.status })) } };
  });

  router.get(`${API}/events`, async (req) => {
    const limit = clampLimit(Number(req.query.get('limit') ?? 20));
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

  router.get(`${API}/status`, async () => {
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
    requireToken(verifyApi, deps.apiTokens.length > 0, req);
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
    const progress = await deps.runs.get(req.params.id as string);
    if (!progress) throw new HttpError(404, 'not_found', `no reconcile "${req.params.id}"`);
    return { status: 200, json: progress };
  });

  return router;
}
