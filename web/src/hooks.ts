/** Hooks shared by the pages: data that refreshes when the event stream says something changed. */
import { useCallback, useEffect, useRef, useState } from 'preact/hooks';
import { getJson, subscribe, type StreamEvent } from './api.ts';

export interface Loaded<T> {
  data: T | null;
  error: string | null;
  reload: () => void;
}

/**
 * Fetches `path` (with `load`, default one GET) now and whenever `reload` is
 * called; keeps the last good data on error.
 */
export function useJson<T>(path: string | null, load: (path: string) => Promise<T> = getJson): Loaded<T> {
  const [data, setData] = useState<T | null>(null);
  const [error, setError] = useState<string | null>(null);
  const seq = useRef(0);
  const reload = useCallback(() => {
    if (!path) return;
    const mine = ++seq.current;
    load(path).then(
      (d) => {
        if (mine !== seq.current) return;
        setData(d);
        setError(null);
      },
      (e: Error) => mine === seq.current && setError(e.message),
    );
  }, [path, load]);
  useEffect(() => {
    setData(null);
    reload();
  }, [reload]);
  return { data, error, reload };
}

/** Runs `fn` at most once per `ms`, trailing: bursts of events cause one refetch. */
export function useThrottled(fn: () => void, ms: number): () => void {
  const timer = useRef<ReturnType<typeof setTimeout> | null>(null);
  const latest = useRef(fn);
  latest.current = fn;
  useEffect(() => () => void (timer.current && clearTimeout(timer.current)), []);
  return useCallback(() => {
    if (timer.current) return;
    timer.current = setTimeout(() => {
      timer.current = null;
      latest.current();
    }, ms);
  }, [ms]);
}

type LiveListener = (live: boolean) => void;
const liveListeners = new Set<LiveListener>();
let liveCount = 0;
/** Whether any page's event stream is connected (the header's dot). */
export function useLiveIndicator(): boolean {
  const [live, setLive] = useState(liveCount > 0);
  useEffect(() => {
    liveListeners.add(setLive);
    return () => void liveListeners.delete(setLive);
  }, []);
  return live;
}

/** Follows the event stream while the component is mounted. */
export function useEvents(query: Record<string, string>, onEvent: (e: StreamEvent) => void): void {
  const handler = useRef(onEvent);
  handler.current = onEvent;
  const key = JSON.stringify(query);
  useEffect(() => {
    let counted = false;
    const sub = subscribe(
      JSON.parse(key) as Record<string, string>,
      (e) => handler.current(e),
      (live) => {
        if (live === counted) return;
        counted = live;
        liveCount += live ? 1 : -1;
        liveListeners.forEach((fn) => fn(liveCount > 0));
      },
    );
    return () => sub.close();
  }, [key]);
}

/** The current time, ticking every `ms` (for elapsed times of running things). */
export function useNow(ms = 1000): number {
  const [now, setNow] = useState(Date.now());
  useEffect(() => {
    const t = setInterval(() => setNow(Date.now()), ms);
    return () => clearInterval(t);
  }, [ms]);
  return now;
}
