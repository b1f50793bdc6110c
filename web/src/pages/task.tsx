/**
 * A task: what it waits for and what waits for it, its stage timeline, runs
 * (role, model · effort, duration, tokens, cost, exit), the live log of a
 * run, the attempt ledger, gate results, workspace hooks that failed, the terminal packet, and the actions
 * (cancel, retry with a raised budget, approve), and a person's messages to its next
 * agent run (`orch task say`), with a box to write one.
 */
import { useEffect, useMemo, useState } from 'preact/hooks';
import { STAGES } from '../../../src/core/stages.ts';
import type { EventJson, TaskDetailJson } from '../../../src/http/types.ts';
import { failureText, getText, postJson } from '../api.ts';
import { LogView } from '../components/log-view.tsx';
import { useEvents, useJson, useNow, useThrottled } from '../hooks.ts';
import { ErrorNote, Pill, Section, StatusPill } from '../components/ui.tsx';
import { clock, duration, elapsedMs, modelEffortLabel, tokens, usd } from '../format.ts';
import { renderMarkdown } from '../markdown.ts';

type Run = TaskDetailJson['runs'][number];
type Linked = TaskDetailJson['depends_on'][number];

/** One end of the task's dependencies: each task with where it stands (a tracker's key until imported). */
function Dependencies(props: { title: string; tasks: Linked[] }) {
  if (props.tasks.length === 0) return null;
  return (
    <div class="deps">
      <h3>{props.title}</h3>
      <ul>
        {props.tasks.map((t) => (
          <li key={t.key} data-key={t.key}>
            {t.stage === null ? (
              <>
                <span class="key">{t.key}</span> <span class="muted">not imported yet</span>
              </>
            ) : (
              <>
                <a href={`#/tasks/${encodeURIComponent(t.key)}`} class="key">
                  {t.key}
                </a>{' '}
                {t.title} <Pill kind="stage">{t.stage}</Pill>{' '}
                <StatusPill status={t.status ?? 'queued'} reason={t.terminal_reason} />
              </>
            )}
            {t.origin === 'tracker' && <span class="muted"> · from the tracker</span>}
          </li>
        ))}
      </ul>
    </div>
  );
}
const TERMINAL = ['done', 'cancelled'];

