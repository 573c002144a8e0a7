/**
 * What the reconciler handler tests (test/handler-*.test.ts) share: the clock, literal manifests,
 * instruction records, and the results world (the in-memory stores the result handler runs on).
 */
import { type ResultDeps, resultHandler } from '../../reconciler/handlers/result.js';
import type { Alert } from '../../shared/alerts.js';
import type { FlukeEvent } from '../../shared/events.js';
import type { ReconcileAgentJob, ResultJob } from '../../shared/jobs/payloads.js';
import { ManifestCompiler } from '../../shared/manifest/compile.js';
import type { PlannedTask, Trigger } from '../../shared/plan.js';
import type { DesiredState, DriftPolicy, Labels, RunMode } from '../../shared/types.js';
import { MemoryEventStore } from '../../store/events/memory-event-store.js';
import type { InstructionRecord } from '../../store/instructions/instruction-store.js';
import { MemoryInstructionStore } from '../../store/instructions/memory-instruction-store.js';
import { MemoryRunStore } from '../../store/runs/memory-run-store.js';
import { MemoryStatusStore } from '../../store/statuses/memory-status-store.js';
import { dispatchRecord, silentLogger } from './reconciler-fakes.js';

export const T0 = Date.parse('2025-03-13T14:22:01.000Z');
export const HOUR = 3_600_000;

// ---- manifests -----------------------------------------------------------------------------------

export const WEB = `task "web_config" {
  selector {
    match_labels = { role = "web" }
  }
  shell "config" {
    check   = "test -f /etc/app.conf"
    command = "touch /etc/app.conf"
  }
}
`;
/** WEB with an unknown attribute on line 5. */
export const WEB_BAD = WEB.replace('  shell "config" {', '  owner = "me"\n  shell "config" {');
/** WEB with a different command: a fix of WEB_BAD that is not WEB again. */
export const WEB_FIXED = WEB.replace('touch /etc/app.conf', 'install -m 644 /dev/null /etc/app.conf');
export const MOTD = `task "motd" {
  drift { policy = "alert_only" }
  selector {
    match_labels = { role = "web" }
  }
  shell "motd" {
    check   = "test -f /etc/motd"
    command = "touch /etc/motd"
  }
}
`;
export const DB = `task "db_backup" {
  drift { policy = "remediate_and_alert" }
  selector {
    match_labels = { role = "db" }
  }
  shell "timer" {
    check   = "systemctl is-active backup.timer"
    command = "systemctl start backup.timer"
  }
}
`;

export async function compileState(files: Record<string, string>): Promise<DesiredState> {
  const result = await new ManifestCompiler().compile(
    Object.entries(files).map(([path, content]) => ({ path, content })),
  );
  if (result.errors.length > 0) throw new Error(`fixture does not compile: ${JSON.stringify(result.errors)}`);
  return result.state;
}

export function instruction(
  id: string,
  opts: {
    agent?: string;
    trigger?: Trigger;
    run_id?: string | null;
    retry?: number;
    tasks?: [task: string, mode: RunMode, policy: DriftPolicy][];
  } = {},
): InstructionRecord {
  const tasks: PlannedTask[] = (opts.tasks ?? [['web_config', 'apply', 'remediate']]).map(
    ([task, mode, policy], i) => ({ task, execution_id: `${id}.${i}`, mode, policy }),
  );
  const agent = opts.agent ?? 'web-01';
  return {
    instruction_id: id,
    agent,
    session_id: `s-${agent}`,
    trigger: opts.trigger ?? 'commit',
    run_id: opts.run_id ?? null,
    revision: 'c0ffee',
    created_at: new Date(T0).toISOString(),
    retry: opts.retry ?? 0,
    tasks,
  };
}

const LABELS: Record<string, Labels> = { 'web-01': { role: 'web', env: 'prod' } };

/** The status store, able to fail once where a worker could be killed. */
export class FlakyStatusStore extends MemoryStatusStore {
  failMarkAlerted = 0;
  override async markAlerted(
    agent: string,
    task: string,
    episodeId: string,
    event: Parameters<MemoryStatusStore['markAlerted']>[3],
  ): Promise<boolean> {
    if (this.failMarkAlerted > 0) {
      this.failMarkAlerted -= 1;
      throw new Error('worker killed');
    }
    return super.markAlerted(agent, task, episodeId, event);
  }
}

export function resultWorld() {
  let clock = T0;
  const instructions = new MemoryInstructionStore();
  const events = new MemoryEventStore({ maxEventsPerAgent: 1000 });
  const statuses = new FlakyStatusStore({ ttlMs: HOUR, now: () => clock });
  const runs = new MemoryRunStore();
  const alerts: Alert[] = [];
  const retries: { job: ReconcileAgentJob; delayMs: number }[] = [];
  const deps: ResultDeps = {
    instructions,
    events,
    statuses,
    runs,
    labelsOf: async (agent) => LABELS[agent] ?? {},
    enqueueAlert: async (alert) => {
      alerts.push(alert);
    },
    retryLater: async (job, delayMs) => {
      retries.push({ job, delayMs });
    },
    logger: silentLogger,
    now: () => new Date(clock),
  };
  const dispatch = (record: InstructionRecord) => dispatchRecord(instructions, runs, record);
  const allEvents = async (): Promise<FlukeEvent[]> => (await events.query({ limit: 1000 })).events;
  return {
    deps,
    instructions,
    events,
    statuses,
    runs,
    alerts,
    retries,
    dispatch,
    allEvents,
    handle: (job: Parameters<typeof resultHandler>[0]) => resultHandler(job, deps),
    advance: (ms: number) => {
      clock += ms;
    },
  };
}

export const distinct = (alerts: Alert[]) => [...new Set(alerts.map((a) => a.id))];
export const alertSummary = (alerts: Alert[]) =>
  alerts.map((a) => [a.payload.event, a.payload.remediation_status, a.payload.drifted_steps]);

export function taskResultStep() {
  return {
    step: 'config',
    type: 'shell' as const,
    outcome: 'applied' as const,
    exit_code: 0,
    apply_exit_code: 0,
    duration_ms: 3,
    output_tail: '',
    error: null,
  };
}

/** Single-message jobs packed as the gateway packs one flush. */
export function batchOf(...jobs: ResultJob[]): Extract<ResultJob, { kind: 'results' }> {
  return {
    kind: 'results',
    gateway_id: 'gw-1',
    items: jobs.map((j) => {
      if (j.kind !== 'result') throw new Error('only forwarded messages batch');
      return { agent: j.agent, session_id: j.session_id, received_at: j.received_at, message: j.message };
    }),
  };
}
