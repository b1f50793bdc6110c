/**
 * The reduction every forge adapter shares: many CI signals (check runs,
 * commit statuses) into the one `CiState` a gate reads, with a summary that
 * names what failed or is still running.
 */
import type { CiState } from './types.ts';

/** One CI signal reduced to pass, fail or wait. */
export interface CiSignal {
  name: string;
  outcome: 'passed' | 'failed' | 'pending';
}

/** Any failure fails, else anything unfinished is pending, else success; nothing at all is `none`. */
export function combineSignals(signals: CiSignal[]): { state: CiState; summary: string } {
  if (signals.length === 0) return { state: 'none', summary: 'no checks or statuses' };
  const named = (o: CiSignal['outcome']) => signals.filter((s) => s.outcome === o).map((s) => s.name);
  const failed = named('failed');
  const pending = named('pending');
  const parts = [
    ...(failed.length > 0 ? [`failing: ${failed.join(', ')}`] : []),
    ...(pending.length > 0 ? [`pending: ${pending.join(', ')}`] : []),
  ];
  if (failed.length > 0) return { state: 'failure', summary: parts.join('; ') };
  if (pending.length > 0) return { state: 'pending', summary: parts.join('; ') };
  return { state: 'success', summary: `${signals.length} passed: ${signals.map((s) => s.name).join(', ')}` };
}
