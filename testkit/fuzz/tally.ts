/**
 * Outcome classes and their counts, per phase and message type and per mutation, and the table
 * the bench and the tests print.
 */
import type { Judgement } from './oracle.js';
import { wrongRegistration } from './oracle.js';
import type { Outcome } from './wire-client.js';

/**
 * `refused` (closed as it should be), `accepted` (taken as it should be), `stricter` (well-formed
 * for the phase yet refused: a check beyond the schema), `wrong` (taken though it should have been
 * refused), `dropped` (refused, but the socket closed without a close frame, 1006, where the
 * protocol promises a code), `crashed` (in flight when the gateway died), `anomaly` (no answer in
 * time, an HTTP answer, a failed setup).
 */
export type Verdict = 'refused' | 'dropped' | 'accepted' | 'stricter' | 'wrong' | 'crashed' | 'anomaly';
export const VERDICTS: readonly Verdict[] = [
  'refused',
  'dropped',
  'accepted',
  'stricter',
  'wrong',
  'crashed',
  'anomaly',
];

export interface Row {
  tried: number;
  counts: Record<Verdict, number>;
  codes: Map<string, number>;
}

export interface Sample {
  verdict: Verdict;
  phase: string;
  type: string;
  mutation: string;
  why: string;
  outcome: string;
  /** The frame, base64, for a reproducer. */
  frame: string;
  binary: boolean;
}

export function classify(j: Judgement, o: Outcome, overTwice: boolean): { verdict: Verdict; why: string } {
  if (o.kind === 'http' || o.kind === 'timeout' || o.kind === 'setup_failed' || o.kind === 'error')
    return { verdict: 'anomaly', why: `${o.kind} ${o.code} ${o.reason}`.trim() };
  if (o.kind === 'closed') {
    // uWebSockets.js drops frames above twice the limit without a close frame (documented: 1006).
    if ((o.code === 1006 || o.code === 1005) && !overTwice)
      return { verdict: 'dropped', why: `closed without a close frame (${o.code})` };
    return j.expect === 'refuse' ? { verdict: 'refused', why: '' } : { verdict: 'stricter', why: o.reason };
  }
  if (j.expect === 'refuse') return { verdict: 'wrong', why: `taken, should be refused: ${j.why}` };
  const wrong = o.registered ? wrongRegistration(j.message) : [];
  if (wrong.length > 0) return { verdict: 'wrong', why: `registered: ${wrong.join('; ')}` };
  return { verdict: 'accepted', why: '' };
}

export class Tally {
  readonly byPhaseType = new Map<string, Row>();
  readonly byMutation = new Map<string, Row>();
  readonly wrongWhy = new Map<string, number>();
  readonly samples: Sample[] = [];
  readonly total: Row = emptyRow();

  add(phase: string, type: string, mutation: string, verdict: Verdict, code: string): void {
    for (const row of [
      rowOf(this.byPhaseType, `${phase}\t${type}`),
      rowOf(this.byMutation, mutation.split('+')[0] ?? mutation),
      this.total,
    ]) {
      row.tried++;
      row.counts[verdict]++;
      row.codes.set(code, (row.codes.get(code) ?? 0) + 1);
    }
  }

  /** Re-classifies one counted frame (a check made after the run found it taken wrongly). */
  move(phase: string, type: string, mutation: string, from: Verdict, to: Verdict): void {
    for (const row of [
      rowOf(this.byPhaseType, `${phase}\t${type}`),
      rowOf(this.byMutation, mutation.split('+')[0] ?? mutation),
      this.total,
    ]) {
      row.counts[from]--;
      row.counts[to]++;
    }
  }

  wrong(why: string): void {
    const key = why.replace(/"[^"]*"/g, '"…"').slice(0, 120);
    this.wrongWhy.set(key, (this.wrongWhy.get(key) ?? 0) + 1);
  }

  sample(s: Sample, max = 40): void {
    const same = this.samples.filter((x) => x.verdict === s.verdict && x.why === s.why).length;
    if (this.samples.length < max && same < 3) this.samples.push(s);
  }
}

function emptyRow(): Row {
  return {
    tried: 0,
    counts: { refused: 0, dropped: 0, accepted: 0, stricter: 0, wrong: 0, crashed: 0, anomaly: 0 },
    codes: new Map(),
  };
}

function rowOf(map: Map<string, Row>, key: string): Row {
  let row = map.get(key);
  if (!row) {
    row = emptyRow();
    map.set(key, row);
  }
  return row;
}

const HEAD =
  '| tried | refused cleanly | dropped (1006) | accepted (valid) | refused (stricter) | crashed | accepted wrongly | anomalies | outcomes |';
const RULE = '| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |';

function line(label: string, row: Row): string {
  const c = row.counts;
  const codes = [...row.codes.entries()]
    .sort((a, b) => b[1] - a[1])
    .slice(0, 5)
    .map(([k, n]) => `${k}×${n}`)
    .join(' ');
  return `| ${label} | ${row.tried} | ${c.refused} | ${c.dropped} | ${c.accepted} | ${c.stricter} | ${c.crashed} | ${c.wrong} | ${c.anomaly} | ${codes} |`;
}

/** Markdown tables: per phase and message type, per mutation, total. */
export function renderTally(t: Tally): string {
  const out: string[] = [];
  out.push(`| phase | type ${HEAD}`, `| --- | --- ${RULE}`);
  for (const [key, row] of [...t.byPhaseType.entries()].sort()) {
    const [phase, type] = key.split('\t');
    out.push(line(`${phase} | ${type}`, row));
  }
  out.push(line('**total** |', t.total));
  out.push('', `| mutation ${HEAD}`, `| --- ${RULE}`);
  for (const [key, row] of [...t.byMutation.entries()].sort()) out.push(line(key, row));
  if (t.wrongWhy.size > 0) {
    out.push('', '| accepted wrongly because | frames |', '| --- | ---: |');
    for (const [why, n] of [...t.wrongWhy.entries()].sort((a, b) => b[1] - a[1]))
      out.push(`| ${why.replace(/\|/g, '\\|')} | ${n} |`);
  }
  return out.join('\n');
}
