/**
 * The registry's read port, for reconcilers and the HTTP API (the gateway writes through
 * registry.ts).
 *
 * Glossary: the *agent index* lists connected agents (an entry older than a few heartbeats is
 * certainly expired and pruned on read); *known* agents are every agent seen within the
 * retention window, with the labels they last registered with, so a host that disconnected still
 * shows up (and is pruned on read once it ages out).
 */
import type { RegistryEntry } from '../../shared/registry-entry.js';
import type { Labels } from '../../shared/types.js';

export interface AgentDirectory {
  get(name: string): Promise<RegistryEntry | null>;
  /** Names in the agent index (connected, or expired but not yet pruned). */
  names(): Promise<string[]>;
  /** Registry entries of every connected agent, sorted by name. */
  list(): Promise<RegistryEntry[]>;
  /** Every agent seen within the retention window: name → last-seen ms. */
  known(): Promise<Map<string, number>>;
  /** The labels these known agents last registered with, in one round trip; names with none are absent. */
  knownLabels(names: readonly string[]): Promise<Map<string, Labels>>;
}
