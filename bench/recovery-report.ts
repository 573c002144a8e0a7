/**
 * The `## Recovery` section of bench/RESULTS.md: one row per scenario. Rows of scenarios not run
 * this time are kept from the section already there (each scenario is run at full size on its own),
 * and a row can come from another bench: bench/storm.ts (the gateway kill -9 behind HAProxy) writes
 * a RecoveryRow as JSON, which `--row-json FILE` puts in the table under its own id.
 */
import { readFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { fileURLToPath } from 'node:url';

export interface RecoveryRow {
  /** Stable key of the row (first cell), e.g. `gateway-kill`, `gateway-kill-haproxy`. */
  id: string;
  title: string;
  agents: number;
  tasks: number;
  /** Fault → every agent registered again; null = never (within the timeout). */
  registeredS: number | null;
  /** Fault → every agent that had to be re-checked was, its results acknowledged. */
  checkedS: number | null;
  resultsSent: number;
  lost: number;
  doubleApplies: number;
  /** Drifted pairs applied again by a second instruction in the same cycle (see recovery-agent.ts). */
  reApplies?: number;
  notes: string;
  /** Which bench measured it (and how, if not obvious). */
  source: string;
  /** Filled by the writer. */
  command?: string;
  load?: string;
  date?: string;
}

const HEADER = [
  '| scenario | what | agents × tasks | → all registered | → all checked again | results sent | results lost | double applies | re-applied by a 2nd instruction in the cycle | notes | measured by · command · load at start · date |',
  '|---|---|---|---:|---:|---:|---:|---:|---:|---|---|',
];

const sec = (v: number | null) => (v === null ? 'never' : `${v.toFixed(1)} s`);

export function renderRow(r: RecoveryRow): string {
  const cells = [
    `\`${r.id}\``,
    r.title,
    `${r.agents} × ${r.tasks}`,
    r.registeredS === null ? '**never**' : sec(r.registeredS),
    `**${sec(r.checkedS)}**`,
    String(r.resultsSent),
    r.lost === 0 ? '0' : `**${r.lost}**`,
    r.doubleApplies === 0 ? '0' : `**${r.doubleApplies}**`,
    r.reApplies === undefined ? '–' : String(r.reApplies),
    r.notes.replace(/\|/g, '\\|'),
    `${r.source} · \`${r.command ?? ''}\` · ${r.load ?? ''} · ${r.date ?? ''}`,
  ];
  return `| ${cells.join(' | ')} |`;
}

/** Rows already in the `## Recovery` section, by id (the first cell). */
export function existingRows(text: string): Map<string, string> {
  const rows = new Map<string, string>();
  const start = text.indexOf('## Recovery');
  if (start < 0) return rows;
  const end = text.indexOf('\n## ', start + 1);
  for (const line of text.slice(start, end < 0 ? undefined : end).split('\n')) {
    const m = /^\| `([^`]+)` \|/.exec(line);
    if (m?.[1]) rows.set(m[1], line);
  }
  return rows;
}

export function readResults(): string {
  try {
    return readFileSync(fileURLToPath(new URL('./RESULTS.md', import.meta.url)), 'utf8');
  } catch {
    return '';
  }
}

/** A row another bench wrote as JSON (bench/storm.ts): checked for the fields the table needs. */
export function rowFromJson(text: string, file: string): RecoveryRow {
  const r = JSON.parse(text) as Partial<RecoveryRow>;
  for (const k of [
    'id',
    'title',
    'agents',
    'tasks',
    'resultsSent',
    'lost',
    'doubleApplies',
    'source',
  ] as const) {
    if (r[k] === undefined) throw new Error(`${file}: a recovery row needs "${k}"`);
  }
  return { registeredS: null, checkedS: null, notes: '', ...r } as RecoveryRow;
}

export const ORDER = [
  'gateway-kill-haproxy',
  'gateway-kill',
  'reconciler-kill',
  'flushall',
  'redis-restart',
  'cluster-failover',
  'sentinel-failover',
];

export function renderSection(rows: Map<string, string>, skipped: string[]): string {
  const ids = [...rows.keys()].sort(
    (a, b) => ((ORDER.indexOf(a) + 100) % 100) - ((ORDER.indexOf(b) + 100) % 100),
  );
  return [
    '## Recovery',
    '',
    `Each fault is done to a running system (two \`fluke gateway\` and two \`fluke reconciler\` processes, wired by \`startServices\`; private Redis; Git repo of N tasks, one shell step each; drift policy \`remediate\`; heartbeat 10 s) holding simulated agents that behave as the real agent on reconnect: the agent's own backoff with full jitter and reconnect delays, its credential kept and presented again, unacknowledged results kept in the agent's Outbox and re-sent on registration, instruction ids remembered (a re-delivered id is refused). Without a balancer an agent reconnects to the next gateway address; the \`-haproxy\` row goes through infra/haproxy/haproxy.cfg. ` +
      'From the fault: **→ all registered** = every agent has a registry entry on a live gateway and every agent whose socket dropped is registered on a newer one; ' +
      '**→ all checked again** = every agent that had to be re-checked (all agents after a Redis loss or during the cycle the reconciler died in; the dropped ones after a gateway kill) has run an instruction since and has every result acknowledged. ' +
      '**Results lost** = (agent, task) pairs whose last executed result is not what the task status names once everything is quiet, plus results never acknowledged. ' +
      "**Double applies** = an instruction id executed a second time by an agent (counted apart from the agent's own guard, which refuses a re-delivered id: those refusals are in the notes). " +
      '**Re-applied by a 2nd instruction** = a drifted (agent, task) pair that a second, different instruction applied again in the same cycle: each phase draws 10 % of pairs drifted and the simulated host stays drifted for the phase, so this counts every repeated apply-mode instruction for work already done (a real host, fixed by the first apply, would only re-check; non-idempotent steps would run twice).',
    '',
    `Machine: ${cpus().length} × ${cpus()[0]?.model ?? 'unknown'}, Node ${process.version}; load average at the start of each run in its row.`,
    '',
    ...HEADER,
    ...ids.map((id) => rows.get(id) ?? ''),
    '',
    ...skipped.map((s) => `- Not measured: ${s}`),
    '',
  ].join('\n');
}

export function loadNow(): string {
  return loadavg()
    .map((l) => l.toFixed(1))
    .join(' / ');
}
