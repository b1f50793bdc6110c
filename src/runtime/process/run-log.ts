/**
 * The per-run log file: every line the agent printed, stderr lines prefixed
 * `[stderr] `, and orch's own notes prefixed `[orch] `. Text arrives already
 * redacted: run-agent-process passes every line and note through
 * runtime/secrets.ts before it gets here.
 */
import {
  closeSync,
  constants,
  createWriteStream,
  fstatSync,
  mkdirSync,
  openSync,
  type WriteStream,
} from 'node:fs';
import { dirname } from 'node:path';

const LOG_FLAGS =
  constants.O_WRONLY | constants.O_APPEND | constants.O_CREAT | constants.O_NONBLOCK | constants.O_NOFOLLOW;

export class RunLog {
  readonly #stream: WriteStream;
  #error: string | null = null;

  /**
   * Creates parent directories and opens `path` for appending; throws if it cannot, or if what is
   * there is not a regular file: a FIFO planted under the next run's log name must not block orch
   * (O_NONBLOCK makes its open fail at once), nor a symlink lead the log elsewhere (O_NOFOLLOW).
   */
  static open(path: string): RunLog {
    mkdirSync(dirname(path), { recursive: true });
    // Opened synchronously so a bad path fails before any agent is started.
    const fd = openSync(path, LOG_FLAGS, 0o644);
    if (!fstatSync(fd).isFile()) {
      closeSync(fd);
      throw new Error(`${path} is not a regular file`);
    }
    return new RunLog(path, fd);
  }

  private constructor(path: string, fd: number) {
    this.#stream = createWriteStream(path, { fd });
    this.#stream.on('error', (err) => {
      this.#error ??= `cannot write log file ${path}: ${err.message}`;
    });
  }

  /** Why writing failed, if it did; later writes are dropped rather than stop the run. */
  get error(): string | null {
    return this.#error;
  }

  /** Appends `text`; false means the disk is behind and the caller should pause until {@link onDrain}. */
  append(text: string): boolean {
    if (this.#error !== null || text === '' || this.#stream.writableEnded || this.#stream.destroyed)
      return true;
    return this.#stream.write(text);
  }

  /** Calls `resume` once buffered text is written (or writing has failed). */
  onDrain(resume: () => void): void {
    const fire = (): void => {
      this.#stream.off('drain', fire);
      this.#stream.off('close', fire);
      resume();
    };
    this.#stream.on('drain', fire);
    this.#stream.on('close', fire);
  }

  /** Flushes and closes the file (the fd is closed when this resolves). Never rejects. */
  async close(): Promise<void> {
    const stream = this.#stream;
    if (stream.closed) return;
    const closed = new Promise<void>((resolve) => stream.once('close', () => resolve()));
    if (!stream.writableEnded) stream.end();
    await closed;
  }
}
