/**
 * The reviewer's structured verdict, parsed from its final result text: a JSON
 * object `{"verdict": "approved"|"rejected", "comments": "..."}`, in a fenced
 * block or bare. Anything else is a rejection that says why, so the next
 * developer prompt can show it.
 */
export interface Verdict {
  verdict: 'approved' | 'rejected';
  comments: string;
  /** Set when no valid verdict object was found. */
  parseError: string | null;
}

const MAX_SCAN_CHARS = 200_000;

/** Candidate JSON texts: fenced blocks first (last one wins), then balanced `{...}` spans. */
function candidates(text: string): string[] {
  const out: string[] = [];
  const fence = /```(?:json)?\s*\n([\s\S]*?)```/g;
  for (let m = fence.exec(text); m; m = fence.exec(text)) out.push(m[1]!.trim());
  out.reverse();
  const spans: string[] = [];
  for (let start = text.indexOf('{'); start !== -1; start = text.indexOf('{', start + 1)) {
    let depth = 0;
    let inString = false;
    for (let i = start; i < text.length; i += 1) {
      const ch = text[i];
      if (inString) {
        if (ch === '\\') i += 1;
        else if (ch === '"') inString = false;
      } else if (ch === '"') inString = true;
      else if (ch === '{') depth += 1;
      else if (ch === '}') {
        depth -= 1;
        if (depth === 0) {
          spans.push(text.slice(start, i + 1));
          break;
        }
      }
    }
  }
  return [...out, ...spans.reverse()];
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
          : JSON.stringify(rawComments);
    if (normalized === 'approved' || normalized === 'rejected') {
      return { verdict: normalized, comments, parseError: null };
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
