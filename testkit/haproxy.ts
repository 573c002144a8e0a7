/**
 * Debian's haproxy running the shipped `infra/haproxy/haproxy.cfg` with only its addresses
 * substituted: the config's two gateways (`gateway-1`, `gateway-2`, agent port 7070, HTTP port
 * 7071) become two loopback addresses where the caller starts its gateways on those same ports,
 * and the frontends bind a third loopback address. Loopback is 127.0.0.0/8, so every run picks
 * fresh addresses and the fixed ports never collide.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { root, waitFor } from './system.js';

export const SHIPPED_HAPROXY_CFG = join(root, 'infra', 'haproxy', 'haproxy.cfg');
/** The ports the shipped config gives the gateways (and binds itself). */
export const GATEWAY_AGENT_PORT = 7070;
export const GATEWAY_HTTP_PORT = 7071;

export interface TestHaproxy {
  /** Where agents connect: `ws://<front>:7070`. */
  agentsUrl: string;
  /** The HTTP frontend: `http://<front>:7071`. */
  httpUrl: string;
  /** The loopback address each gateway must listen on (ports 7070 and 7071), gateway-1 first. */
  gatewayHosts: string[];
  /** What haproxy printed: its log (stdout) and its alerts (stderr). */
  output(): string;
  stop(): Promise<void>;
}

/** A random 127.a.b.c (c ≥ 2: 127.0.0.1 is everyone's). */
export function randomLoopbackHost(): string {
  const n = () => 1 + Math.floor(Math.random() * 254);
  return `127.${n()}.${n()}.${1 + n()}`.replace(/\.255$/, '.254');
}

/** The shipped config with its addresses substituted: nothing else changes. */
export function substituteAddresses(cfg: string, front: string, gateways: string[]): string {
  let out = cfg.replace(
    /^(\s*bind\s+):(\d+)\s*$/gm,
    (_, lead: string, port: string) => `${lead}${front}:${port}`,
  );
  gateways.forEach((host, i) => {
    out = out.replace(new RegExp(`\\bgateway-${i + 1}:(\\d+)`, 'g'), (_, port: string) => `${host}:${port}`);
  });
  if (/\bgateway-\d+:\d+/.test(out)) throw new Error('haproxy.cfg names more gateways than were given');
  return out;
}

function listening(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect({ host, port });
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

export async function startHaproxy(
  options: { gateways?: number; cfg?: string; gatewayHosts?: string[] } = {},
): Promise<TestHaproxy> {
  const count = options.gateways ?? options.gatewayHosts?.length ?? 2;
  const front = randomLoopbackHost();
  // Given hosts: several haproxy instances (an LB pair) in front of the same gateways.
  const gatewayHosts: string[] = [...(options.gatewayHosts ?? [])];
  while (gatewayHosts.length < count) {
    const h = randomLoopbackHost();
    if (h !== front && !gatewayHosts.includes(h)) gatewayHosts.push(h);
  }
  const dir = mkdtempSync(join(tmpdir(), 'fluke-haproxy-'));
  const cfgFile = join(dir, 'haproxy.cfg');
  writeFileSync(
    cfgFile,
    substituteAddresses(readFileSync(options.cfg ?? SHIPPED_HAPROXY_CFG, 'utf8'), front, gatewayHosts),
  );
  let output = '';
  const proc: ChildProcess = spawn('haproxy', ['-db', '-f', cfgFile], { stdio: ['ignore', 'pipe', 'pipe'] });
  // Its log (`log stdout`) and its alerts (stderr) both: an unread pipe would stall it.
  const keep = (d: Buffer) => {
    output = (output + d.toString()).slice(-200_000);
  };
  proc.stdout?.on('data', keep);
  proc.stderr?.on('data', keep);
  await waitFor(
    'haproxy listening',
    async () => proc.exitCode === null && (await listening(front, GATEWAY_AGENT_PORT)),
    (up) => up || proc.exitCode !== null,
    15_000,
  ).catch((err: Error) => {
    throw new Error(`${err.message}: ${output}`);
  });
  if (proc.exitCode !== null) throw new Error(`haproxy exited ${proc.exitCode}: ${output}`);
  return {
    agentsUrl: `ws://${front}:${GATEWAY_AGENT_PORT}`,
    httpUrl: `http://${front}:${GATEWAY_HTTP_PORT}`,
    gatewayHosts,
    output: () => output,
    stop: async () => {
      if (proc.exitCode === null && proc.signalCode === null) {
        await new Promise<void>((resolve) => {
          proc.once('exit', () => resolve());
          proc.kill('SIGTERM');
        });
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
