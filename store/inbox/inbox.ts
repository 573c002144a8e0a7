/**
 * The gateway inbox port: how instructions and kicks reach the gateway that holds an agent.
 *
 * Glossary: each gateway has one *inbox*, read by that gateway alone, in order, from the moment
 * it starts *listening*; a *send* appends one or more texts (kept together, in order). A send
 * with `aliveSince` is delivered only to a gateway that *announced* itself (Registry.announce)
 * since then, so an instruction for a gateway that is gone is reported undeliverable at once.
 */
export interface GatewayInbox {
  /** Appends the texts to the gateway's inbox; false when `aliveSince` ruled the gateway gone. */
  send(gatewayId: string, text: string | readonly string[], aliveSince?: number | null): Promise<boolean>;
  /** Reads the gateway's inbox from now on until the returned stop is called. */
  listen(gatewayId: string, onMessage: (text: string) => void): Promise<() => Promise<void>>;
}
