/** The `## Reconnect storm` section of bench/RESULTS.md, from one bench/storm.ts run. */

export interface StormResult {
  label: string;
  agents: number;
  tasks: number;
  drift: number;
  heartbeat: string;
  lbs: number;
  maxconnLowered: string | null;
  haproxyCfg: string | null;
  load: number[];
  loadAfter: number[];
  totalS: number;
  settle: { registeredS: number; checkedS: number; perSecond: number; byGateway: Record<string, number> };
  storm: {
    registeredS: number;
    firstRegisteredS: number;
    checkedS: number;
    ackedS: number;
    drainedS: number;
    registrations: number;
    perSecondB: number;
    byGateway: Record<string, number>;
    refusedUpgrades: Record<string, number>;
    refusals: number;
    closes: number;
    closeCodes: Record<string, number>;
    runs: number;
    applies: number;
    results: number;
    resent: number;
    lost: number;
    duplicates: number;
    doubleApplies: number;
    redisCommands: number;
    topCommands: Array<[string, number]>;
    gatewayRoundTrips: { total: number; byCommand: Record<string, number> } | null;
    cpu: { gatewayB: number; reconciler: number; redis: number };
  };
}

const f1 = (n: number) => n.toFixed(1);
const mark = (ok: boolean) => (ok ? 'met' : '**missed**');

export function renderStorm(r: StormResult): string {
  const s = r.storm;
  const perAgentMs = (cpu: number) => ((cpu * 1000) / r.agents).toFixed(3);
  const rt = s.gatewayRoundTrips;
  const rtLine = rt
    ? `${(rt.total / s.registrations).toFixed(2)} (${Object.entries(rt.byCommand)
        .sort((a, b) => b[1] - a[1])
        .map(([k, n]) => `${k} ${(n / s.registrations).toFixed(2)}`)
        .join(
          ', ',
        )}; MONITOR on gateway B's connections until the last registration, Lua's inner calls not counted)`
    : 'not measured in this run (`--monitor`)';
  return `## Reconnect storm

\`node --import tsx bench/storm.ts --agents ${r.agents} --tasks ${r.tasks} --drift ${r.drift}\` (code ${r.label}),
load average ${r.load.map(f1).join(' ')} before, ${r.loadAfter.map(f1).join(' ')} after; ${f1(r.totalS)} s in all.
${r.agents} simulated agents × ${r.tasks} tasks (the real agent's features incl. \`identity\`, credential kept across
reconnects, the agent's jittered backoff) behind ${r.lbs} Debian haproxy process${r.lbs > 1 ? 'es (an LB pair, each fronting its share: one holds < 10,000 proxied connections under the 20,000 fd limit)' : ''}
running ${r.haproxyCfg ? `**${r.haproxyCfg}** (not the shipped config)` : 'infra/haproxy/haproxy.cfg'}${r.maxconnLowered ? ` (global maxconn lowered ${r.maxconnLowered}: the shipped value needs more fds than this box allows)` : ''}; heartbeat ${r.heartbeat};
per-address registration limit raised in the bench config (every agent arrives from haproxy's address).
The fleet settled on gateway A (registered in ${f1(r.settle.registeredS)} s at ${r.settle.perSecond.toFixed(0)}/s, connect-checked
${f1(r.settle.checkedS)} s after the first connect), gateway B started, then A was killed with SIGKILL;
${(r.drift * 100).toFixed(0)} % of (agent, task) pairs drifted at the kill (remediated by the connect check).

| after kill -9 of gateway A | measured | target |
|---|---:|---|
| first agent registered on B | ${f1(s.firstRegisteredS)} s | |
| every agent registered again | ${f1(s.registeredS)} s | ≤ 10 s: ${mark(s.registeredS <= 10)} |
| every agent connect-checked (its \`run\` arrived) | ${f1(s.checkedS)} s | ≤ 30 s: ${mark(s.checkedS <= 30)} |
| every result acknowledged | ${f1(s.ackedS)} s | |
| queues drained (nothing waiting or active) | ${f1(s.drainedS)} s | |
| registrations/s on B (first → last) | ${s.perSecondB.toFixed(0)} | A at settle: ${r.settle.perSecond.toFixed(0)}/s |
| registrations by gateway | ${Object.entries(s.byGateway)
    .map(([g, n]) => `${g} ${n}`)
    .join(', ')} | |
| refused upgrades / refusals / socket closes (by code) | ${JSON.stringify(s.refusedUpgrades)} / ${s.refusals} / ${s.closes} ${JSON.stringify(s.closeCodes)} | |
| results lost | ${s.lost} | 0: ${mark(s.lost === 0)} |
| double applies (task applied twice / instruction id delivered again) | ${s.doubleApplies} / ${s.duplicates} | 0: ${mark(s.doubleApplies === 0 && s.duplicates === 0)} |
| runs / applies / results (re-sent) | ${s.runs} / ${s.applies} / ${s.results} (${s.resent}) | |
| Redis commands, whole storm, per agent | ${(s.redisCommands / r.agents).toFixed(1)} (top: ${s.topCommands.map(([k, n]) => `${k} ${(n / r.agents).toFixed(1)}`).join(', ')}) | |
| gateway B's Redis commands per registration | ${rtLine} | small constant |
| CPU ms per agent: gateway B / reconciler / Redis | ${perAgentMs(s.cpu.gatewayB)} / ${perAgentMs(s.cpu.reconciler)} / ${perAgentMs(s.cpu.redis)} | |
`;
}
