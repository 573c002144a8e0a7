import { type ChildProcess, spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import type { AgentMessage, RegisterMessage, TaskResultMessage } from '../shared/protocol.js';
import { shell, task, tempDir } from './helpers/agent-harness.js';
import { startFakeGateway } from './helpers/fake-gateway.js';

const root = dirname(dirname(fileURLToPath(import.meta.url)));

/** `fluke agent …` exactly as the CLI dispatches it, from source. */
function fluke(
  args: string[],
  env: NodeJS.ProcessEnv = {},
): { child: ChildProcess; exit: Promise<number | null>; stderr: () => string } {
  const code = `import('./bin/fluke.ts').then((m) => m.main(${JSON.stringify(args)})).then((c) => { process.exitCode = c; })`;
  const child = spawn(process.execPath, ['--import', 'tsx', '-e', code], {
    cwd: root,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => {
    stderr += d.toString();
  });
  const exit = new Promise<number | null>((resolve) => child.once('exit', (c) => resolve(c)));
  return { child, exit, stderr: () => stderr };
}

const isType =
  <K extends AgentMessage['type']>(type: K) =>
  (m: AgentMessage): m is Extract<AgentMessage, { type: K }> =>
    m.type === type;

t.test('fluke agent --config: registers, runs, and exits 0 on SIGTERM after reporting', async (t) => {
  const dir = tempDir(t);
  const gw = await startFakeGateway({ token: 's3cret' });
  t.teardown(() => gw.close());
  const configFile = join(dir, 'agent.hcl');
  writeFileSync(
    configFile,
    `agent {
  server_url = "${gw.url}"
  token      = "$FLUKE_TEST_AGENT_TOKEN"
  name       = "proc-01"
  labels     = { role = "web", env = "test" }
  execution {
    command_timeout = "20s"
  }
  log {
    level = "warn"
  }
}
`,
  );
  const proc = fluke(['agent', '--config', configFile], { FLUKE_TEST_AGENT_TOKEN: 's3cret' });
  t.teardown(() => {
    if (proc.child.exitCode === null) proc.child.kill('SIGKILL');
  });

  const register = (await gw.waitFor(isType('register'))) as RegisterMessage;
  t.match(register, { name: 'proc-01', labels: { role: 'web', env: 'test' } });
  t.equal(gw.authorizations[0], 'Bearer s3cret', 'the token came from the environment');

  const quick = task('quick', [shell('touch', `test -f ${dir}/done`, `touch ${dir}/done`)]);
  gw.send({ type: 'run', instruction_id: 'p-1', revision: 'r', trigger: 'manual', tasks: [quick] });
  t.match(await gw.waitFor(isType('task_result')), { execution_id: quick.execution_id, outcome: 'applied' });

  // A long step is running when SIGTERM arrives: it is cancelled and its result still reported.
  const slow = task('slow', [shell('hang', 'echo started; exec sleep 300', 'true')]);
  gw.send({ type: 'run', instruction_id: 'p-2', revision: 'r', trigger: 'manual', tasks: [slow] });
  await gw.waitFor((m) => m.type === 'output' && m.line === 'started');
  proc.child.kill('SIGTERM');
  t.equal(await proc.exit, 0, proc.stderr());
  const cancelled = (await gw.waitFor(
    (m) => m.type === 'task_result' && m.execution_id === slow.execution_id,
  )) as TaskResultMessage;
  t.match(cancelled.steps[0], { outcome: 'failed', error: /agent shutting down/ });
  await gw.waitForClose(1);
  t.equal(gw.closeCodes[0], 1000, 'a normal close');
});

t.test('fluke agent: config errors and usage', async (t) => {
  const dir = tempDir(t);
  const bad = join(dir, 'agent.hcl');
  writeFileSync(bad, 'agent {\n  token = "x"\n}\n');
  const proc = fluke(['agent', '--config', bad]);
  t.equal(await proc.exit, 1);
  t.match(proc.stderr(), /server_url/);
  const usage = fluke(['agent']);
  t.equal(await usage.exit, 2);
  t.match(usage.stderr(), /--config is required/);
});
