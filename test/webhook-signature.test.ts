import { createHmac } from 'node:crypto';
import t from 'tap';
import {
  detectGitProvider,
  parsePushEvent,
  verifyGithubSignature,
  verifyGitlabToken,
} from '../shared/webhook-signature.js';

const SECRET = 'It’s a Secret to Everybody';
const AFTER = '0d1a26e67d8f5eaf1f6ba5c57fc3c7d91ac0fd1c';

// Trimmed from GitHub's and GitLab's documented push payloads.
const GITHUB_PUSH = `{"ref":"refs/heads/main","before":"6113728f27ae82c7b1a177c8d03f9e96e0adf246","after":"${AFTER}","repository":{"full_name":"org/manifests"},"pusher":{"name":"octo"}}`;
const GITLAB_PUSH = `{"object_kind":"push","event_name":"push","ref":"refs/heads/release/prod","before":"95790bf891e76fee5e1747ab589903a6a1f80f22","after":"${AFTER}","checkout_sha":"${AFTER}","project":{"path_with_namespace":"org/manifests"}}`;

t.test('GitHub X-Hub-Signature-256', async (t) => {
  const body = Buffer.from(GITHUB_PUSH);
  const sig = `sha256=${createHmac('sha256', SECRET).update(body).digest('hex')}`;
  t.ok(verifyGithubSignature(SECRET, body, sig));
  t.ok(
    verifyGithubSignature(SECRET, body, sig.toUpperCase().replace('SHA256=', 'sha256=')),
    'hex case does not matter',
  );
  t.notOk(verifyGithubSignature('other secret', body, sig), 'wrong secret');
  t.notOk(verifyGithubSignature(SECRET, Buffer.from(`${GITHUB_PUSH} `), sig), 'body changed by one byte');
  t.notOk(verifyGithubSignature(SECRET, body, undefined), 'missing header');
  t.notOk(verifyGithubSignature(SECRET, body, sig.replace('sha256=', 'sha1=')), 'another algorithm');
  t.notOk(verifyGithubSignature(SECRET, body, sig.slice(0, -2)), 'truncated');
  t.notOk(verifyGithubSignature(SECRET, body, `${sig}00`), 'too long');
  t.notOk(
    verifyGithubSignature('', body, `sha256=${createHmac('sha256', '').update(body).digest('hex')}`),
    'an empty secret never verifies',
  );

  // GitHub's documented test vector (docs: "Validating webhook deliveries").
  t.ok(
    verifyGithubSignature(
      "It's a Secret to Everybody",
      Buffer.from('Hello, World!'),
      'sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17',
    ),
  );
});

t.test('GitLab X-Gitlab-Token', async (t) => {
  t.ok(verifyGitlabToken(SECRET, SECRET));
  t.notOk(verifyGitlabToken(SECRET, `${SECRET}x`));
  t.notOk(verifyGitlabToken(SECRET, SECRET.slice(1)));
  t.notOk(verifyGitlabToken(SECRET, ''));
  t.notOk(verifyGitlabToken(SECRET, undefined));
  t.notOk(verifyGitlabToken('', ''), 'an empty secret never verifies');
});

t.test('detectGitProvider', async (t) => {
  t.equal(detectGitProvider({ 'x-github-event': 'push', 'x-hub-signature-256': 'sha256=00' }), 'github');
  t.equal(detectGitProvider({ 'x-gitlab-event': 'Push Hook', 'x-gitlab-token': 't' }), 'gitlab');
  t.equal(detectGitProvider({ 'content-type': 'application/json' }), null);
});

t.test('parsePushEvent', async (t) => {
  t.same(parsePushEvent('github', GITHUB_PUSH), { ref: 'refs/heads/main', branch: 'main', after: AFTER });
  t.same(parsePushEvent('github', Buffer.from(GITHUB_PUSH)), {
    ref: 'refs/heads/main',
    branch: 'main',
    after: AFTER,
  });
  t.same(parsePushEvent('gitlab', JSON.parse(GITLAB_PUSH)), {
    ref: 'refs/heads/release/prod',
    branch: 'release/prod',
    after: AFTER,
  });
  t.equal(parsePushEvent('github', '{"zen":"Design for failure.","hook_id":1}'), null, 'ping');
  t.equal(parsePushEvent('github', GITHUB_PUSH.replace('refs/heads/main', 'refs/tags/v1')), null, 'tag push');
  t.equal(
    parsePushEvent('gitlab', GITLAB_PUSH.replace('"object_kind":"push"', '"object_kind":"tag_push"')),
    null,
  );
  t.equal(
    parsePushEvent('gitlab', GITLAB_PUSH.replace('"object_kind":"push"', '"object_kind":"merge_request"')),
    null,
  );
  t.equal(parsePushEvent('github', '{not json'), null);
  t.equal(parsePushEvent('github', '[1,2]'), null);
  t.equal(parsePushEvent('github', { ref: 'refs/heads/', after: AFTER }), null, 'empty branch');
  t.equal(parsePushEvent('github', { ref: 'refs/heads/main', after: 'not-a-sha' }), null);
  t.same(
    parsePushEvent('github', { ref: 'refs/heads/main', after: '0'.repeat(40) }),
    { ref: 'refs/heads/main', branch: 'main', after: '0'.repeat(40) },
    'a branch deletion still names the branch',
  );
});
