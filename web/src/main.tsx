/** The dashboard: a hash router over five pages, and the token prompt when the server wants one. */
import { render } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import { onUnauthorized, setToken } from './api.ts';
import { useLiveIndicator } from './hooks.ts';
import { Board } from './pages/board.tsx';
import { TaskPage } from './pages/task.tsx';
import { Costs } from './pages/costs.tsx';
import { Agents } from './pages/agents.tsx';
import { Stats } from './pages/stats.tsx';
import './styles.css';

type Route =
  | { page: 'board' }
  | { page: 'task'; key: string }
  | { page: 'costs' }
  | { page: 'agents' }
  | { page: 'stats' };

function parse(hash: string): Route {
  const path = hash.replace(/^#/, '') || '/';
  const task = /^\/tasks\/([^/]+)$/.exec(path);
  if (task) return { page: 'task', key: decodeURIComponent(task[1]!) };
  if (path === '/costs') return { page: 'costs' };
  if (path === '/agents') return { page: 'agents' };
  if (path === '/stats') return { page: 'stats' };
  return { page: 'board' };
}

function useRoute(): Route {
  const [route, setRoute] = useState(parse(location.hash));
  useEffect(() => {
    const on = () => setRoute(parse(location.hash));
    addEventListener('hashchange', on);
    return () => removeEventListener('hashchange', on);
  }, []);
  return route;
}

function TokenPrompt(props: { onSaved: () => void }) {
  const [value, setValue] = useState('');
  return (
    <main class="page">
      <form
        class="card token"
        onSubmit={(e) => {
          e.preventDefault();
          setToken(value.trim());
          props.onSaved();
        }}
      >
        <h1>API token</h1>
        <p>This orch needs its API token (ORCH_API_TOKEN). It is kept in this browser only.</p>
        <input
          type="password"
          value={value}
          onInput={(e) => setValue(e.currentTarget.value)}
          autoFocus
          required
        />
        <button class="primary" type="submit">
          Continue
        </button>
      </form>
    </main>
  );
}

function App() {
  const route = useRoute();
  const live = useLiveIndicator();
  const [needToken, setNeedToken] = useState(false);
  const [epoch, setEpoch] = useState(0);
  useEffect(() => onUnauthorized(() => setNeedToken(true)), []);
  const link = (href: string, label: string, on: boolean) => (
    <a href={href} class={on ? 'on' : ''} aria-current={on ? 'page' : undefined}>
      {label}
    </a>
  );
  return (
    <>
      <header class="top">
        <a class="brand" href="#/">
          orch
        </a>
        <nav>
          {link('#/', 'Board', route.page === 'board' || route.page === 'task')}
          {link('#/agents', 'Agents', route.page === 'agents')}
          {link('#/costs', 'Costs', route.page === 'costs')}
          {link('#/stats', 'Stats', route.page === 'stats')}
        </nav>
        <span
          class={`live ${live ? 'on' : ''}`}
          title={live ? 'live: updates as they happen' : 'reconnecting…'}
        >
          {live ? 'live' : 'offline'}
        </span>
      </header>
      {needToken ? (
        <TokenPrompt
          onSaved={() => {
            setNeedToken(false);
            setEpoch(epoch + 1);
          }}
        />
      ) : (
        <div key={epoch}>
          {route.page === 'board' && <Board />}
          {route.page === 'task' && <TaskPage taskKey={route.key} key={route.key} />}
          {route.page === 'costs' && <Costs />}
          {route.page === 'agents' && <Agents />}
          {route.page === 'stats' && <Stats />}
        </div>
      )}
    </>
  );
}

render(<App />, document.getElementById('app')!);
