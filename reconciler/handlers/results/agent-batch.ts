/**
 * One agent's share of a batched results job: the state read up front (instruction records,
 * snapshot, labels), decided against in memory by the rulebook, and the writes collected for the
 * job's write steps. Effects the batch does not apply itself (an alert, an episode change, a busy
 * or refused receipt) are applied through `deps`, MessageDeps over the same state
 * (./batch-deps.ts): reads come from it, statuses, finished tasks, run progress and events are
 * collected, and everything else (episodes, alerts, retries) is written at once.
 */
import type { FlukeEvent } from '../../../shared/events.js';
import type { ResultJob } from '../../../shared/jobs/payloads.js';
import {
  type AgentResultMessage,
  changesNoEpisode,
  type Decision,
  decide,
  type Facts,
  judgedTask,
  NEED_LABELS,
  type TaskEffects,
} from '../../../shared/result-rules.js';
import type { TaskStatus } from '../../../shared/status.js';
import type { Labels } from '../../../shared/types.js';
import type { InstructionRecord, Settle } from '../../../store/instructions/instruction-store.js';
import type { AgentSnapshot, StatusWrite } from '../../../store/statuses/status-store.js';
import { applyEffects, lazyLabels } from './apply.js';
import { batchDeps } from './batch-deps.js';
import type { MessageDeps, ResultDeps } from './deps.js';
import { foreignInstruction, messageHandler } from './single.js';

export type BatchItem = Extract<ResultJob, { kind: 'results' }>['items'][number];
export type Found = { record: InstructionRecord; pending: string[] };
export type RunOutcome = { run: string; agent: string; task: string; outcome: string };

/** decideHere(): the message needs the single-message handler. */
const SLOW = 1;

export class AgentBatch {
  readonly instructionIds: string[] = [];
  /** The tasks of its results (judged against their statuses), once each. */
  readonly resultTasks: string[] = [];
  readonly runOutcomes: RunOutcome[] = [];
  /** Instruction records by id; null once unknown or completed (a re-read would find it done). */
  readonly found = new Map<string, Found | null>();
  snapshot: AgentSnapshot | null = null;
  snapshotRead: Promise<AgentSnapshot> | null = null;
  /** The agent's labels, read once, when an event or alert needs them. */
  readonly readLabels: () => Promise<Labels>;
  /** The rulebook's facts, reused message after message. */
  private readonly facts: Facts;
  /**
   * Statuses to write, by task: read over the snapshot, whose statuses stay what was stored
   * before this job (setStatuses learns from them which problem-index entries cannot exist).
   */
  readonly statusOut = new Map<string, TaskStatus>();
  private readonly finished = new Map<string, Array<{ task: string; outcome: string }>>();
  private readonly completed = new Set<string>();
  readonly events: FlukeEvent[] = [];
  private slowDeps: MessageDeps | null = null;

  constructor(
    readonly agent: string,
    private items: readonly BatchItem[] | null,
    readonly base: ResultDeps,
    readonly now: Date,
  ) {
    this.facts = { previous: null, episode: null, labels: null, now, nowIso: now.toISOString() };
    this.readLabels = lazyLabels(base, agent);
    for (const { message } of items ?? []) {
      const result = message.type === 'check_result' || message.type === 'task_result';
      if (result && !this.resultTasks.includes(message.task)) this.resultTasks.push(message.task);
      if (!this.instructionIds.includes(message.instruction_id))
        this.instructionIds.push(message.instruction_id);
    }
  }

  prefetched(found: ReadonlyMap<string, Found | null>, snapshot: AgentSnapshot | null): void {
    for (const [id, f] of found) this.found.set(id, f);
    this.snapshot = snapshot;
  }

  async judgeAll(gatewayId: string, counts: Record<string, number>): Promise<void> {
    const items = this.items ?? [];
    this.items = null;
    for (const item of items) {
      let decision = this.decideHere(item.message);
      if (decision === NEED_LABELS) {
        this.facts.labels = await this.readLabels();
        decision = this.decideHere(item.message);
      }
      let outcome: string;
      if (decision === SLOW) {
        outcome = await messageHandler(
          {
            kind: 'result',
            agent: item.agent,
            session_id: item.session_id,
            gateway_id: gatewayId,
            received_at: item.received_at,
            message: item.message,
          },
          this.deps,
        );
      } else if (typeof decision === 'string') outcome = decision;
      else if (decision === NEED_LABELS) throw new Error('the result rules asked for labels twice');
      else {
        await applyEffects(this.deps, decision);
        outcome = decision.outcome;
      }
      counts[outcome] = (counts[outcome] ?? 0) + 1;
    }
    // Judging is over: let the records go while the writes are on their way (a job holds dozens
    // of agents for several round trips, and whatever it holds, each young-generation GC copies).
    this.found.clear();
  }

