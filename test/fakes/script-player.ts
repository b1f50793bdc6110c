/**
 * The script a fake model server plays: one or more conversations, each a
 * list of turns, picked per request by a marker in the request's messages
 * (put it in the task description: orch's prompt carries it, commit messages
 * do not). Faults of a turn are served one per request before its reply, so
 * a CLI that retries sees the fault, then the reply.
 */

/** One scripted conversation. */
export interface Conversation<Turn, Fault> {
  /** Text that must occur in the request's messages; omitted matches any request. */
  match?: string;
  turns: Turn[];
  /** Served to every request of this conversation instead of any turn (e.g. a 500 forever). */
  always?: Fault;
}

export type Pick<Turn, Fault> =
  | { kind: 'turn'; conversation: number; turn: Turn }
  | { kind: 'fault'; conversation: number; fault: Fault }
  /** Past the last scripted turn: the fake answers with plain text, which ends the conversation. */
  | { kind: 'beyond'; conversation: number }
  | { kind: 'unmatched' };

export class ScriptPlayer<Turn extends { faults?: Fault[] }, Fault> {
  #conversations: Conversation<Turn, Fault>[] = [];
  #faultsServed = new Map<string, number>();

  /** Replaces the script and forgets the faults served. */
  play(script: Conversation<Turn, Fault> | Conversation<Turn, Fault>[]): void {
    this.#conversations = Array.isArray(script) ? script : [script];
    this.#faultsServed.clear();
  }

  /** What to serve for turn `turnIndex` of the conversation whose messages are `messagesText`. */
  pick(messagesText: string, turnIndex: number): Pick<Turn, Fault> {
    const index = this.#conversations.findIndex(
      (c) => c.match === undefined || messagesText.includes(c.match),
    );
    const conversation = this.#conversations[index];
    if (!conversation) return { kind: 'unmatched' };
    if (conversation.always) return { kind: 'fault', conversation: index, fault: conversation.always };
    const turn = conversation.turns[turnIndex];
    if (!turn) return { kind: 'beyond', conversation: index };
    const key = `${index}:${turnIndex}`;
    const served = this.#faultsServed.get(key) ?? 0;
    const fault = turn.faults?.[served];
    if (fault) {
      this.#faultsServed.set(key, served + 1);
      return { kind: 'fault', conversation: index, fault };
    }
    return { kind: 'turn', conversation: index, turn };
  }
}
