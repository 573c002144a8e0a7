/**
 * `fluke` — one entry, many subcommands. Each subcommand lives in its own module and is loaded
 * only when used, so `fluke validate` never loads uWebSockets.js or BullMQ.
 */
type Command = { summary: string; load: () => Promise<{ run(argv: string[]): Promise<number> }> };

const commands: Record<string, Command> = {
  validate: {
    summary: 'compile manifests offline and report errors',
    load: () => import('./commands/validate.js'),
  },
  server: {
    summary: 'all-in-one: gateway and reconciler workers',
    load: () => import('./commands/server.js'),
  },
  gateway: { summary: 'agent connections, HTTP API and UI', load: () => import('./commands/gateway.js') },
  reconciler: {
    summary: 'BullMQ workers: poll, compile, dispatch, alerts',
    load: () => import('./commands/reconciler.js'),
  },
  agent: { summary: 'the host agent', load: () => import('./commands/agent.js') },
  dev: {
    summary: 'the demo: Redis, demo repo, server and a local agent',
    load: () => import('./commands/dev.js'),
  },
  get: {
    summary: 'list agents, tasks, drift or events (from the HTTP API)',
    load: () => import('./commands/get.js'),
  },
  describe: { summary: 'one agent or task in detail', load: () => import('./commands/describe.js') },
  reconcile: {
    summary: 'trigger a manual reconcile and follow it',
    load: () => import('./commands/reconcile.js'),
  },
  logs: { summary: "an execution's output, live with -f", load: () => import('./commands/logs.js') },
  version: { summary: 'version and build info', load: () => import('./commands/version.js') },
};

function usage(): string {
  const width = Math.max(...Object.keys(commands).map((c) => c.length));
  const lines = Object.entries(commands).map(([name, c]) => `  ${name.padEnd(width)}  ${c.summary}`);
  return `usage: fluke <command> [options]\n\ncommands:\n${lines.join('\n')}\n\nRun "fluke <command> --help" for a command's flags; docs/cli.md has them all.\n`;
}

/** `fluke --server URL get agents` works like `fluke get agents --server URL`. */
function hoistServerFlag(argv: string[]): string[] {
  const [first, second] = argv;
  if (first === '--server' && second !== undefined) return [...argv.slice(2), '--server', second];
  if (first?.startsWith('--server=')) return [...argv.slice(1), first];
  return argv;
}

export async function main(argvIn: string[]): Promise<number> {
  const argv = hoistServerFlag(argvIn);
  const [name, ...rest] = argv;
  if (name === 'help') {
    // `fluke help get` is `fluke get --help`.
    const [topic] = rest;
    if (topic === undefined || topic === '-h' || topic === '--help') return main(['--help']);
    return main([topic, '--help']);
  }
  if (name === undefined || name === '-h' || name === '--help') {
    process.stdout.write(usage());
    return name === undefined ? 2 : 0;
  }
  if (name === '--version' || name === '-v') return main(['version', ...rest]);
  const command = commands[name];
  if (!command) {
    const what = name.startsWith('-') ? `unknown flag ${name.split('=')[0]}` : `unknown command "${name}"`;
    process.stderr.write(`fluke: ${what}\n\n${usage()}`);
    return 2;
  }
  const mod = await command.load();
  return mod.run(rest);
}
