/**
 * `$NAME` / `${NAME}` substitution for config values (never manifests).
 *
 * It runs on strings as @cdktf/hcl2json returns them, which is Terraform's JSON template form:
 * escapes like `\"` are already decoded, an interpolation stays `${...}`, and HCL's own escapes
 * `$${` and `%%{` stay doubled. So `$$` → `$` here covers both the config language's `$$` and HCL's `$${`.
 */

export type Env = Readonly<Record<string, string | undefined>>;

export type Substitution = { ok: true; value: string } | { ok: false; problems: string[] };

const NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
const NAME_AT = /[A-Za-z_][A-Za-z0-9_]*/y;

/** Replaces environment references in `text`; every unset variable and bad reference is a problem. */
export function substituteEnv(text: string, env: Env): Substitution {
  if (!text.includes('$') && !text.includes('%{')) return { ok: true, value: text };
  const problems: string[] = [];
  let out = '';
  let i = 0;
  const lookup = (name: string): void => {
    const value = env[name];
    if (value === undefined) problems.push(`environment variable ${name} is not set`);
    else out += value;
  };
  while (i < text.length) {
    const c = text[i];
    const next = text[i + 1];
    if (c === '$' && next === '$') {
      out += '$';
      i += 2;
    } else if (c === '%' && next === '%' && text[i + 2] === '{') {
      out += '%{';
      i += 3;
    } else if (c === '%' && next === '{') {
      problems.push(
        'template directives (%{ ... }) are not supported in config files; write %%{ for a literal',
      );
      i += 2;
    } else if (c === '$' && next === '{') {
      const end = text.indexOf('}', i + 2);
      const inner = end < 0 ? text.slice(i + 2) : text.slice(i + 2, end);
      if (end >= 0 && NAME.test(inner)) lookup(inner);
      else {
        problems.push(
          `only environment references like \${NAME} are allowed in config files, not \${${inner}}; write $\${ for a literal`,
        );
      }
      i = end < 0 ? text.length : end + 1;
    } else if (c === '$') {
      NAME_AT.lastIndex = i + 1;
      const m = NAME_AT.exec(text);
      if (m) {
        lookup(m[0]);
        i += 1 + m[0].length;
      } else {
        // A `$` not starting a name is kept, so "cost: 5$" needs no escaping.
        out += '$';
        i++;
      }
    } else {
      out += c;
      i++;
    }
  }
  return problems.length > 0 ? { ok: false, problems } : { ok: true, value: out };
}
