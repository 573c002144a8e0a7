/**
 * Pure parsers for the few git outputs the source reads. Kept apart from the process handling so
 * they can be tested with literal bytes.
 */

export interface TreeEntry {
  mode: string;
  type: 'blob' | 'tree' | 'commit';
  sha: string;
  /** Bytes, from `ls-tree -l`; null for trees and submodules. */
  size: number | null;
  path: string;
}

const LS_TREE_LINE = /^(\d{6}) (blob|tree|commit) ([0-9a-f]{40,64}) +(\d+|-)\t([\s\S]+)$/;

/** `git ls-tree -r -l -z <rev>`: NUL-terminated, so any path (spaces, newlines, quotes) survives. */
export function parseLsTree(output: string): TreeEntry[] {
  const entries: TreeEntry[] = [];
  for (const record of output.split('\0')) {
    if (record.length === 0) continue;
    const m = LS_TREE_LINE.exec(record);
    if (!m) throw new Error(`unexpected ls-tree output: ${JSON.stringify(record.slice(0, 200))}`);
    const [, mode, type, sha, size, path] = m;
    entries.push({
      mode: mode!,
      type: type as TreeEntry['type'],
      sha: sha!,
      size: size === '-' ? null : Number(size),
      path: path!,
    });
  }
  return entries;
}

/** Regular files only: symlinks (120000) hold a target path, not a manifest; submodules have no blob. */
export function isRegularFile(entry: TreeEntry): boolean {
  return entry.type === 'blob' && (entry.mode === '100644' || entry.mode === '100755');
}

/** One commit of `git log --first-parent --name-only -z`: the paths it changed from its first parent. */
export interface FirstParentEntry {
  revision: string;
  paths: string[];
}

/**
 * `git log --format=%x01%H --name-only -z`: per commit `\x01<sha>\0`, then (when it changed
 * anything) `\n` and NUL-terminated paths. Only a path starting with the control character \x01
 * could look like a record; its "sha" then fails the check and the whole read fails, never misleads.
 */
export function parseFirstParentLog(output: string): FirstParentEntry[] {
  const entries: FirstParentEntry[] = [];
  const body = output.startsWith('\x01') ? output.slice(1) : output;
  for (const record of body.split('\0\x01')) {
    if (record.length === 0) continue;
    const end = record.indexOf('\0');
    const revision = end < 0 ? record : record.slice(0, end);
    if (!/^[0-9a-f]{40,64}$/.test(revision)) {
      throw new Error(`unexpected git log output: ${JSON.stringify(record.slice(0, 200))}`);
    }
    let rest = end < 0 ? '' : record.slice(end + 1);
    if (rest.startsWith('\n')) rest = rest.slice(1);
    entries.push({ revision, paths: rest.split('\0').filter((path) => path.length > 0) });
  }
  return entries;
}

/**
 * `git cat-file --batch` output: for each requested object `<sha> <type> <size>\n<bytes>\n`, or
 * `<name> missing\n`. Sizes are in bytes, so this works on the raw Buffer, never on a decoded string.
 */
export function parseCatFileBatch(out: Buffer): Map<string, Buffer> {
  const objects = new Map<string, Buffer>();
  let pos = 0;
  while (pos < out.length) {
    const eol = out.indexOf(0x0a, pos);
    if (eol < 0) throw new Error('truncated cat-file header');
    const header = out.subarray(pos, eol).toString('utf8');
    const parts = header.split(' ');
    if (parts[1] === 'missing') throw new Error(`object ${parts[0]} is missing from the cache`);
    const [sha, type, sizeText] = parts;
    const size = Number(sizeText);
    if (sha === undefined || type === undefined || !Number.isInteger(size) || parts.length !== 3) {
      throw new Error(`unexpected cat-file header: ${JSON.stringify(header.slice(0, 200))}`);
    }
    const start = eol + 1;
    const end = start + size;
    if (end + 1 > out.length || out[end] !== 0x0a) throw new Error(`truncated cat-file object ${sha}`);
    objects.set(sha, out.subarray(start, end));
    pos = end + 1;
  }
  return objects;
}

/**
 * Why a `git fetch` failed, from its stderr. `null` means nothing we recognise as the remote's
 * fault, which the source treats as a possibly broken cache.
 */
export type FetchFailure = 'branch_not_found' | 'auth_failed' | 'unreachable' | 'busy';

const FETCH_FAILURES: [FetchFailure, RegExp][] = [
  ['branch_not_found', /couldn't find remote ref/i],
  ['busy', /cannot lock ref|Unable to create '.*\.lock'|\.lock': File exists/i],
  [
    'auth_failed',
    /Authentication failed|could not read (Username|Password)|Permission denied \(|HTTP Basic: Access denied|The requested URL returned error: 40[13]|terminal prompts disabled|Host key verification failed/i,
  ],
  [
    'unreachable',
    /does not appear to be a git repository|Could not read from remote repository|unable to access|Could not resolve host|Connection refused|Connection timed out|Network is unreachable|repository '.*' not found|not found: did you run git update-server-info|remote end hung up unexpectedly/i,
  ],
];

export function classifyFetchError(stderr: string): FetchFailure | null {
  for (const [kind, pattern] of FETCH_FAILURES) if (pattern.test(stderr)) return kind;
  return null;
}
