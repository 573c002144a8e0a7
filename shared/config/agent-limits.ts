/**
 * `server { agent_limits { } }`: what one agent may declare and how fast agents may register or
 * fail to, with every default in one place (DEFAULT_AGENT_LIMITS). Documented in
 * docs/configuration.md ("Agent limits") and docs/gateway.md.
 */
import { DEFAULT_LABEL_LIMITS, type LabelLimits } from '../agent-rules.js';
import type { BodySchema, ConfigBodyReader } from './config-body-reader.js';

export interface AgentLimitsConfig extends LabelLimits {
  /** Known agents (seen within the event TTL) kept for the API; the least recently seen go first. */
  max_known_agents: number;
  /** Registrations per second from one source address, and the burst allowed at once. */
  address_registration_rate: number;
  address_registration_burst: number;
  /** Registrations per second under one token grant (an `agent_token` block, or all of `agent_tokens`). */
  grant_registration_rate: number;
  grant_registration_burst: number;
  /** Refused upgrades (missing or wrong token) per second from one address before HTTP 429. */
  failed_upgrade_rate: number;
  failed_upgrade_burst: number;
  /** Source addresses the gateway tracks for the limits above (least recently used forgotten). */
  max_tracked_addresses: number;
}

/**
 * Why these numbers: a gateway restart sends a whole fleet back at once, often from few addresses
 * (NAT, a load balancer). 10,000 agents behind one address register within about 10 s (a burst
 * of 5,000, then 500/s), and a grant takes 10,000 at once, then 1,000/s. A refused agent closes
 * with 1013 and backs off with jitter, so a larger storm spreads out instead of failing.
 */
export const DEFAULT_AGENT_LIMITS: AgentLimitsConfig = {
  ...DEFAULT_LABEL_LIMITS,
  max_known_agents: 100_000,
  address_registration_rate: 1_000,
  address_registration_burst: 10_000,
  grant_registration_rate: 2_000,
  grant_registration_burst: 20_000,
  failed_upgrade_rate: 1,
  failed_upgrade_burst: 10,
  max_tracked_addresses: 10_000,
};

/** Each attribute with its allowed range. */
const RANGES: Record<keyof AgentLimitsConfig, [number, number]> = {
  max_labels: [0, 10_000],
  max_label_bytes: [0, 1_048_576],
  max_known_agents: [1, 100_000_000],
  address_registration_rate: [1, 1_000_000],
  address_registration_burst: [1, 1_000_000],
  grant_registration_rate: [1, 1_000_000],
  grant_registration_burst: [1, 1_000_000],
  failed_upgrade_rate: [1, 1_000_000],
  failed_upgrade_burst: [1, 1_000_000],
  max_tracked_addresses: [1, 10_000_000],
};

export const AGENT_LIMITS_SCHEMA: BodySchema = { attributes: Object.keys(RANGES), blocks: {} };

export function readAgentLimits(r: ConfigBodyReader): AgentLimitsConfig {
  const out = { ...DEFAULT_AGENT_LIMITS };
  for (const [name, [min, max]] of Object.entries(RANGES) as [keyof AgentLimitsConfig, [number, number]][]) {
    out[name] = r.integer(name, min, max) ?? DEFAULT_AGENT_LIMITS[name];
  }
  return out;
}
