/**
 * `GET /api/v1/agents` (paged by name, `label=k=v` filters), `GET /api/v1/agents/{name}` and
 * `DELETE /api/v1/agents/{name}/enrollment` (release a name so another identity may enroll it).
 * A page reads only its own agents' registry entries, remembered labels (one HMGET) and statuses,
 * issued side by side: the API's Redis client pipelines them into one round trip per kind.
 */

import { tasksForAgent } from '../shared/plan.js';
import type { RegistryEntry } from '../shared/registry-entry.js';
import type { Labels } from '../shared/types.js';
import type { StateStore } from '../store/desired-state/state-store.js';
import type { EventStore } from '../store/events/event-store.js';
import type { Enrollments } from '../store/identity/enrollments.js';
import type { AgentDirectory } from '../store/registry/agent-directory.js';
import type { StatusStore } from '../store/statuses/status-store.js';
import type { ConsoleAuth } from './auth.js';
import { compareKeys, encodePageCursor, firstAfter, type PageRequest, parsePageRequest } from './paging.js';
import { HttpError, type Router } from './router.js';
import { agentView, hasLabels, parseLabelFilters } from './views.js';

export interface AgentRouteDeps {
  auth: ConsoleAuth;
  directory: AgentDirectory;
  statuses: StatusStore;
  events: EventStore;
  state: StateStore;
  enrollments: Pick<Enrollments, 'get' | 'release'>;
}

const API = '/api/v1';
/** Registry entries read per round trip while a label filter skips agents. */
const SCAN_CHUNK = 200;

interface Picked {
  name: string;
  entry: RegistryEntry | null;
  /** The labels it last declared, if known: what a disconnected agent is shown and filtered by. */
  labels: Labels | null;
}

interface Readers {
  get(name: string): Promise<RegistryEntry | null>;
  knownLabels(names: readonly string[]): Promise<Map<string, Labels>>;
}

/**
 * Walks the sorted names after the cursor, reading registry entries and remembered labels a chunk
 * at a time, until the page holds `limit` agents that pass the filter. Names in the connection
 * index whose entry expired and that are not known either are skipped, as they are gone.
 */
async function pickAgents(
  names: readonly string[],
  known: ReadonlyMap<string, number>,
  filter: Labels,
  page: PageRequest,
  read: Readers,
): Promise<{ picked: Picked[]; more: boolean }> {
  const filtering = Object.keys(filter).length > 0;
  const picked: Picked[] = [];
  let i = firstAfter(names, page.after);
  while (i < names.length && picked.length < page.limit) {
    const want = page.limit - picked.length;
    const chunk = names.slice(i, i + (filtering ? Math.max(want, SCAN_CHUNK) : want));
    // Side by side, so the labels cost no extra round trip; only known names can have any.
    const [entries, remembered] = await Promise.all([
      Promise.all(chunk.map((n) => read.get(n))),
      read.knownLabels(chunk.filter((n) => known.has(n))),
    ]);
    for (let j = 0; j < chunk.length && picked.length < page.limit; j++, i++) {
      const name = chunk[j] as string;
      const entry = entries[j] ?? null;
      if (!entry && !known.has(name)) continue;
      const labels = remembered.get(name) ?? null;
      if (hasLabels(entry?.labels ?? labels ?? {}, filter)) picked.push({ name, entry, labels });
    }
  }
  return { picked, more: i < names.length };
}

export function mountAgentRoutes(router: Router, deps: AgentRouteDeps): void {
  // The holder's session, if any, is left alone: its next registration claims the name again.
  router.add('DELETE', `${API}/agents/:name/enrollment`, async (req) => {
    deps.auth.requireWrite(req.headers);
    const name = req.params.name as string;
    const record = await deps.enrollments.get(name);
    const released = await deps.enrollments.release(name);
    return {
      status: 200,
      json: {
        name,
        released,
        identity: released ? (record?.identity ?? null) : null,
        grant: released ? (record?.grant ?? null) : null,
      },
    };
  });

  router.get(`${API}/agents`, async (req) => {
    deps.auth.requireRead(req.headers);
    const filter = parseLabelFilters(req.query.getAll('label'));
    if (typeof filter === 'string') throw new HttpError(400, 'bad_request', filter);
    const page = parsePageRequest(req.query);
    const [connected, known, current] = await Promise.all([
      deps.directory.names(),
      deps.directory.known(),
      deps.state.current(),
    ]);
    const names = [...new Set([...connected, ...known.keys()])].sort(compareKeys);
    const { picked, more } = await pickAgents(names, known, filter, page, deps.directory);
    const statuses = await Promise.all(picked.map((p) => deps.statuses.listStatuses(p.name)));
    const agents = picked.map((p, i) =>
      agentView(
        p.name,
        p.entry,
        { last_seen: known.get(p.name) ?? null, labels: p.labels },
        current?.state ?? null,
        statuses[i] ?? [],
      ),
    );
    const last = picked[picked.length - 1];
    return {
      status: 200,
      json: { agents, next_cursor: more && last ? encodePageCursor(last.name) : null },
    };
  });

  router.get(`${API}/agents/:name`, async (req) => {
    deps.auth.requireRead(req.headers);
    const name = req.params.name as string;
    const [entry, known, labels, current, statuses] = await Promise.all([
      deps.directory.get(name),
      deps.directory.known(),
      deps.directory.knownLabels([name]),
      deps.state.current(),
      deps.statuses.listStatuses(name),
    ]);
    if (!entry && !known.has(name) && statuses.length === 0)
      throw new HttpError(404, 'not_found', `no agent "${name}"`);
    // known() prunes alongside this HMGET, so a name it just dropped may still show labels: known decides.
    const remembered = known.has(name) ? (labels.get(name) ?? null) : null;
    const view = agentView(
      name,
      entry,
      { last_seen: known.get(name) ?? null, labels: remembered },
      current?.state ?? null,
      statuses,
    );
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
}
