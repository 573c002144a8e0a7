/** One problem in a config file, located for the operator. `line` 0 means the file as a whole. */
export interface ConfigIssue {
  file: string;
  line: number;
  /** Dotted field path, e.g. `server.git.poll_interval`; empty for syntax errors. */
  field: string;
  message: string;
}

export function formatConfigIssue(issue: ConfigIssue): string {
  const where = issue.line > 0 ? `${issue.file}:${issue.line}` : issue.file;
  return issue.field ? `${where}: ${issue.field}: ${issue.message}` : `${where}: ${issue.message}`;
}

/** Every problem found in a config file, reported together so one edit can fix them all. */
export class ConfigError extends Error {
  readonly errors: ConfigIssue[];
  constructor(errors: ConfigIssue[]) {
    const sorted = [...errors].sort((a, b) => a.line - b.line);
    const noun = sorted.length === 1 ? 'error' : 'errors';
    super(
      `invalid config (${sorted.length} ${noun}):\n${sorted.map((e) => `  ${formatConfigIssue(e)}`).join('\n')}`,
    );
    this.name = 'ConfigError';
    this.errors = sorted;
  }
}
