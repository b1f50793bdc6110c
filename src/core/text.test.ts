import { describe, expect, it } from 'vitest';
import { colourEnabled, paint, REPLACEMENT, terminalSafe, terminalSafeJson } from './text.ts';

const ESC = '\u001b';
const BEL = '\u0007';
const R = REPLACEMENT;

/** A terminal acts on these; none may survive. */
// eslint-disable-next-line no-control-regex
const ACTIONABLE = /[\u0000-\u0008\u000b-\u000c\u000e-\u001f\u007f-\u009f]|\r(?!\n)/;

describe('terminalSafe', () => {
  const cases: [string, string, string][] = [
    ['plain text, tabs and newlines', 'a\tb\nc\r\n', 'a\tb\nc\r\n'],
    ['unicode text', 'Ünïcode — 你好 ✓', 'Ünïcode — 你好 ✓'],
    ['SGR colours', `${ESC}[31mred${ESC}[0m and ${ESC}[1;38;5;208mbold${ESC}[m`, 'red and bold'],
    ['clear screen and cursor home', `${ESC}[2J${ESC}[Hafter`, 'after'],
    ['a private-mode CSI (alternate screen)', `${ESC}[?1049hx${ESC}[?1049l`, 'x'],
    ['a device status query (its answer would be typed into the shell)', `${ESC}[6nq`, 'q'],
    ['C1 CSI', '\u009b31mred', 'red'],
    ['window title with BEL', `${ESC}]0;pwned${BEL}text`, 'text'],
    ['window title with ST', `${ESC}]2;pwned${ESC}\\text`, 'text'],
    ['OSC 52 clipboard write', `before${ESC}]52;c;cm0gLXJmIH4K${BEL}after`, 'beforeafter'],
    ['OSC 8 hyperlink keeps its text', `${ESC}]8;;http://evil/${ESC}\\click${ESC}]8;;${ESC}\\`, 'click'],
    ['C1 OSC ended by C1 ST', '\u009d0;title\u009cok', 'ok'],
    ['an unterminated OSC runs to the end', `ok${ESC}]52;c;AAAA`, 'ok'],
    ['an OSC cut by a new sequence', `${ESC}]0;t${ESC}[31mred`, 'red'],
    [
      'DCS, APC, PM, SOS strings',
      `${ESC}Pq#0${ESC}\\a${ESC}_x${ESC}\\b${ESC}^y${ESC}\\c${ESC}Xz${ESC}\\d`,
      'abcd',
    ],
    ['terminal reset and charset switch', `${ESC}ca${ESC}(0b${ESC}7c`, 'abc'],
    ['a lone ESC at the end', `x${ESC}`, 'x'],
    ['ESC ESC', `${ESC}${ESC}[31mx`, 'x'],
    ['an incomplete CSI', `x${ESC}[12`, 'x'],
    ['a lone carriage return becomes a newline', '10%\r50%\r100%\n', '10%\n50%\n100%\n'],
    ['backspace and BEL', `abc\b\b${BEL}`, `abc${R}${R}${R}`],
    ['NUL, DEL, C1 NEL and a lone ST', 'a\u0000b\u007fc\u0085d\u009ce', `a${R}b${R}c${R}d${R}e`],
  ];
  it.each(cases)('%s', (_name, input, shown) => {
    expect(terminalSafe(input)).toBe(shown);
    expect(terminalSafe(input)).not.toMatch(ACTIONABLE);
  });

  it('leaves nothing a terminal acts on, whatever the input', () => {
    // Every pair of interesting characters, and runs of them: nothing may combine into a sequence.
    const alphabet = [
      ESC,
      '[',
      ']',
      '\\',
      BEL,
      '\u009b',
      '\u009d',
      '\u009c',
      '\r',
      '\n',
      'P',
      '0',
      ';',
      'm',
      'a',
    ];
    let seed = 42;
    const next = () => (seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31);
    for (let i = 0; i < 5000; i += 1) {
      const text = Array.from({ length: 1 + (next() % 12) }, () => alphabet[next() % alphabet.length]).join(
        '',
      );
      expect(terminalSafe(text), JSON.stringify(text)).not.toMatch(ACTIONABLE);
    }
  });

  it('is linear: a megabyte of unterminated sequences is done at once', () => {
    const text = `${ESC}]`.repeat(250_000) + `${ESC}[`.repeat(250_000);
    expect(terminalSafe(text)).toBe('');
  });
});

describe('terminalSafeJson', () => {
  it('writes DEL and C1 as escapes, and parses back to the same value', () => {
    const value = { text: `a\u009b31m\u007f${ESC}]0;t${BEL}` };
    const json = terminalSafeJson(value);
    expect(json).not.toMatch(ACTIONABLE);
    expect(json).toContain('\\u009b');
    expect(JSON.parse(json)).toEqual(value);
  });
});

describe('colours', () => {
  it.each([
    [true, {}, true],
    [true, { NO_COLOR: '1' }, false],
    [true, { NO_COLOR: '' }, true],
    [false, {}, false],
    [undefined, {}, false],
  ])('on a TTY %s with %j: %s', (tty, env, enabled) => {
    expect(colourEnabled(tty, env)).toBe(enabled);
    expect(paint('x', 'red', colourEnabled(tty, env))).toBe(enabled ? `${ESC}[31mx${ESC}[0m` : 'x');
  });
});
