/** A run's log, live: its tail first, then the lines the event stream brings, gaps re-read by offset. */
import { useEffect, useRef, useState } from 'preact/hooks';
import type { LogLine, LogResponse } from '../../../src/http/types.ts';
import { getJson } from '../api.ts';
import { ErrorNote } from './ui.tsx';

const MAX_LINES = 5000;
const TAIL_BYTES = 256 * 1024;

/** `bus` carries the stream's `log` events (as `line` CustomEvents) for any run; this view keeps those of `runId`. */
export function LogView(props: { runId: number; running: boolean; bus: EventTarget }) {
  const [lines, setLines] = useState<LogLine[]>([]);
  const [cut, setCut] = useState(false);
  const [error, setError] = useState<string | null>(null);
  /** The byte offset just after the last line shown. */
  const next = useRef(0);
  /** Reads are chained so lines are appended in order; a new run starts a new generation. */
  const chain = useRef<Promise<void>>(Promise.resolve());
  const generation = useRef(0);
  const box = useRef<HTMLDivElement>(null);
  const stick = useRef(true);

  const append = (more: LogLine[]) => {
    if (!more.length) return;
    const el = box.current;
    stick.current = !el || el.scrollHeight - el.scrollTop - el.clientHeight < 40;
    setLines((old) => {
      const all = old.concat(more);
      return all.length > MAX_LINES ? all.slice(all.length - MAX_LINES) : all;
    });
  };

  /** Reads from the last offset (or the tail, at first) to the current end of the file. */
  const catchUp = (fromTail: boolean): Promise<void> => {
    const gen = generation.current;
    const read = async () => {
      let first = fromTail;
      for (let guard = 0; guard < 64 && gen === generation.current; guard++) {
        const q = first ? `tail=${TAIL_BYTES}` : `offset=${next.current}&limit=${TAIL_BYTES}`;
        const r = await getJson<LogResponse>(`/api/runs/${props.runId}/log?${q}`);
        if (gen !== generation.current || (!first && r.offset !== next.current)) return;
        if (first) setCut(r.offset > 0);
        first = false;
        append(r.lines);
        next.current = r.next_offset;
        if (r.next_offset === r.offset || r.next_offset >= r.size) return;
      }
    };
    chain.current = chain.current.then(read).catch((e: Error) => setError(e.message));
    return chain.current;
  };

  useEffect(() => {
    generation.current += 1;
    setLines([]);
    setCut(false);
    setError(null);
    next.current = 0;
    stick.current = true;
    void catchUp(true);
    const onLine = (ev: Event) => {
      const line = (ev as CustomEvent<LogLine & { run_id: number }>).detail;
      if (line.run_id !== props.runId) return;
      chain.current = chain.current.then(() => {
        if (line.offset === next.current) {
          next.current = line.next_offset;
          append([line]);
        } else if (line.offset > next.current) {
          // Lines were missed (the stream reconnected, or began after the tail was read).
          void catchUp(false);
        }
      });
    };
    props.bus.addEventListener('line', onLine);
    return () => props.bus.removeEventListener('line', onLine);
  }, [props.runId]);

  // The run just ended: read what the stream may not have carried (a last line without newline).
  useEffect(() => {
    if (!props.running) void catchUp(false);
  }, [props.running]);

  useEffect(() => {
    if (stick.current && box.current) box.current.scrollTop = box.current.scrollHeight;
  }, [lines]);

  return (
    <div class="log" ref={box} aria-live="polite" data-run={props.runId}>
      {cut && <div class="log-note muted">earlier lines are not shown</div>}
      {lines.map((l) => (
        <div class={`log-line kind-${l.kind}`} key={l.offset} title={l.raw}>
          <span class="kind">{l.kind.replace('_', ' ')}</span>
          <span class="text">{l.text}</span>
        </div>
      ))}
      {!lines.length && !error && (
        <div class="muted">{props.running ? 'waiting for output…' : 'no output'}</div>
      )}
      <ErrorNote error={error} />
    </div>
  );
}
