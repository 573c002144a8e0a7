/**
 * Bull Board's view of the queues: its BullMQ adapter needs the Queue objects themselves, so it is
 * built here and the console gets opaque board adapters.
 *
 * The board never shows a secret (docs/security.md): job data and return values pass through
 * `redactJobData` (ids as hints, URLs and tokens gone, env values redacted), and a job's failure
 * reason and stack trace lose URL credentials and ids (`redactBoardText`). Only what the board shows changes; the jobs do not.
 */
import type { BaseAdapter } from '@bull-board/api/baseAdapter';
import { BullMQAdapter } from '@bull-board/api/bullMQAdapter';
import { redactBoardText, redactJobData } from '../../shared/redact.js';
import type { JobQueueHandle } from './queues.js';

export type BoardQueue = BaseAdapter;

type BoardJob = NonNullable<Awaited<ReturnType<BullMQAdapter['getJob']>>>;

interface JobJson {
  failedReason?: unknown;
  stacktrace?: unknown;
  data?: unknown;
  returnvalue?: unknown;
}

function redactJson<T extends JobJson>(json: T): T {
  return {
    ...json,
    failedReason:
      typeof json.failedReason === 'string' ? redactBoardText(json.failedReason) : json.failedReason,
    stacktrace: Array.isArray(json.stacktrace)
      ? json.stacktrace.map((s: unknown) => (typeof s === 'string' ? redactBoardText(s) : s))
      : json.stacktrace,
    // The formatters below redact these too; here for any route that reads them raw.
    data: redactJobData(json.data),
    returnvalue: redactJobData(json.returnvalue),
  };
}

/** The job as the board sees it: every property as before, `toJSON` redacted. */
function redactedJob(job: BoardJob): BoardJob {
  return new Proxy(job, {
    get(target, prop) {
      if (prop === 'toJSON') return () => redactJson(target.toJSON() as JobJson);
      const value: unknown = Reflect.get(target, prop, target);
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
}

class RedactingBullMQAdapter extends BullMQAdapter {
  constructor(queue: JobQueueHandle, readOnlyMode: boolean) {
    super(queue, { readOnlyMode });
    this.setFormatter('data', redactJobData);
    this.setFormatter('returnValue', redactJobData);
  }

  override async getJob(id: string): Promise<BoardJob | undefined> {
    const job = await super.getJob(id);
    return job ? redactedJob(job) : job;
  }

  override async getJobs(...args: Parameters<BullMQAdapter['getJobs']>): Promise<BoardJob[]> {
    return (await super.getJobs(...args)).map(redactedJob);
  }
}

export function boardQueues(queues: readonly JobQueueHandle[], readOnlyMode: boolean): BoardQueue[] {
  return queues.map((q) => new RedactingBullMQAdapter(q, readOnlyMode));
}
