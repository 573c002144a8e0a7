/**
 * `POST /api/v1/webhooks/git`: a GitHub or GitLab push hook. Mounted only with
 * `server.git.webhook_secret`; authenticated by the provider's signature (GitHub HMAC of the raw
 * body) or token (GitLab), never by an API token. A push to the tracked branch asks for a poll
 * at once; the poll, not the payload, decides what the new commit is.
 */
import type { Logger } from 'pino';
import {
  detectGitProvider,
  type GitProvider,
  type PushEvent,
  parsePushEvent,
  verifyGithubSignature,
  verifyGitlabToken,
} from '../shared/webhook-signature.js';
import { jsonBody } from './json-body.js';
import { HttpError, type HttpRequest, type HttpResponse, type Router } from './router.js';

export interface WebhookDeps {
  /** `server.git.webhook_secret`; null turns the route into 404 `webhooks_disabled`. */
  secret: string | null;
  /** `server.git.branch`. */
  branch: string;
  /** Enqueue a poll now (deduplicated per pushed commit). */
  requestPoll(push: PushEvent & { provider: GitProvider }): Promise<void>;
  logger: Logger;
}

/** Push payloads list commits and files: far larger than API bodies, still bounded. */
export const WEBHOOK_MAX_BODY_BYTES = 1024 * 1024;

const PUSH_EVENTS: Record<GitProvider, string> = { github: 'push', gitlab: 'Push Hook' };

export function mountWebhookRoutes(router: Router, deps: WebhookDeps): void {
  router.post('/api/v1/webhooks/git', (req) => handleWebhook(req, deps), {
    maxBodyBytes: WEBHOOK_MAX_BODY_BYTES,
  });
}

async function handleWebhook(req: HttpRequest, deps: WebhookDeps): Promise<HttpResponse> {
  const secret = deps.secret;
  if (!secret) {
    throw new HttpError(
      404,
      'webhooks_disabled',
      'git webhooks are off: set server.git.webhook_secret to enable them',
    );
  }
  const provider = detectGitProvider(req.headers);
  if (!provider) {
    throw new HttpError(
      400,
      'bad_request',
      'not a GitHub or GitLab hook: no X-GitHub-Event or X-Gitlab-Event',
    );
  }
  // Signature first: an unauthenticated caller learns nothing about what we would accept.
  const raw = req.body ?? Buffer.alloc(0);
  const genuine =
    provider === 'github'
      ? verifyGithubSignature(secret, raw, req.headers['x-hub-signature-256'])
      : verifyGitlabToken(secret, req.headers['x-gitlab-token']);
  if (!genuine) {
    const what = provider === 'github' ? 'X-Hub-Signature-256' : 'X-Gitlab-Token';
    throw new HttpError(401, 'bad_signature', `${what} does not match server.git.webhook_secret`);
  }
  const body = jsonBody(req, 'send the hook as JSON (GitHub: Content type application/json)');
  const event = req.headers[provider === 'github' ? 'x-github-event' : 'x-gitlab-event'];
  const ignored = (reason: string): HttpResponse => ({ status: 202, json: { triggered: false, reason } });
  if (event !== PUSH_EVENTS[provider]) return ignored(`${provider} event "${event}" is not a push`);
  const push = parsePushEvent(provider, body);
  if (!push) return ignored('not a branch push');
  if (push.branch !== deps.branch)
    return ignored(`branch "${push.branch}" is not the tracked "${deps.branch}"`);
  await deps.requestPoll({ ...push, provider });
  deps.logger.info({ provider, branch: push.branch, after: push.after }, 'push webhook: poll requested');
  return { status: 202, json: { triggered: true } };
}
