/** Cutting chat texts to a service's limit, and when an escalation is still to announce. */
import { describe, expect, it } from 'vitest';
import { escalationId, escalationToAnnounce, truncate } from '../../src/notify/chat-text.ts';
import { slackText } from '../../src/notify/slack-channel.ts';
import { ALL_EVENTS } from './chat-kit.ts';

describe('truncate', () => {
  it('leaves a text within the limit as it is', () => {
    expect(truncate('short', 5)).toBe('short');
  });

  it('cuts to the limit, marker included, in the locale', () => {
    expect(truncate('a'.repeat(50), 20)).toBe(`${'a'.repeat(7)}… [truncated]`);
    expect(truncate('a'.repeat(50), 20, 'ru')).toBe(`${'a'.repeat(8)}… [обрезано]`);
  });

  it('never splits a surrogate pair', () => {
    // The cut would fall between the two halves of the second emoji.
    const cut = truncate(`a${'🔁'.repeat(20)}`, 4 + '… [truncated]'.length);
    expect(cut).toBe('a🔁… [truncated]');
    expect(cut.isWellFormed()).toBe(true);
  });
});

describe('slackText', () => {
  it('fits the escaped text in the limit', () => {
    const text = slackText('<&>'.repeat(100), 100, 'en');
    expect(text.length).toBeLessThanOrEqual(100);
    expect(text).toMatch(/^(&lt;&amp;&gt;)+.*… \[truncated\]$/);
    expect(slackText('a < b', 100, 'en')).toBe('a &lt; b');
  });
});

describe('escalationToAnnounce', () => {
  const escalated = {
    status: 'escalated' as const,
    terminal_reason: 'max_attempts' as const,
    finished_at: '2026-06-14T10:00:00Z',
  };

  it('is the escalation of an escalated task not announced yet', () => {
    expect(escalationToAnnounce(escalated, ALL_EVENTS, undefined)).toBe(escalationId(escalated));
  });

  it('is null once announced, for a task not escalated, or a channel not routed `escalated`', () => {
    expect(escalationToAnnounce(escalated, ALL_EVENTS, escalationId(escalated)!)).toBeNull();
    expect(escalationToAnnounce({ ...escalated, status: 'running' }, ALL_EVENTS, undefined)).toBeNull();
    expect(escalationToAnnounce(escalated, new Set(['stage_changed']), undefined)).toBeNull();
  });

  it('tells a new escalation of a retried task from the old one', () => {
    const again = { ...escalated, finished_at: '2026-06-14T12:00:00Z' };
    expect(escalationToAnnounce(again, ALL_EVENTS, escalationId(escalated)!)).toBe(escalationId(again));
  });
});
