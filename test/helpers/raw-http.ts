/**
 * Raw HTTP over a fresh TCP socket, for what fetch cannot send: HTTP/1.0 and Host-less probes, a
 * PROXY protocol v2 header, a chosen source address, a WebSocket upgrade read as a status line.
 */
import { connect } from 'node:net';

/** One request on a fresh socket (from `localAddress` if given): what came back, and whether it closed. */
export function rawExchange(
  host: string,
  port: number,
  request: string | Buffer,
  opts: { localAddress?: string; untilClosed?: boolean } = {},
): Promise<{ text: string; closed: boolean }> {
  return new Promise((resolve, reject) => {
    const s = connect({ host, port, ...(opts.localAddress ? { localAddress: opts.localAddress } : {}) });
    let text = '';
    s.on('connect', () => s.write(request));
    s.on('data', (d: Buffer) => {
      text += d.toString('latin1');
      // A status line and its headers are all these requests need.
      if (!opts.untilClosed && text.includes('\r\n\r\n')) {
        s.destroy();
        resolve({ text, closed: false });
      }
    });
    s.on('close', () => resolve({ text, closed: true }));
    s.on('error', reject);
    s.setTimeout(60_000, () => s.destroy(new Error(`no answer from ${host}:${port}`)));
  });
}

export const statusOf = (text: string): number => Number(/^HTTP\/1\.1 (\d{3})/.exec(text)?.[1] ?? 0);

/** A WebSocket upgrade to /agent with this bearer token and any extra header lines. */
export function upgradeRequest(token: string, extra: string[] = []): string {
  return [
    'GET /agent HTTP/1.1',
    'Host: fluke',
    'Upgrade: websocket',
    'Connection: Upgrade',
    'Sec-WebSocket-Version: 13',
    'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==',
    `Authorization: Bearer ${token}`,
    ...extra,
    '',
    '',
  ].join('\r\n');
}

/** PROXY protocol v2, PROXY command, TCP over IPv4: `src:srcPort` → `dst:dstPort`. */
export function proxyV2Header(src: string, srcPort: number, dst = '127.0.0.1', dstPort = 7070): Buffer {
  const signature = Buffer.from('0d0a0d0a000d0a515549540a', 'hex');
  const body = Buffer.alloc(12);
  Buffer.from(src.split('.').map(Number)).copy(body, 0);
  Buffer.from(dst.split('.').map(Number)).copy(body, 4);
  body.writeUInt16BE(srcPort, 8);
  body.writeUInt16BE(dstPort, 10);
  return Buffer.concat([signature, Buffer.from([0x21, 0x11, 0x00, 0x0c]), body]);
}
