/**
 * Why an agent refused an instruction, as a code. Agents send `code` with every refusal; before
 * they did, the reconciler read it from the human text. That reading lives here and only here,
 * for receipts without a code (an older agent, or a code this build does not know).
 */
import type { InstructionReceiptMessage, RefusalCode } from './protocol.js';

/** The refusal's code; null when a codeless reason says nothing the reconciler acts on. */
export function refusalCode(receipt: Pick<InstructionReceiptMessage, 'code' | 'reason'>): RefusalCode | null {
  if (receipt.code !== undefined) return receipt.code;
  const reason = receipt.reason ?? '';
  // The texts agent/admission.ts has always written for these two.
  if (reason.startsWith('duplicate')) return 'duplicate';
  if (reason.includes('already executing')) return 'busy';
  return null;
}
