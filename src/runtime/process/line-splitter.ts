/**
 * Splits a byte stream into lines with bounded memory.
 *
 * A line ends at `\n`; one trailing `\r` is removed. At most `maxLineBytes`
 * bytes of a line are kept: the rest is counted and dropped as it arrives, so a
 * 12 MB line costs `maxLineBytes` of memory, not 12 MB. A truncated line is cut
 * back to a UTF-8 character boundary so it never ends in half a character.
 */

/** Receives each line; `droppedBytes` > 0 means the line was truncated. */
export type LineSink = (line: string, droppedBytes: number) => void;

const LF = 0x0a;
const CR = 0x0d;

export class LineSplitter {
  readonly #maxLineBytes: number;
  readonly #sink: LineSink;
  /** Kept bytes of the current, incomplete line (copies, so no 64 KB read chunk is retained). */
  #parts: Buffer[] = [];
  #keptBytes = 0;
  #droppedBytes = 0;
  /** Last byte seen of the current line, kept or dropped; -1 when none yet. */
  #lastByte = -1;

  constructor(maxLineBytes: number, sink: LineSink) {
    if (!Number.isInteger(maxLineBytes) || maxLineBytes < 1) {
      throw new RangeError(`maxLineBytes must be a positive integer, got ${maxLineBytes}`);
    }
    this.#maxLineBytes = maxLineBytes;
    this.#sink = sink;
  }

  /** Bytes currently held for the incomplete line; never more than maxLineBytes. */
  get bufferedBytes(): number {
    return this.#keptBytes;
  }

  push(chunk: Buffer): void {
    let start = 0;
    for (;;) {
      const newline = chunk.indexOf(LF, start);
      if (newline === -1) {
        this.#keep(chunk, start, chunk.length);
        return;
      }
      if (this.#parts.length === 0 && this.#droppedBytes === 0 && newline - start <= this.#maxLineBytes) {
        // Fast path: the whole line lies in this chunk; decode it in place.
        const end = newline > start && chunk[newline - 1] === CR ? newline - 1 : newline;
        this.#sink(chunk.toString('utf8', start, end), 0);
      } else {
        this.#keep(chunk, start, newline);
        this.#flush();
      }
      start = newline + 1;
    }
  }

  /** Emits a final line that had no newline, if any. */
  end(): void {
    if (this.#lastByte !== -1) this.#flush();
  }

  #keep(chunk: Buffer, start: number, end: number): void {
    if (end <= start) return;
    const take = Math.min(end - start, this.#maxLineBytes - this.#keptBytes);
    if (take > 0) {
      this.#parts.push(Buffer.from(chunk.subarray(start, start + take)));
      this.#keptBytes += take;
    }
    this.#droppedBytes += end - start - Math.max(take, 0);
    this.#lastByte = chunk[end - 1] ?? -1;
  }

  #flush(): void {
    let bytes = this.#parts.length === 1 ? this.#parts[0]! : Buffer.concat(this.#parts, this.#keptBytes);
    let dropped = this.#droppedBytes;
    if (this.#lastByte === CR) {
      // The line's real last byte is the \r: remove it wherever it ended up.
      if (dropped > 0) dropped -= 1;
      else bytes = bytes.subarray(0, bytes.length - 1);
    }
    if (dropped > 0) {
      const safeEnd = utf8SafeEnd(bytes);
      dropped += bytes.length - safeEnd;
      bytes = bytes.subarray(0, safeEnd);
    }
    this.#parts = [];
    this.#keptBytes = 0;
    this.#droppedBytes = 0;
    this.#lastByte = -1;
    this.#sink(bytes.toString('utf8'), dropped);
  }
}

/** Length of `bytes` without a trailing incomplete UTF-8 sequence. */
function utf8SafeEnd(bytes: Buffer): number {
  let lead = bytes.length - 1;
  while (lead >= 0 && bytes.length - lead <= 4 && ((bytes[lead] ?? 0) & 0xc0) === 0x80) lead -= 1;
  if (lead < 0) return bytes.length;
  const first = bytes[lead] ?? 0;
  const needed = first >= 0xf0 ? 4 : first >= 0xe0 ? 3 : first >= 0xc0 ? 2 : 1;
  return bytes.length - lead < needed ? lead : bytes.length;
}
