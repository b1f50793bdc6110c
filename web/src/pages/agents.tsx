/** Agents in flight (with model · effort) and the queue behind them. */
import type { AgentJson, QueueJson } from '../../../src/http/types.ts';
import { useEvents, useJson, useNow, useThrottled } from '../hooks.ts';
import { ErrorNote, Pill, Section } from '../components/ui.tsx';
import { clock, duration } from '../format.ts';

export function Agents() {
  const agents = useJson<AgentJson[]>('/api/agents');
  const queue = useJson<QueueJson>('/api/queue');
  const refresh = useThrottled(() => {
    agents.reload();
    queue.reload();
  }, 250);
  useEvents({ logs: 'false' }, (e) => e.event !== 'ready' && refresh());
  const now = useNow(1000);
  return (
    <main class="page agents-page">
      <div class="toolbar">
        <h1>Agents &amp; queue</h1>
      </div>
      <Section title={`Running agents (${agents.data?.length ?? 0})`}>
        <ErrorNote error={agents.error} />
        {agents.data && agents.data.length === 0 && <p class="muted">no agent is running</p>}
        {agents.data && agents.data.length > 0 && (
          <div class="table-wrap">
            <table class="agents">
              <thead>
                <tr>
                  <th>task</th>
                  <th>role</th>
                  <th>stage</th>
                  <th>model · effort</th>
                  <th class="num">elapsed</th>
                  <th class="num">timeout</th>
                  <th>pid</th>
                  <th>worker</th>
                </tr>
              </thead>
              <tbody>
                {agents.data.map((a) => (
                  <tr key={a.run_id}>
                    <td>{a.task ? <a href={`#/tasks/${encodeURIComponent(a.task)}`}>{a.task}</a> : '–'}</td>
                    <td>{a.role}</td>
                    <td>{a.stage}</td>
                    <td class="model">{a.label ?? '–'}</td>
                    <td class="num">{a.started_at ? duration(now - Date.parse(a.started_at)) : '–'}</td>
                    <td class="num">{a.timeout_s ? duration(a.timeout_s * 1000) : '–'}</td>
                    <td>{a.pid ?? '–'}</td>
                    <td class="muted small">{a.worker}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        )}
      </Section>
      {queue.data && queue.data.paused_adapters.length > 0 && (
        <Section title="Paused by usage limits">
          <ul class="paused-adapters">
            {queue.data.paused_adapters.map((p) => (
              <li key={`${p.adapter}/${p.credential ?? ''}`}>
                <Pill kind="waiting">{p.adapter}</Pill> {p.credential ? `credential ${p.credential} ` : ''}
                {p.window ? `(${p.window}) ` : ''}resumes {clock(p.until)} (in{' '}
                {duration(Math.max(0, Date.parse(p.until) - now))})
                {p.task && (
                  <>
                    {' '}
                    — hit by <a href={`#/tasks/${encodeURIComponent(p.task)}`}>{p.task}</a>
                  </>
                )}
                {p.message && <div class="muted small">{p.message}</div>}
              </li>
            ))}
          </ul>
        </Section>
      )}
      <Section title={`Queue (${queue.data?.depth ?? 0})`}>
        <ErrorNote error={queue.error} />
        {queue.data && queue.data.jobs.length === 0 && <p class="muted">the queue is empty</p>}
        {queue.data && queue.data.jobs.length > 0 && (
          <div class="table-wrap">
            <table class="queue">
              <thead>
                <tr>
                  <th>task</th>
                  <th>stage</th>
                  <th>role</th>
                  <th class="num">priority</th>
                  <th>runs</th>
                  <th class="num">tries</th>
                  <th>last error</th>
                </tr>
              </thead>
              <tbody>
                {queue.data.jobs.map((j) => {
                  const wait = Date.parse(j.run_after) - now;
                  return (
                    <tr key={j.job_id}>
                      <td>
                        <a href={`#/tasks/${encodeURIComponent(j.task)}`}>{j.task}</a>
                      </td>
                      <td>{j.stage}</td>
                      <td>{j.role}</td>
                      <td class="num">{j.priority}</td>
                      <td>
                        {wait > 0 ? (
                          <Pill kind="waiting">in {duration(wait)}</Pill>
                        ) : (
                          <Pill kind="queued">due</Pill>
                        )}
                      </td>
                      <td class="num">{j.tries}</td>
                      <td class="muted small" title={j.last_error ?? undefined}>
                        {j.last_error ? j.last_error.slice(0, 120) : '–'}
                      </td>
                    </tr>
                  );
                })}
              </tbody>
            </table>
          </div>
        )}
        {queue.data && queue.data.jobs.length > 0 && (
          <p class="muted small">
            in the order workers take them; oldest job queued{' '}
            {clock(
              queue.data.jobs.reduce(
                (a, j) => (j.created_at < a ? j.created_at : a),
                queue.data.jobs[0]!.created_at,
              ),
            )}
          </p>
        )}
      </Section>
    </main>
  );
}
