/**
 * What a config body may hold (attribute names, block types with their label counts) and the
 * check of a body against it, with a hint for the usual slip of writing a block as an attribute
 * or the other way round.
 */
import type { HclAttribute, HclBlock } from '../hcl/outline.js';

export interface BodySchema {
  attributes: readonly string[];
  /** Block type → number of labels it takes. */
  blocks: Readonly<Record<string, number>>;
  /** Extra words for an unknown name, e.g. where it belongs instead. */
  hints?: Readonly<Record<string, string>>;
}

export interface SchemaProblem {
  /** The attribute or block type at fault. */
  name: string;
  message: string;
  line: number;
}

function hint(schema: BodySchema, name: string): string {
  const h = schema.hints?.[name];
  return h ? ` (${h})` : '';
}

/** Unknown attributes, unknown blocks and wrong label counts, in source order of each kind. */
export function schemaProblems(
  body: { attributes: readonly HclAttribute[]; blocks: readonly HclBlock[] },
  schema: BodySchema,
): SchemaProblem[] {
  const out: SchemaProblem[] = [];
  for (const a of body.attributes) {
    if (schema.attributes.includes(a.name)) continue;
    const asBlock = Object.hasOwn(schema.blocks, a.name)
      ? `; ${a.name} is a block: write ${a.name} { ... }`
      : '';
    out.push({ name: a.name, message: `unknown attribute${asBlock}${hint(schema, a.name)}`, line: a.line });
  }
  for (const b of body.blocks) {
    const labels = schema.blocks[b.type];
    if (labels === undefined) {
      const asAttr = schema.attributes.includes(b.type)
        ? `; ${b.type} is an attribute: write ${b.type} = ...`
        : '';
      out.push({ name: b.type, message: `unknown block${asAttr}${hint(schema, b.type)}`, line: b.line });
    } else if (b.labels.length !== labels) {
      const want = labels === 0 ? 'no labels' : `${labels} label${labels === 1 ? '' : 's'}`;
      out.push({ name: b.type, message: `block takes ${want}, got ${b.labels.length}`, line: b.line });
    }
  }
  return out;
}