export function TaskPage(props: { taskKey: string }) {
  const key = props.taskKey;
  const detail = useJson<TaskDetailJson>(`/api/tasks/${encodeURIComponent(key)}`);
  const events = useJson<EventJson[]>(`/api/tasks/${encodeURIComponent(key)}/events`);
  const logBus = useMemo(() => new EventTarget(), []);
  const refresh = useThrottled(() => {
    detail.reload();
    events.reload();
  }, 150);
  useEvents({ task: key, logs: 'true' }, (e) => {
    if (e.event === 'log') logBus.dispatchEvent(new CustomEvent('line', { detail: e.data }));
    else if (e.event !== 'ready') refresh();
  });
  const now = useNow(1000);
  const [picked, setPicked] = useState<number | null>(null);

  const d = detail.data;
  if (!d) {
    return (
      <main class="page">
        <p>
          <a href="#/">← Board</a>
        </p>
        {detail.error ? <ErrorNote error={detail.error} /> : <p class="muted">loading {key}…</p>}
      </main>
    );
  }
  const running = d.runs.filter((r) => r.status === 'running');
  // Follow the agent at work unless a run was picked.
  const shown = d.runs.find((r) => r.id === picked) ?? running.at(-1) ?? d.runs.at(-1) ?? null;

  return (
    <main class="page task-page">
      <p class="crumbs">
        <a href="#/">← Board</a>
      </p>
      <header class="task-head">
        <div>
          <h1>
            <span class="key">{d.key}</span> {d.title}
          </h1>
          <div class="pills">
            {d.stage !== d.status && <Pill kind="stage">{d.stage}</Pill>}
            <StatusPill status={d.status} reason={d.terminal_reason} />
            {d.attempt > 0 && <span class="muted">attempt {d.attempt}</span>}
            <span class="muted">
              {d.project} · <code>{d.branch}</code>
            </span>
          </div>
        </div>
        <Actions detail={d} onDone={refresh} />
      </header>
      <ErrorNote error={detail.error} />
      {d.status_detail && <p class="detail">{d.status_detail}</p>}
      {d.description && <p class="description">{d.description}</p>}
      {(d.depends_on.length > 0 || d.blocks.length > 0) && (
        <Section title="Dependencies" id="dependencies">
          <Dependencies title="Waits for" tasks={d.depends_on} />
          <Dependencies title="Blocks" tasks={d.blocks} />
        </Section>
      )}

      <div class="totals">
        <Figure label="runs" value={String(d.runs.length)} />
        <Figure label="tokens" value={tokens(d.totals.input_tokens + d.totals.output_tokens)} />
        <Figure label="cost" value={usd(d.totals.cost_usd)} />
        <Figure label="wall" value={duration(elapsedMs(d.started_at, d.finished_at, now))} />
      </div>

      <Section title="Messages" id="messages">
        <Messages detail={d} onSent={refresh} />
      </Section>

      <Section title="Stages">
        <Timeline detail={d} events={events.data ?? []} now={now} />
      </Section>

      <Section title="Runs">
        <RunsTable runs={d.runs} now={now} selected={shown?.id ?? null} onPick={setPicked} />
      </Section>

      {shown && (
        <Section
          title={`Log · run ${shown.id} ${shown.role}`}
          id="log"
          aside={
            <span class="muted">
              {shown.status === 'running' ? (
                <Pill kind="running">live</Pill>
              ) : (
                (shown.outcome ?? shown.status)
              )}
            </span>
          }
        >
          <LogView runId={shown.id} running={shown.status === 'running'} bus={logBus} />
        </Section>
      )}

      <Section title="Attempts">
        <Attempts attempts={d.attempts} />
      </Section>

      <Section title="Gates">
        {d.gates.length === 0 && <p class="muted">no gate has run yet</p>}
        {d.gates.map((g, i) => (
          <details class={`gate ${g.passed ? 'passed' : 'failed'}`} key={i}>
            <summary>
              <span class="mark">{g.passed ? '✓' : '✗'}</span> {g.name}{' '}
              <span class="muted">
                ({g.stage}, {clock(g.finished_at)})
              </span>
            </summary>
            <pre>{g.output_tail || '(no output)'}</pre>
          </details>
        ))}
      </Section>

      {d.hook_failures.length > 0 && (
        <Section title="Hook failures" id="hooks">
          {d.hook_failures.map((h) => (
            <details class="gate failed hook-failure" key={h.id}>
              <summary>
                <span class="mark">✗</span> {h.hook}{' '}
                <span class="muted">
                  ({h.stage ?? '–'}, {clock(h.created_at)}, {h.fatal ? 'failed the try' : 'not fatal'}
                  {h.sandbox_role ? `, in the ${h.sandbox_role}'s sandbox` : ''})
                </span>
              </summary>
              <pre>{h.output_tail || h.summary}</pre>
            </details>
          ))}
        </Section>
      )}

      {d.artifacts.terminal_packet && <Packet taskKey={d.key} version={d.updated_at} />}
    </main>
  );
}

function Figure(props: { label: string; value: string }) {
  return (
    <div class="figure">
      <div class="value">{props.value}</div>
      <div class="label muted">{props.label}</div>
    </div>
  );
}

function Actions(props: { detail: TaskDetailJson; onDone: () => void }) {
  const d = props.detail;
  const [error, setError] = useState<string | null>(null);
  const [retrying, setRetrying] = useState(false);
  const act = async (path: string, body: unknown = {}) => {
    setError(null);
    try {
      await postJson(`/api/tasks/${encodeURIComponent(d.key)}/${path}`, body);
      setRetrying(false);
      props.onDone();
    } catch (err) {
      setError(failureText(err));
    }
  };
  return (
    <div class="actions">
      {d.status === 'waiting' && (
        <button class="primary" onClick={() => act('approve')}>
          Approve
        </button>
      )}
      {d.status === 'escalated' && (
        <button class="primary" onClick={() => setRetrying(!retrying)} aria-expanded={retrying}>
          Retry…
        </button>
      )}
      {!TERMINAL.includes(d.stage) && (
        <button
          class="danger"
          onClick={() => confirm(`Cancel ${d.key}? Its running agent is stopped.`) && act('cancel')}
        >
          Cancel
        </button>
      )}
      {retrying && <RetryForm attempts={d.attempts.length} onSubmit={(body) => act('retry', body)} />}
      <ErrorNote error={error} />
    </div>
  );
}

/**
 * A person's messages to the task, each with the run that read it, and a box to write one: it
 * goes into the prompt of the task's next agent run, once. Shown as text, never as markup.
 */
