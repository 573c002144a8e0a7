/**
 * `GET /api/v1/tasks` (paged by name) and `GET /api/v1/tasks/{name}`: the desired state in force,
 * with the connected agents each task matches and their statuses. Statuses are read only for
 * agents that match a task on the page, side by side (pipelined by the API's client).
 */

import { redactTask } from '../shared/redact.js';
import { matches } from '../shared/selector.js';
import type { TaskStatus } from '../shared/status.js';
import type { DriftPolicy } from '../shared/types.js';
import type { StateStore } from '../store/desired-state/state-store.js';
import type { AgentDirectory } from '../store/registry/agent-directory.js';
import type { StatusStore } from '../store/statuses/status-store.js';
import type { ConsoleAuth } from './auth.js';
import { pageOf, parsePageRequest, sortByKey } from './paging.js';
import { HttpError, type Router } from './router.js';
import { taskSummary } from './views.js';

export interface TaskRouteDeps {
  auth: ConsoleAuth;
  directory: AgentDirectory;
  statuses: StatusStore;
  state: StateStore;
  defaultPolicy: DriftPolicy;
}

const API = '/api/v1';

async function statusMap(statuses: StatusStore, agents: string[]) {
  const lists = await Promise.all(agents.map((a) => statuses.listStatuses(a)));
  const map = new Map<string, Map<string, TaskStatus>>();
  agents.forEach((a, i) => {
    map.set(a, new Map((lists[i] ?? []).map((s) => [s.task, s])));
  });
  return map;
}

export function mountTaskRoutes(router: Router, deps: TaskRouteDeps): void {
  router.get(`${API}/tasks`, async (req) => {
    deps.auth.requireRead(req.headers);
    const page = parsePageRequest(req.query);
    const [current, agents] = await Promise.all([deps.state.current(), deps.directory.list()]);
    const { items, next_cursor } = pageOf(
      sortByKey(current?.state.tasks ?? [], (t) => t.name),
      (t) => t.name,
      page,
    );
    const relevant = agents.filter((a) => items.some((t) => matches(a.labels, t.selector)));
    const statuses = await statusMap(
      deps.statuses,
      relevant.map((a) => a.name),
    );
    const tasks = items.map((t) =>
      taskSummary(t, deps.defaultPolicy, agents, (a, task) => statuses.get(a)?.get(task)),
    );
    return { status: 200, json: { revision: current?.revision ?? null, tasks, next_cursor } };
  });

  router.get(`${API}/tasks/:name`, async (req) => {
    deps.auth.requireRead(req.headers);
    const current = await deps.state.current();
    const task = current?.state.tasks.find((t) => t.name === req.params.name);
    if (!task) throw new HttpError(404, 'not_found', `no task "${req.params.name}"`);
    const agents = await deps.directory.list();
    const matched = agents.filter((a) => matches(a.labels, task.selector));
    const statuses = await Promise.all(matched.map((a) => deps.statuses.getStatus(a.name, task.name)));
    const byAgent = new Map(matched.map((a, i) => [a.name, statuses[i] ?? undefined]));
    const summary = taskSummary(task, deps.defaultPolicy, matched, (a) => byAgent.get(a));
    return {
      status: 200,
      json: {
        task: {
          // Env values and sensitive fields never leave through the API (docs/security.md).
          ...redactTask(task),
          ...summary,
          steps: redactTask(task).steps,
          agents: matched.map((a) => ({
            name: a.name,
            connected: true,
            status: byAgent.get(a.name) ?? null,
          })),
        },
      },
    };
  });
}
