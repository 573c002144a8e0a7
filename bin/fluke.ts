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
  version: { summary: 'version and build info', load: () => import('./commands/version.js') },
};

function usage(): string {
  const width = Math.max(...Object.keys(commands).map((c) => c.length));
  const lines = Object.entries(commands).map(([name, c]) => `  ${name.padEnd(width)}  ${c.summary}`);
  return `usage: fluke <command> [options]\n\ncommands:\n${lines.join('\n')}\n`;
}

export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '-h' || name === '--help' || name === 'help') {
    process.stdout.write(usage());
    return name === undefined ? 2 : 0;
  }
  if (name === '--version' || name === '-v') return main(['version', ...rest]);
  const command = commands[name];
  if (!command) {
    process.stderr.write(`fluke: unknown command "${name}"\n\n${usage()}`);
    return 2;
  }
  const mod = await command.load();
  return mod.run(rest);
}
