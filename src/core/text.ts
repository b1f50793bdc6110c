/**
 * Task text from people and trackers: titles and descriptions reach agents
 * as argv and prompt files, and terminals as printed lines. NUL cannot be in
 * an argument at all, and other control characters (escape sequences) would
 * drive the terminal of whoever reads `orch task list`.
 */
export const MAX_TITLE_CHARS = 500;
export const MAX_DESCRIPTION_CHARS = 50_000;

/** C0 controls and DEL, except tab, newline and carriage return. */
// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f]/g;

export const hasControlCharacters = (text: string): boolean => new RegExp(CONTROL.source).test(text);

/** The text without control characters, cut to `max` characters: for what a tracker sends. */
export const cleanText = (text: string, max: number): string => text.replace(CONTROL, '').slice(0, max);
