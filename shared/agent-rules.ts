/**
 * What an agent may call itself and which labels it may declare: one rule for the agent's config
 * loader, the wire schema (shared/protocol.ts) and the gateway's registration, so a valid agent
 * config is never refused by a gateway running the default limits. Pure; documented in
 * docs/protocol.md ("Names and labels") and docs/configuration.md (`agent_limits`).
 */
import type { Labels } from './types.js';

/**
 * Agent names end up in Redis keys (inside `{a:<name>}` hash tags), URLs and logs: letters,
 * digits, '.', '_' and '-', starting with a letter or digit, at most 253 characters, and no `..`.
 * Every host name fits.
 */
export const AGENT_NAME = /^(?!.*\.\.)[A-Za-z0-9][A-Za-z0-9._-]{0,252}$/;
export const AGENT_NAME_RULE =
  "1-253 letters, digits, '.', '_' or '-', starting with a letter or digit, without '..'";

/** Kubernetes-style label key name: at most 63, alphanumeric at both ends, `-_.` inside. */
const KEY_NAME = /^[A-Za-z0-9](?:[A-Za-z0-9._-]{0,61}[A-Za-z0-9])?$/;
/** Optional key prefix: a DNS subdomain (lower case), at most 253. */
const KEY_PREFIX = /^[a-z0-9](?:[a-z0-9-]*[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]*[a-z0-9])?)*$/;
export const MAX_LABEL_KEY_PREFIX = 253;
export const MAX_LABEL_VALUE = 253;
export const LABEL_KEY_RULE =
  "an optional DNS-subdomain prefix and '/', then 1-63 letters, digits, '-', '_' or '.', starting and ending with a letter or digit";
export const LABEL_VALUE_RULE = `at most ${MAX_LABEL_VALUE} characters, no control characters`;

/** C0 controls, DEL and C1 controls (ANSI escapes start with ESC or CSI). */
// biome-ignore lint/suspicious/noControlCharactersInRegex: matching control characters is the point
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/;
/** The same characters, every occurrence (for masking). */
// biome-ignore lint/suspicious/noControlCharactersInRegex: matching control characters is the point
export const CONTROL_CHARACTERS = /[\u0000-\u001f\u007f-\u009f]/g;

export function hasControlCharacters(text: string): boolean {
  return CONTROL.test(text);
}

export function isAgentName(name: string): boolean {
  return AGENT_NAME.test(name);
}

export function isLabelKey(key: string): boolean {
  const slash = key.indexOf('/');
  if (slash === -1) return KEY_NAME.test(key);
  const prefix = key.slice(0, slash);
  return (
    prefix.length <= MAX_LABEL_KEY_PREFIX && KEY_PREFIX.test(prefix) && KEY_NAME.test(key.slice(slash + 1))
  );
}

export function isLabelValue(value: string): boolean {
  return value.length <= MAX_LABEL_VALUE && !hasControlCharacters(value);
}

/** The configurable bounds on what one agent declares (server `agent_limits`). */
export interface LabelLimits {
  /** Most labels one agent may declare. */
  max_labels: number;
  /** Most bytes (UTF-8, keys plus values) of one agent's labels. */
  max_label_bytes: number;
}

export const DEFAULT_LABEL_LIMITS: LabelLimits = { max_labels: 64, max_label_bytes: 8192 };

/** UTF-8 bytes of every key and value. */
export function labelBytes(labels: Labels): number {
  let total = 0;
  for (const [key, value] of Object.entries(labels)) {
    total += Buffer.byteLength(key, 'utf8') + Buffer.byteLength(value, 'utf8');
  }
  return total;
}

/** Shown in logs and refusals: never more than this many characters of what an agent sent. */
function shown(text: string): string {
  return JSON.stringify(text.length > 64 ? `${text.slice(0, 64)}…` : text);
}

/**
 * Why these labels break the rule or the limits, naming the rule or the limit; null when fine.
 * Counts are checked before anything is scanned, so a flood costs one pass over its keys at most.
 */
export function labelsProblem(labels: Labels, limits: LabelLimits = DEFAULT_LABEL_LIMITS): string | null {
  const keys = Object.keys(labels);
  if (keys.length > limits.max_labels) {
    return `too many labels: ${keys.length} (max_labels = ${limits.max_labels})`;
  }
  for (const key of keys) {
    if (!isLabelKey(key)) return `label key ${shown(key)} is invalid: ${LABEL_KEY_RULE}`;
    if (!isLabelValue(labels[key] as string)) {
      return `label ${shown(key)} has an invalid value: ${LABEL_VALUE_RULE}`;
    }
  }
  const bytes = labelBytes(labels);
  if (bytes > limits.max_label_bytes) {
    return `labels too large: ${bytes} bytes (max_label_bytes = ${limits.max_label_bytes})`;
  }
  return null;
}

/** Why this agent name breaks the rule; null when fine. */
export function agentNameProblem(name: string): string | null {
  return isAgentName(name) ? null : `agent name ${shown(name)} is invalid: ${AGENT_NAME_RULE}`;
}
