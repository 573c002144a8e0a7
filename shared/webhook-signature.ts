/**
 * Checks for `POST /api/v1/webhooks/git` (GitHub and GitLab push hooks), pure so the route stays
 * a thin wrapper. Comparisons are constant time: a timing difference would let a caller guess
 * the signature or token byte by byte.
 */
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';

export type GitProvider = 'github' | 'gitlab';

export interface PushEvent {
  /** The full ref, e.g. `refs/heads/main`. */
  ref: string;
  /** `main` for `refs/heads/main`. */
  branch: string;
  /** The commit the branch now points at (all zeros when the branch was deleted). */
  after: string;
}

type Headers = Record<string, string | string[] | undefined>;

function header(headers: Headers, name: string): string | undefined {
  const value = headers[name] ?? headers[name.toLowerCase()];
  return Array.isArray(value) ? value[0] : value;
}

/**
 * Which provider sent a request, from its headers (lower-case keys, as node:http gives them).
 * GitHub sends `x-github-event`, GitLab `x-gitlab-event`; null for anything else.
 */
export function detectGitProvider(headers: Headers): GitProvider | null {
  if (header(headers, 'x-github-event') !== undefined) return 'github';
  if (header(headers, 'x-gitlab-event') !== undefined) return 'gitlab';
  return null;
}

/** GitHub `X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the raw body>`. */
export function verifyGithubSignature(
  secret: string,
  rawBody: Buffer,
  signatureHeader: string | undefined,
): boolean {
  if (secret.length === 0 || signatureHeader === undefined) return false;
  const match = /^sha256=([0-9a-fA-F]{64})$/.exec(signatureHeader.trim());
  if (!match) return false;
  const given = Buffer.from(match[1]!.toLowerCase(), 'hex');
  const expected = createHmac('sha256', secret).update(rawBody).digest();
  return timingSafeEqual(given, expected);
}

/**
 * GitLab `X-Gitlab-Token`: the secret itself. Both sides are hashed first so the comparison takes
 * the same time whatever the lengths (timingSafeEqual needs equal lengths, and an early length
 * check would leak the secret's length).
 */
export function verifyGitlabToken(secret: string, tokenHeader: string | undefined): boolean {
  if (secret.length === 0 || tokenHeader === undefined) return false;
  const digest = (s: string) => createHash('sha256').update(s, 'utf8').digest();
  return timingSafeEqual(digest(tokenHeader), digest(secret));
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * The branch and new commit of a push, or null when the body is not a branch push (a GitHub
 * `ping`, a tag push, another GitLab hook kind, malformed JSON).
 * `body` is the parsed JSON, or the raw text/Buffer.
 */
export function parsePushEvent(provider: GitProvider, body: unknown): PushEvent | null {
  let data = body;
  if (typeof body === 'string' || Buffer.isBuffer(body)) {
    try {
      data = JSON.parse(body.toString());
    } catch {
      return null;
    }
  }
  if (!isRecord(data)) return null;
  if (provider === 'gitlab' && data.object_kind !== undefined && data.object_kind !== 'push') return null;
  const { ref, after } = data;
  if (typeof ref !== 'string' || typeof after !== 'string') return null;
  if (!ref.startsWith('refs/heads/') || ref.length === 'refs/heads/'.length) return null;
  if (!/^[0-9a-f]{40}([0-9a-f]{24})?$/.test(after)) return null;
  return { ref, branch: ref.slice('refs/heads/'.length), after };
}
