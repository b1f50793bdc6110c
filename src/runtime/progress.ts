/** What the runtime reports as it works: `orch run` prints these, `orch serve` streams them. */
export type ProgressEvent =
  | { kind: 'stage'; key: string; from: string; to: string }
  | { kind: 'run_started'; key: string; role: string; stage: string; runId: number; attempt: number | null }
  | {
      kind: 'run_finished';
      key: string;
      role: string;
      stage: string;
      runId: number;
      outcome: string;
      durationMs: number;
      tokens: number;
      costUsd: number | null;
    }
  | { kind: 'retry'; key: string; role: string; delayMs: number; error: string }
  | { kind: 'verdict'; key: string; attempt: number; verdict: string; diffHash: string }
  | { kind: 'gate'; key: string; name: string; passed: boolean }
  | { kind: 'waiting'; key: string; stage: string; detail: string }
  | { kind: 'escalated'; key: string; reason: string; detail: string; packetPath: string }
  | { kind: 'done'; key: string };

/**
 * Why a running job was asked to stop. `redirect`: a person's message asked to stop its run now
 * (`orch task say --now`); the stage runs again at once with it.
 */
export type AbortReason = 'shutdown' | 'cancel' | 'lease_lost' | 'reaped' | 'redirect';
