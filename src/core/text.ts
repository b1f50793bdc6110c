/**
 * Text from outside orch on its way in and out. Titles and descriptions reach
 * agents as argv and prompt files, and terminals as printed lines: NUL cannot
 * be in an argument at all, and control characters (escape sequences) would
 * drive the terminal of whoever reads `orch task list`. What an agent, a
 * tracker or a webhook wrote is shown through {@link terminalSafe}: stored as
 * it came, neutralised only where a terminal would act on it.
 */
export const MAX_TITLE_CHARS = 500;
export const MAX_DESCRIPTION_CHARS = 50_000;
/** A person's message to a task (`orch task say`). */
export const MAX_MESSAGE_CHARS = 10_000;

/** C0 controls, DEL and C1 (8-bit CSI and the rest), except tab, newline and carriage return. */
// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f-\u009f]/g;

export const hasControlCharacters = (text: string): boolean => new RegExp(CONTROL.source).test(text);

/** The text without control characters, cut to `max` characters: for what a tracker sends. */
export const cleanText = (text: string, max: number): string => text.replace(CONTROL, '').slice(0, max);

/**
 * Everything a terminal acts on, in the order a terminal parses it:
 * - a control string (OSC `ESC ]`, DCS `ESC P`, SOS `ESC X`, PM `ESC ^`, APC `ESC _`, or their
 *   one-character C1 forms) up to its terminator (BEL, `ESC \` or C1 ST) or, unterminated, to the
 *   end of the text: window titles, OSC 52 clipboard writes, hyperlinks, sixel images;
 * - a CSI sequence (`ESC [` or C1 CSI, parameters, intermediates, a final byte): colours, cursor
 *   moves, clear screen, device queries whose answers the terminal would type into the shell;
 * - any other escape sequence (`ESC`, intermediates, a final byte: `ESC c` resets the terminal);
 * - what is left: a lone ESC, a carriage return not before a newline (it would let the next
 *   text overwrite the line on screen), other C0 controls but tab and newline (backspace erases
 *   what was shown), DEL, C1.
 */
const TERMINAL_CONTROL =
  // eslint-disable-next-line no-control-regex
  /(?:\u001b[\]PX^_]|[\u0090\u0098\u009d\u009e\u009f])[^\u0007\u001b\u009c]*(?:\u0007|\u001b\\|\u009c|(?=\u001b)|$)|(?:\u001b\[|\u009b)[\u0030-\u003f]*[\u0020-\u002f]*[\u0040-\u007e]?|\u001b[\u0020-\u002f]*[\u0030-\u007e]?|\r(?!\n)|[\u0000-\u0008\u000b-\u000c\u000e-\u001f\u007f-\u009f]/g;

/** What a neutralised lone control character is shown as. */
export const REPLACEMENT = '\ufffd';

/**
 * `text` as a terminal may show it: escape sequences removed whole (so neither their effect nor
 * their parameters appear), a carriage return not before a newline made a newline (a progress
 * bar's updates show one under the other), other control characters but newline and tab shown as
 * U+FFFD. Pure, one pass, linear in the text.
 */
export function terminalSafe(text: string): string {
  return text.replace(TERMINAL_CONTROL, (match) => {
    if (match === '\r') return '\n';
    return match.length === 1 && match !== '\u001b' ? REPLACEMENT : '';
  });
}

/** Characters `JSON.stringify` leaves raw that a terminal may still act on: DEL and C1. */
const JSON_RAW_CONTROL = /[\u007f-\u009f]/g;

/**
 * JSON text that holds no character a terminal acts on: `JSON.stringify` escapes C0 controls
 * itself; DEL and C1 (U+0085, U+009B CSI…) are written as `\u` escapes too. The value is the same.
 */
export function terminalSafeJson(value: unknown, indent?: number): string {
  return (JSON.stringify(value, null, indent) ?? 'null').replace(
    JSON_RAW_CONTROL,
    (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`,
  );
}

/** ANSI colours orch itself uses. */
export type Colour = 'red' | 'green' | 'yellow' | 'dim';
const SGR: Record<Colour, string> = { red: '31', green: '32', yellow: '33', dim: '2' };

/** `text` in `colour` when `enabled` (a terminal, no `NO_COLOR`), else as is. Apply after {@link terminalSafe}. */
export const paint = (text: string, colour: Colour, enabled: boolean): string =>
  enabled ? `\u001b[${SGR[colour]}m${text}\u001b[0m` : text;

/**
 * Whether orch's own colours go to a stream: only a terminal, and never with `NO_COLOR` set to
 * anything but the empty string (https://no-color.org).
 */
export const colourEnabled = (
  isTTY: boolean | undefined,
  env: Readonly<Record<string, string | undefined>>,
): boolean => isTTY === true && (env.NO_COLOR ?? '') === '';
