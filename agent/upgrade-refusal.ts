/** A gateway's refused WebSocket upgrade: its status and the `code` of its JSON body. */
import type { IncomingMessage } from 'node:http';

/** Most body text read from a refusal (the gateway's are a few dozen bytes). */
const MAX_BODY = 4096;

/** Reads the body (bounded), then calls `done` once with the status and the body's `code`, if any. */
export function readUpgradeRefusal(
  res: IncomingMessage,
  done: (status: number, code: string | null) => void,
): void {
  let body = '';
  let called = false;
  res.on('data', (chunk: Buffer) => {
    if (body.length < MAX_BODY) body += chunk.toString('utf8');
  });
  const finish = () => {
    if (called) return;
    called = true;
    done(res.statusCode ?? 0, upgradeCode(body));
  };
  res.on('end', finish);
  res.on('error', finish);
}

function upgradeCode(body: string): string | null {
  try {
    const code = (JSON.parse(body) as { code?: unknown }).code;
    return typeof code === 'string' ? code : null;
  } catch {
    return null;
  }
}