  /**
   * The rules' decision on one message against the batch's state. Effects that change only
   * statuses, events, run progress and finished tasks (nearly all) are applied here, in memory,
   * and only the outcome returned; the others are returned for applyEffects on `deps`.
   */
  private decideHere(message: AgentResultMessage): Decision | typeof SLOW {
    const found = this.found.get(message.instruction_id);
    if (found === undefined) return SLOW;
    // Another agent's instruction: never applied (the sender is not the agent it was issued to).
    if (found !== null && found.record.agent !== this.agent)
      return foreignInstruction(this.base, this.agent, found.record);
    const facts = this.facts;
    const task = found === null ? null : judgedTask(message, found.record);
    if (task !== null) {
      const snap = this.snapshot;
      if (!snap) return SLOW;
      facts.previous = this.statusOf(snap, task);
      facts.episode = snap.episodes.get(task) ?? null;
    }
    const decision = decide(message, found, facts);
    if (typeof decision !== 'object' || decision.kind !== 'task') return decision;
    if (!changesNoEpisode(decision.verdict)) return decision;
    this.applyHere(message, found as Found, decision);
    return decision.outcome;
  }

  private applyHere(message: AgentResultMessage, found: Found, effects: TaskEffects): void {
    if (effects.event) this.events.push(effects.event);
    const { verdict } = effects;
    if (verdict.ignored === null && verdict.status) this.statusOut.set(effects.task, verdict.status);
    if (effects.finish === null) return;
    const run = found.record.run_id;
    if (run) this.runOutcomes.push({ run, agent: this.agent, task: effects.task, outcome: effects.finish });
    this.finishTask(message.instruction_id, found, effects.task, effects.finish, true);
  }

  /** The task's status as this batch knows it: written by it, or as stored before. */
  statusOf(snap: AgentSnapshot, task: string): TaskStatus | null {
    return this.statusOut.get(task) ?? snap.statuses.get(task) ?? null;
  }

  /**
   * What InstructionStore.finishTask then complete do, to the batch's state: tasks left.
   * `inPlace` when no applyEffects call holds the pending list (it iterates its own copy).
   */
  finishTask(id: string, found: Found | null, task: string, outcome: string, inPlace = false): number {
    const list = this.finished.get(id);
    if (list) list.push({ task, outcome });
    else this.finished.set(id, [{ task, outcome }]);
    if (!found) return 0;
    const at = found.pending.indexOf(task);
    if (at >= 0) {
      // In place, the last one moved into the gap: only the count and membership matter here.
      if (inPlace) {
        const last = found.pending.pop() as string;
        if (at < found.pending.length) found.pending[at] = last;
      } else found.pending = found.pending.filter((t) => t !== task);
    }
    if (found.pending.length === 0) this.complete(id);
    return found.pending.length;
  }

  complete(id: string): void {
    this.completed.add(id);
    // Later messages of this batch see what a re-read would: the record is done.
    this.found.set(id, null);
  }

  /** MessageDeps over the batch's state, for the effects it does not apply in memory. */
  private get deps(): MessageDeps {
    this.slowDeps ??= batchDeps(this);
    return this.slowDeps;
  }

  /** The events to record before any status, handed over once. */
  takeEvents(): FlukeEvent[] {
    return this.events.splice(0);
  }

  hasStatuses(): boolean {
    return this.statusOut.size > 0;
  }

  /** The statuses to write, handed over once, with the snapshot they replace (then let go). */
  takeStatuses(): StatusWrite {
    const write = {
      agent: this.agent,
      statuses: [...this.statusOut.values()],
      previous: this.snapshot?.statuses,
    };
    this.statusOut.clear();
    this.snapshot = null;
    this.snapshotRead = null;
    return write;
  }

  hasRunOutcomes(): boolean {
    return this.runOutcomes.length > 0;
  }

  /** Each instruction's finished tasks, and whether to complete it even with tasks left. */
  settles(): Settle[] {
    const out: Settle[] = [];
    for (const [id, done] of this.finished)
      out.push({ instruction_id: id, done, complete: this.completed.has(id) });
    for (const id of this.completed) {
      if (!this.finished.has(id)) out.push({ instruction_id: id, done: [], complete: true });
    }
    return out;
  }
}
