/**
 * The reviewer's structured verdict, parsed from its final result text: a JSON
 * object `{"verdict": "approved"|"rejected", "comments": "..."}`, in a fenced
 * block or bare. When the review chose among development candidates, the
 * object names the chosen one too: `"chosen": 2`. Anything else is a rejection that says why, so the next
 * developer prompt can show it.
 */
export interface Verdict {
  verdict: 'approved' | 'rejected';
  comments: string;
  /** Set when no valid verdict object was found. */
  parseError: string | null;
  /** The candidate the reviewer chose (`"chosen": n`), when it named one. */
  chosen?: number | null;
}

const MAX_SCAN_CHARS = 200_000;
/**
 * Characters the brace scan may visit in all. Each `{` is scanned from on its
 * own, which is quadratic on hostile output (thousands of unclosed or nested
 * braces); past this the remaining candidates are dropped, so a parse stays
 * well under a second and never stalls the event loop.
 */
const MAX_SCAN_STEPS = 5_000_000;

/**
 * Candidate JSON texts, lazily: fenced blocks first (last one wins), then
 * balanced `{"...}` spans, the one starting last first.
 */
function* candidates(text: string): Generator<string> {
  const fenced: string[] = [];
  // Only blanks between the opening fence and its newline: `\s*\n` there backtracks over every
  // newline of a long blank run, which is quadratic on hostile output.
  const fence = /```(?:json)?[^\S\n]*\n([\s\S]*?)```/g;
  for (let m = fence.exec(text); m; m = fence.exec(text)) fenced.push(m[1]!.trim());
  yield* fenced.reverse();
  let steps = 0;
  for (
    let start = text.lastIndexOf('{');
    start !== -1;
    start = start > 0 ? text.lastIndexOf('{', start - 1) : -1
  ) {
    // An object with a "verdict" key opens with `{"` (JSON whitespace between): skip other braces cheaply.
    let key = start + 1;
    while (key < text.length && /\s/.test(text[key]!)) key += 1;
    steps += key - start;
    if (text[key] !== '"') continue;
    let depth = 0;
    let inString = false;
    for (let i = start; i < text.length; i += 1) {
      if (++steps > MAX_SCAN_STEPS) return;
      const ch = text[i];
      if (inString) {
        if (ch === '\\') i += 1;
        else if (ch === '"') inString = false;
      } else if (ch === '"') inString = true;
      else if (ch === '{') depth += 1;
      else if (ch === '}') {
        depth -= 1;
        if (depth === 0) {
          steps += i + 1 - start;
          yield text.slice(start, i + 1);
          break;
        }
      }
    }
  }
}

/**
 * Non-string comments as JSON text. JSON.parse takes nesting thousands deep
 * that JSON.stringify (recursive) cannot print back; say so rather than throw.
 */
function commentsText(value: unknown): string {
  try {
    return JSON.stringify(value);
  } catch {
    return '[comments not shown: nested too deeply to print]';
  }
}

export function parseVerdict(resultText: string | null | undefined): Verdict {
  const text = (resultText ?? '').slice(-MAX_SCAN_CHARS);
  if (!text.trim())
    return { verdict: 'rejected', comments: '', parseError: 'the reviewer gave no result text' };
  for (const candidate of candidates(text)) {
    let value: unknown;
    try {
      value = JSON.parse(candidate);
    } catch {
      continue;
    }
    if (!value || typeof value !== 'object' || Array.isArray(value)) continue;
    const v = (value as Record<string, unknown>).verdict;
    if (typeof v !== 'string') continue;
    const normalized = v.trim().toLowerCase();
    const rawComments = (value as Record<string, unknown>).comments;
    const comments =
      typeof rawComments === 'string'
        ? rawComments
        : rawComments === undefined || rawComments === null
          ? ''
          : commentsText(rawComments);
    if (normalized === 'approved' || normalized === 'rejected') {
      const chosen = (value as Record<string, unknown>).chosen;
      const n = typeof chosen === 'string' && /^\s*\d+\s*$/.test(chosen) ? Number(chosen) : chosen;
      return {
        verdict: normalized,
        comments,
        parseError: null,
        ...(chosen === undefined || chosen === null
          ? {}
          : { chosen: typeof n === 'number' && Number.isInteger(n) ? n : NaN }),
      };
    }
    return {
      verdict: 'rejected',
      comments,
      parseError: `verdict must be "approved" or "rejected", got ${JSON.stringify(v)}`,
    };
  }
  return {
    verdict: 'rejected',
    comments: '',
    parseError: 'no JSON object with a "verdict" field was found in the reviewer result',
  };
}

/** The feedback text the next developer prompt carries for a verdict. */
export function verdictFeedback(v: Verdict): string {
  if (v.parseError)
    return `The review could not be read (${v.parseError}); treat it as a rejection.${v.comments ? `\n${v.comments}` : ''}`;
  return v.comments;
}

/**
 * A verdict on development candidates: an approval must name one of the passing candidates
 * (`passing`, 1-based) as `chosen`; one that names none, or another, is a rejection that says
 * why. A rejection rejects them all.
 */
export function chooseCandidate(v: Verdict, passing: readonly number[]): Verdict & { chosen: number | null } {
  if (v.verdict !== 'approved') return { ...v, chosen: null };
  const list = passing.join(', ');
  if (passing.length === 1 && (v.chosen === undefined || v.chosen === null))
    return { ...v, chosen: passing[0]! };
  if (v.chosen === undefined || v.chosen === null)
    return {
      ...v,
      verdict: 'rejected',
      chosen: null,
      parseError: `the approval names no candidate: add "chosen" with one of ${list}`,
    };
  if (!passing.includes(v.chosen))
    return {
      ...v,
      verdict: 'rejected',
      chosen: null,
      parseError: `"chosen" must be one of the passing candidates ${list}, got ${Number.isNaN(v.chosen) ? 'not a whole number' : v.chosen}`,
    };
  return { ...v, chosen: v.chosen };
}