function Messages(props: { detail: TaskDetailJson; onSent: () => void }) {
  const d = props.detail;
  const [text, setText] = useState('');
  const [error, setError] = useState<string | null>(null);
  const [sending, setSending] = useState(false);
  const [note, setNote] = useState<string | null>(null);
  /** `now`: stop the running agent and run its stage again at once with the message (`task say --now`). */
  const send = async (now: boolean) => {
    setError(null);
    setNote(null);
    setSending(true);
    try {
      const said = await postJson<{ interrupted?: boolean; interrupted_run_id?: number | null }>(
        `/api/tasks/${encodeURIComponent(d.key)}/messages`,
        { text, by: 'dashboard', ...(now ? { now: true } : {}) },
      );
      if (now)
        setNote(
          said.interrupted
            ? `stopped run ${said.interrupted_run_id ?? '?'}: the stage runs again with your message`
            : 'no agent was running: the next run gets your message',
        );
      setText('');
      props.onSent();
    } catch (err) {
      setError(failureText(err));
    } finally {
      setSending(false);
    }
  };
  return (
    <div class="messages">
      {d.messages.length === 0 && <p class="muted">no message yet</p>}
      {d.messages.map((m) => (
        <div class="message" key={m.id}>
          <div class="muted">
            {m.by} · {clock(m.created_at)} ·{' '}
            {m.delivered_run_id === null ? 'for the next run' : `read by run ${m.delivered_run_id}`}
          </div>
          <p class="message-text">{m.text}</p>
        </div>
      ))}
      {!TERMINAL.includes(d.stage) && (
        <form
          class="message-form"
          aria-label="Write to the task's next agent run"
          onSubmit={(e) => {
            e.preventDefault();
            if (text.trim()) void send(false);
          }}
        >
          <textarea
            name="text"
            rows={3}
            maxLength={10_000}
            placeholder="A message for the next agent run of this task"
            value={text}
            onInput={(e) => setText(e.currentTarget.value)}
          />
          <button class="primary" type="submit" disabled={sending || !text.trim()}>
            Send
          </button>
          <button
            type="button"
            class="send-now"
            title="Stop the running agent (not counted as a try) and run its stage again at once with this message"
            disabled={sending || !text.trim()}
            onClick={() => void send(true)}
          >
            Send now
          </button>
        </form>
      )}
      {note && <p class="muted say-note">{note}</p>}
      <ErrorNote error={error} />
    </div>
  );
}

function RetryForm(props: { attempts: number; onSubmit: (body: Record<string, number>) => void }) {
  const [v, setV] = useState({
    max_attempts: String(props.attempts + 2),
    max_usd: '',
    max_tokens: '',
    max_wall_s: '',
  });
  const field = (name: keyof typeof v, label: string, step = '1') => (
    <label>
      {label}
      <input
        name={name}
        type="number"
        min="0"
        step={step}
        value={v[name]}
        placeholder="keep"
        onInput={(e) => setV({ ...v, [name]: e.currentTarget.value })}
      />
    </label>
  );
  return (
    <form
      class="retry-form"
      aria-label="Retry with a raised budget"
      onSubmit={(e) => {
        e.preventDefault();
        const body: Record<string, number> = {};
        for (const [k, x] of Object.entries(v)) if (x.trim()) body[k] = Number(x);
        props.onSubmit(body);
      }}
    >
      {field('max_attempts', 'Max attempts')}
      {field('max_usd', 'Max USD', '0.01')}
      {field('max_tokens', 'Max tokens')}
      {field('max_wall_s', 'Max wall (s)')}
      <button class="primary" type="submit">
        Retry
      </button>
    </form>
  );
}

/** Each stage of the pipeline: visited, current or ahead, with time spent and visits. */
function Timeline(props: { detail: TaskDetailJson; events: EventJson[]; now: number }) {
  const { detail: d, now } = props;
  const spent = new Map<string, number>();
  const visits = new Map<string, number>([['created', 1]]);
  let at = d.created_at;
  let stage = 'created';
  for (const e of props.events) {
    if (e.kind !== 'stage_changed') continue;
    const to = String(e.payload.to ?? '');
    spent.set(stage, (spent.get(stage) ?? 0) + Date.parse(e.created_at) - Date.parse(at));
    visits.set(to, (visits.get(to) ?? 0) + 1);
    stage = to;
    at = e.created_at;
  }
  const open = !TERMINAL.includes(d.stage) && d.status !== 'escalated';
  if (open) spent.set(stage, (spent.get(stage) ?? 0) + now - Date.parse(at));
  const stages = STAGES.filter((s) => s !== 'cancelled' || d.stage === 'cancelled');
  const current = stages.indexOf(d.stage as (typeof stages)[number]);
  return (
    <ol class="timeline">
      {stages.map((s, i) => {
        const state = s === d.stage ? 'current' : visits.has(s) || i < current ? 'past' : 'ahead';
        const n = visits.get(s) ?? 0;
        return (
          <li class={`step ${state}${s === d.stage ? ` status-${d.status}` : ''}`} key={s}>
            <span class="dot" />
            <span class="name">{s}</span>
            <span class="when muted">
              {spent.has(s) ? duration(spent.get(s)!) : ''}
              {n > 1 ? ` ×${n}` : ''}
            </span>
          </li>
        );
      })}
    </ol>
  );
}

