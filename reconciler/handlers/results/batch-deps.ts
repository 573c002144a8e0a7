/**
 * MessageDeps over one AgentBatch's state, for the effects the batch does not apply in memory
 * and for the single-message handler. Reads come from the batch (records, snapshot, labels);
 * statuses, finished tasks, run progress and events are collected for the job's write steps;
 * episodes, alerts and retries are written at once, and the snapshot follows what they did. A
 * result naming another agent's instruction goes straight through to the stores, as the
 * single-message handler would write it.
 */
import { sortAlerts } from '../../../shared/status.js';
import type { AgentSnapshot } from '../../../store/statuses/status-store.js';
import type { AgentBatch, Found } from './agent-batch.js';
import type { MessageDeps, MessageStatuses } from './deps.js';

export function batchDeps(batch: AgentBatch): MessageDeps {
  const base = batch.base;
  const agent = batch.agent;
  const mine = (a: string) => a === agent;
  const snap = () => snapshotOf(batch);
  const statuses: MessageStatuses = {
    setStatus: async (a, status) => {
      if (!mine(a)) return base.statuses.setStatus(a, status);
      await snap();
      batch.statusOut.set(status.task, status);
    },
    getStatus: async (a, task) =>
      mine(a) ? batch.statusOf(await snap(), task) : base.statuses.getStatus(a, task),
    getEpisode: async (a, task) =>
      mine(a) ? ((await snap()).episodes.get(task) ?? null) : base.statuses.getEpisode(a, task),
    openEpisode: async (a, episode) => {
      const opened = await base.statuses.openEpisode(a, episode);
      if (!mine(a)) return opened;
      const s = await snap();
      if (opened) s.episodes.set(episode.task, { ...episode, alerts: [] });
      else {
        const now = await base.statuses.getEpisode(a, episode.task);
        if (now) s.episodes.set(episode.task, now);
        else s.episodes.delete(episode.task);
      }
      return opened;
    },
    markAlerted: async (a, task, episodeId, event) => {
      const claimed = await base.statuses.markAlerted(a, task, episodeId, event);
      if (!mine(a)) return claimed;
      const open = (await snap()).episodes.get(task);
      if (claimed && open && open.id === episodeId && !open.alerts.includes(event)) {
        open.alerts = sortAlerts([...open.alerts, event]);
      }
      return claimed;
    },
    closeEpisode: async (a, task, episodeId) => {
      const closed = await base.statuses.closeEpisode(a, task, episodeId);
      if (closed && mine(a)) (await snap()).episodes.delete(task);
      return closed;
    },
  };
  return {
    ...base,
    now: () => batch.now,
    statuses,
    labelsOf: (a) => (a === agent ? batch.readLabels() : base.labelsOf(a)),
    events: {
      // Written together by resultsHandler, before any status.
      record: async (event) => {
        batch.events.push(event);
        return true;
      },
    },
    runs: {
      // Written after the statuses, as the single-message handler orders them.
      setOutcome: async (run, a, task, outcome) => {
        batch.runOutcomes.push({ run, agent: a, task, outcome });
      },
      setAgentState: base.runs.setAgentState.bind(base.runs),
    },
    instructions: {
      get: (id) => foundOf(batch, id),
      finishTask: async (id, task, outcome) => batch.finishTask(id, await foundOf(batch, id), task, outcome),
      complete: async (id) => batch.complete(id),
    },
  };
}

async function snapshotOf(batch: AgentBatch): Promise<AgentSnapshot> {
  if (!batch.snapshot) {
    batch.snapshotRead ??= batch.base.statuses.snapshot(batch.agent);
    batch.snapshot = await batch.snapshotRead;
  }
  return batch.snapshot;
}

async function foundOf(batch: AgentBatch, id: string): Promise<Found | null> {
  const known = batch.found.get(id);
  if (known !== undefined) return known;
  const found = await batch.base.instructions.get(id);
  // Another message may have read or completed it meanwhile: the first answer stands.
  if (!batch.found.has(id)) batch.found.set(id, found);
  return batch.found.get(id) ?? null;
}
