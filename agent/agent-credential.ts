/**
 * The agent's own credential: read from `credential_file` at start, replaced by the one a
 * gateway sends in `registered` when the agent enrolls (written atomically, mode 0600), dropped
 * for one connect when a gateway rejects it (the agent then re-enrolls with its bootstrap token).
 * The credential is never logged: only its fingerprint.
 */
import { chmodSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { credentialFingerprint, looksLikeCredential } from '../shared/identity/agent-credential.js';
import type { Logger } from '../shared/logger.js';

/** The credential, or null when the file is absent, empty or does not hold one. */
export function readCredentialFile(path: string): string | null {
  let text: string;
  try {
    text = readFileSync(path, 'utf8').trim();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw err;
  }
  return looksLikeCredential(text) ? text : null;
}

/** Temp file beside it (mode 0600 from the start), then rename: never a half-written credential. */
export function writeCredentialFile(path: string, credential: string): void {
  const temp = join(dirname(path), `.${process.pid}-${Date.now()}.credential.tmp`);
  try {
    writeFileSync(temp, `${credential}\n`, { mode: 0o600, flag: 'wx' });
    chmodSync(temp, 0o600);
    renameSync(temp, path);
  } catch (err) {
    rmSync(temp, { force: true });
    throw err;
  }
}

/** The name a credential is bound to (its second field), or null if it cannot be read. */
export function credentialName(credential: string): string | null {
  const part = credential.split('.')[1];
  return part ? Buffer.from(part, 'base64url').toString('utf8') : null;
}

export class AgentCredential {
  private current: string | null = null;

  constructor(
    private readonly path: string,
    private readonly name: string,
    private readonly log: Logger,
  ) {}

  /** Reads the file; a credential of another agent name is ignored (the agent enrolls anew). */
  load(): void {
    let credential: string | null = null;
    try {
      credential = readCredentialFile(this.path);
    } catch (err) {
      this.log.warn(
        { file: this.path, err: (err as Error).message },
        'cannot read the credential file; enrolling',
      );
    }
    if (credential && credentialName(credential) !== this.name) {
      this.log.warn(
        { file: this.path, bound_to: credentialName(credential) },
        'the credential file belongs to another agent name; enrolling with the bootstrap token',
      );
      credential = null;
    }
    this.current = credential;
    if (credential)
      this.log.info(
        { file: this.path, fingerprint: credentialFingerprint(credential) },
        'using the agent credential',
      );
  }

  /** What to present on the next connect: the credential, or null for the bootstrap token. */
  bearer(): string | null {
    return this.current;
  }

  /** A gateway answered 401 `credential_rejected`: the next connect enrolls with the bootstrap token. */
  rejected(): void {
    if (this.current === null) return;
    this.log.warn(
      { file: this.path, fingerprint: credentialFingerprint(this.current) },
      'the gateway rejected this agent credential (revoked, key rotated or grant removed); re-enrolling with the bootstrap token',
    );
    this.current = null;
  }

  /** `registered` carried a new credential: keep it on disk and use it from now on. */
  enrolled(credential: string): void {
    this.current = credential;
    const fingerprint = credentialFingerprint(credential);
    try {
      writeCredentialFile(this.path, credential);
      this.log.info({ file: this.path, fingerprint }, 'enrolled: agent credential saved');
    } catch (err) {
      // Still usable for this process's reconnects; the next start enrolls again (and is refused
      // name_held until the name is released), so say so loudly.
      this.log.error(
        { file: this.path, fingerprint, err: (err as Error).message },
        'enrolled, but cannot write the credential file: fix its directory permissions before the agent restarts',
      );
    }
  }
}
