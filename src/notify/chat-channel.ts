/**
 * The flow the chat channels (Telegram, Slack) share: one message per task,
 * sent once and then edited in place with the task's tracker message on every
 * routed event (sent anew when it is gone or orch.yaml names another
 * destination); when the task escalates, a second message with the reason and
 * the terminal packet. Each service passes in its own calls and answers.
 *
 * At least once: the message's ref is saved right after the service answers
 * the send, so a retry edits that message rather than sending a second one.
 */
import type { Channel, Delivery, DeliveryTools } from './channel.ts';
import { escalationText, escalationToAnnounce } from './chat-text.ts';
import type { Locale } from './tracker.ts';

/**
 * What a chat channel keeps per task: where its message is (the service's own
 * fields), and the escalation it last announced.
 */
export interface ChatRef {
  escalation?: string;
}

/** A chat service's own calls. Each throws a DeliveryError when the service refuses or fails. */
export interface ChatService<Ref extends ChatRef> {
  id: string;
  kind: string;
  events: ReadonlySet<string>;
  /** The service's text limit, which the escalation message is cut to. */
  limit: number;
  /** `text` as the service takes it: cut to the limit (and escaped, where the service needs it). */
  fit(text: string, locale: Locale): string;
  /** Sends a new tracker message; answers where it is. */
  send(text: string): Promise<Ref>;
  /** Whether `ref`'s message is in the destination orch.yaml names now. */
  isCurrent(ref: Ref): boolean;
  /** Edits `ref`'s message in place; answers why not when the message is gone (deleted, out of reach). */
  edit(ref: Ref, text: string): Promise<'edited' | { gone: string }>;
  /** Sends the escalation message beside the tracker message `ref`. */
  sendEscalation(ref: Ref, text: string): Promise<void>;
}

export function createChatChannel<Ref extends ChatRef>(service: ChatService<Ref>): Channel {
  /** Sends the tracker message and saves where it is at once (see the file's comment). */
  async function sendTracker(text: string, tools: DeliveryTools, escalation?: string): Promise<Ref> {
    const ref: Ref = { ...(await service.send(text)), ...(escalation ? { escalation } : {}) };
    await tools.setRef(ref);
    return ref;
  }

  /** Edits the task's message; sends a new one when the old one is gone or the destination changed. */
  async function showTracker(key: string, tools: DeliveryTools): Promise<Ref> {
    const text = service.fit(await tools.message(), tools.locale);
    const ref = await tools.getRef<Ref>();
    if (!ref || !service.isCurrent(ref)) return sendTracker(text, tools);
    const edit = await service.edit(ref, text);
    if (edit === 'edited') return ref;
    tools.log.info(
      `${service.kind} ${service.id}: the message of ${key} is gone (${edit.gone}); sending anew`,
    );
    return sendTracker(text, tools, ref.escalation);
  }

  return {
    id: service.id,
    kind: service.kind,
    events: service.events,
    coalesce: true,
    async deliver(d: Delivery, tools: DeliveryTools) {
      const ref = await showTracker(d.task.key, tools);
      const escalation = escalationToAnnounce(d.task, service.events, ref.escalation);
      if (!escalation) return;
      const text = escalationText(d.task, await tools.terminalPacket(), {
        locale: tools.locale,
        taskUrl: tools.taskUrl,
        limit: service.limit,
      });
      await service.sendEscalation(ref, service.fit(text, tools.locale));
      await tools.setRef({ ...ref, escalation });
    },
  };
}
