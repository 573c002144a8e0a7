/**
 * What `fluke dev` shows and writes for a newcomer: the two config files of the demo, the local
 * receiver that prints drift alerts, the welcome text with every URL and token, and the event
 * feed printed as it happens.
 */
import { createServer as createHttpServer } from 'node:http';
import type { FlukeEvent } from '../../shared/events.js';

export const out = (line: string) => process.stdout.write(`${line}\n`);

export interface DevConfigValues {
  agentsPort: number;
  httpPort: number;
  agentToken: string;
  apiToken: string;
  redisUrl: string;
  prefix: string;
  /** The demo Git repository. */
  repo: string;
  pollInterval: string;
  alertPort: number;
}

/** server.hcl and agent.hcl of the demo. */
export function devConfigFiles(o: DevConfigValues): { serverHcl: string; agentHcl: string } {
  const serverHcl = `server {
  listen_agents      = "127.0.0.1:${o.agentsPort}"
  listen_http        = "127.0.0.1:${o.httpPort}"
  agent_tokens       = ["${o.agentToken}"]
  api_tokens         = ["${o.apiToken}"]
  heartbeat_interval = "5s"
  redis { url = "${o.redisUrl}"  prefix = "${o.prefix}" }
  git {
    url           = "${o.repo}"
    poll_interval = "${o.pollInterval}"
  }
  tls { enabled = false }
  drift {
    policy        = "remediate"
    alert_webhook = "http://127.0.0.1:${o.alertPort}/alerts"
  }
  log { level = "warn"  format = "pretty" }
}
`;
  const agentHcl = `agent {
  server_url = "ws://127.0.0.1:${o.agentsPort}"
  token      = "${o.agentToken}"
  name       = "demo-agent"
  labels     = { role = "demo", env = "dev" }
  execution { command_timeout = "1m" }
  log { level = "warn"  format = "pretty" }
}
`;
  return { serverHcl, agentHcl };
}

/** Listens on a free local port and prints each alert it receives; returns the port. */
export async function startAlertReceiver(stopping: (() => Promise<void> | void)[]): Promise<number> {
  const alerts = createHttpServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      try {
        const a = JSON.parse(Buffer.concat(chunks).toString()) as {
          event: string;
          agent: { name: string };
          task: string;
          remediation_status: string;
          drifted_steps: string[];
        };
        out(
          `  ALERT ${a.event}: ${a.agent.name} ${a.task} (${a.remediation_status}; steps ${a.drifted_steps.join(', ')})`,
        );
      } catch {
        out('  ALERT (unreadable body)');
      }
      res.writeHead(204).end();
    });
  });
  await new Promise<void>((res) => alerts.listen(0, '127.0.0.1', () => res()));
  stopping.push(
    Object.assign(() => new Promise<void>((res) => alerts.close(() => res())), { what: 'alert receiver' }),
  );
  const alertAddress = alerts.address();
  return typeof alertAddress === 'object' && alertAddress ? alertAddress.port : 0;
}

export function printWelcome(o: {
  base: string;
  repo: string;
  revision: string;
  pollInterval: string;
  agentsPort: number;
  apiToken: string;
}): void {
  out('');
  out('Fluke demo is running.');
  out(
    `  web UI        ${o.base}/   (paste the API token below into its token box to use the Reconcile buttons)`,
  );
  out(`  Bull Board    ${o.base}/queues   metrics: ${o.base}/metrics`);
  out(`  HTTP API      ${o.base}/api/v1/status   (docs/api.md)`);
  out(
    `  demo repo     ${o.repo} at ${o.revision.slice(0, 12)} (commit to it; polled every ${o.pollInterval})`,
  );
  out(`  agent         demo-agent {role=demo, env=dev} on ws://127.0.0.1:${o.agentsPort}`);
  out(`  API token     ${o.apiToken}`);
  out(`  CLI           export FLUKE_SERVER=${o.base} FLUKE_API_TOKEN=${o.apiToken}`);
  out('                npx fluke get agents; npx fluke get drift; npx fluke reconcile all   (docs/cli.md)');
  out(
    `  curl          curl -X POST -H 'Authorization: Bearer ${o.apiToken}' -H 'Content-Type: application/json' -d '{"target":"all"}' ${o.base}/api/v1/reconcile`,
  );
  out(
    '  drift         the demo tasks write under /tmp/fluke-demo: delete greeting.txt and watch it come back;',
  );
  out(
    '                motd is alert_only: it stays drifted (one ALERT per episode) until the reconcile above applies it',
  );
  out('Events (Ctrl-C to stop):');
}

/** Prints new events every second, oldest first, each once. */
export function followEvents(base: string): NodeJS.Timeout {
  const seen = new Set<string>();
  const timer = setInterval(async () => {
    try {
      const res = await fetch(`${base}/api/v1/events?limit=50`);
      const page = (await res.json()) as { events: FlukeEvent[] };
      for (const e of page.events.reverse()) {
        if (seen.has(e.id)) continue;
        seen.add(e.id);
        out(`  ${describe(e)}`);
      }
    } catch {
      // The server is stopping or busy; the next tick tries again.
    }
  }, 1000);
  return timer;
}

function describe(e: FlukeEvent): string {
  const where = `${e.agent} ${e.task}`;
  switch (e.kind) {
    case 'task_run': {
      const steps = e.steps.map((s) => `${s.step}=${s.outcome}`).join(' ');
      return `${e.at.slice(11, 19)} ${where}: ${e.outcome} (${e.trigger}, ${e.mode}) ${steps} [execution ${e.execution_id}]`;
    }
    case 'timeout':
      return `${e.at.slice(11, 19)} ${where}: timeout after ${Math.round(e.waited_ms / 1000)}s`;
    case 'undeliverable':
      return `${e.at.slice(11, 19)} ${where}: undeliverable: ${e.reason}`;
    case 'alert_failed':
      return `${e.at.slice(11, 19)} ${where}: alert ${e.alert_event} failed: ${e.error}`;
  }
}