function RunsTable(props: {
  runs: Run[];
  now: number;
  selected: number | null;
  onPick: (id: number) => void;
}) {
  if (!props.runs.length) return <p class="muted">no run yet</p>;
  return (
    <div class="table-wrap">
      <table class="runs">
        <thead>
          <tr>
            <th>run</th>
            <th>role</th>
            <th class="wide-only">stage</th>
            <th>model · effort</th>
            <th class="wide-only">started</th>
            <th class="num">duration</th>
            <th class="num">tokens</th>
            <th class="num">cost</th>
            <th>exit</th>
          </tr>
        </thead>
        <tbody>
          {props.runs.map((r) => (
            <tr
              key={r.id}
              class={`${r.status === 'running' ? 'running' : ''}${r.id === props.selected ? ' selected' : ''}`}
              data-run={r.id}
            >
              <td>
                <button class="link" onClick={() => props.onPick(r.id)} title="show its log">
                  #{r.id}
                </button>
              </td>
              <td>
                {r.role}
                {r.attempt ? <span class="muted"> · {r.attempt}</span> : null}
              </td>
              <td class="wide-only">{r.stage}</td>
              <td class="model">
                {modelEffortLabel(r.model, r.effort) ?? '–'}
                {r.variant && <span class="muted small"> ({r.variant})</span>}
              </td>
              <td class="wide-only">{clock(r.started_at)}</td>
              <td class="num">{duration(elapsedMs(r.started_at, r.finished_at, props.now))}</td>
              <td class="num" title={`in ${r.input_tokens ?? '–'} / out ${r.output_tokens ?? '–'}`}>
                {r.input_tokens === null && r.output_tokens === null
                  ? '–'
                  : tokens((r.input_tokens ?? 0) + (r.output_tokens ?? 0))}
              </td>
              <td class="num">{usd(r.cost_usd)}</td>
              <td>
                {r.status === 'running' ? (
                  <Pill kind="running">running</Pill>
                ) : (
                  <Pill kind={r.outcome === 'ok' ? 'ok' : 'bad'} title={r.error ?? undefined}>
                    {r.outcome ?? r.status}
                    {r.exit_code !== null ? ` (${r.exit_code})` : ''}
                  </Pill>
                )}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

function Attempts(props: { attempts: TaskDetailJson['attempts'] }) {
  if (!props.attempts.length) return <p class="muted">no attempt recorded yet</p>;
  return (
    <div class="table-wrap">
      <table class="attempts">
        <thead>
          <tr>
            <th>#</th>
            <th>diff</th>
            <th>verdict</th>
            <th class="num">tokens</th>
            <th class="num">cost</th>
            <th class="num">duration</th>
            <th>feedback</th>
          </tr>
        </thead>
        <tbody>
          {props.attempts.map((a) => (
            <tr key={a.n}>
              <td>{a.n}</td>
              <td>
                <code>{a.diff_hash.slice(0, 12)}</code>
              </td>
              <td>
                <Pill kind={a.verdict === 'approved' ? 'ok' : 'bad'}>{a.verdict}</Pill>
                {a.reason && <div class="muted small">{a.reason}</div>}
              </td>
              <td class="num">{tokens(a.input_tokens + a.output_tokens)}</td>
              <td class="num">{usd(a.cost_usd)}</td>
              <td class="num">{duration(a.duration_ms)}</td>
              <td class="feedback">{a.feedback || <span class="muted">–</span>}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

function Packet(props: { taskKey: string; version: string }) {
  const [html, setHtml] = useState<string | null>(null);
  const [error, setError] = useState<string | null>(null);
  useEffect(() => {
    getText(`/api/tasks/${encodeURIComponent(props.taskKey)}/terminal-packet`).then(
      (md) => setHtml(renderMarkdown(md)),
      (e: Error) => setError(e.message),
    );
  }, [props.taskKey, props.version]);
  return (
    <Section title="Terminal packet" id="packet">
      <ErrorNote error={error} />
      {/* Rendered from escaped text by renderMarkdown: no markup of the packet survives. */}
      {html !== null && <div class="markdown" dangerouslySetInnerHTML={{ __html: html }} />}
    </Section>
  );
}
