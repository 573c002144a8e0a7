/**
 * The outline of an HCL file: its blocks and attributes in source order, each with its line and
 * column, which @cdktf/hcl2json's JSON (sorted keys, no positions) loses. hcl-scanner.ts finds
 * them; this shapes them for config readers.
 */
import { type OutlineItem, scanHcl } from './hcl-scanner.js';

export { HclSyntaxError, MAX_HCL_NESTING, type OutlineItem, scanHcl } from './hcl-scanner.js';

export interface HclAttribute {
  name: string;
  /** 1-based. */
  line: number;
  /** 1-based, in UTF-16 code units. */
  column: number;
}

export interface HclBlock {
  type: string;
  labels: string[];
  line: number;
  column: number;
  /** Line of the closing brace. */
  endLine: number;
  attributes: HclAttribute[];
  blocks: HclBlock[];
}

export interface HclOutline {
  attributes: HclAttribute[];
  blocks: HclBlock[];
}

function toOutline(items: OutlineItem[]): HclOutline {
  const attributes: HclAttribute[] = [];
  const blocks: HclBlock[] = [];
  for (const item of items) {
    if (item.kind === 'attribute') {
      attributes.push({ name: item.name, line: item.line, column: item.column });
    } else {
      const inner = toOutline(item.items);
      blocks.push({
        type: item.type,
        labels: item.labels,
        line: item.line,
        column: item.column,
        endLine: item.endLine,
        attributes: inner.attributes,
        blocks: inner.blocks,
      });
    }
  }
  return { attributes, blocks };
}

/** Blocks and attributes of an HCL file in source order with positions. Throws HclSyntaxError. */
export function outlineHcl(source: string): HclOutline {
  return toOutline(scanHcl(source));
}
