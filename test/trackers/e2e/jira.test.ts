/**
 * Jira end to end, through the real CLI: an issue in `To Do` with the `orch`
 * label on a fake Jira Cloud (REST v3, JQL search, a workflow of
 * transitions) is imported, runs through the pipeline with the scripted
 * agent and lands through a pull request on a fake Gitea, which merges it
 * with git in the project's origin. The issue walks the workflow by the
 * `stages` mapping (To Do → In Progress → In Review → Done, each a
 * transition) with a working label on the way, and ends `Done` with a usage
 * comment per agent run and the pull request's link (comments are ADF);
 * issues the filter leaves out are not touched.
 */
import { describe, expect, it } from 'vitest';
import { makeProject } from '../../helpers/kit.ts';
import { disposeAfterEach } from '../../helpers/dispose.ts';
import { startJiraFake, type JiraFake } from '../../fakes/trackers/jira-server.ts';
import { startGiteaFake } from '../../fakes/trackers/gitea-server.ts';
import { makeOriginRepo } from '../../fakes/trackers/git-merge.ts';
import {
  expectAllSent,
  expectLanded,
  expectUsagePerRun,
  expectWrittenBack,
  makeForgeProject,
  recorded,
  runUntilIdle,
  WORKFLOW_STAGES,
} from './e2e-kit.ts';

const EMAIL = 'orch-bot@example.com';
const JIRA_TOKEN = 'jira_e2e_token_0123456789';
const FORGE_TOKEN = 'gitea_e2e_token_0123456789';
const own = disposeAfterEach();

/** The fake Jira's project as orch.yaml's `tracker`, `rest` merged in. */
const jiraTracker = (jira: JiraFake, rest: Record<string, unknown>) => ({
  kind: 'jira',
  url: jira.url,
  project: jira.project,
  email: EMAIL,
  ...rest,
});

interface Adf {
  type: string;
  text?: string;
  content?: Adf[];
}

/** An ADF comment as text: text nodes, hard breaks as line breaks, blocks separated by a blank line. */
const text = (doc: unknown): string =>
  ((doc as Adf).content ?? [])
    .map((block) =>
      (block.content ?? []).map((n) => (n.type === 'hardBreak' ? '\n' : (n.text ?? ''))).join(''),
    )
    .join('\n\n');

const adf = (s: string) => ({
  type: 'doc',
  version: 1,
  content: [{ type: 'paragraph', content: [{ type: 'text', text: s }] }],
});

describe('Jira end to end', () => {
  it('imports a To Do issue labelled for orch, runs it to done, merges its pull request and walks the issue to Done', async () => {
    const origin = own(makeOriginRepo());
    // Two issues a page: the import follows the search's nextPageToken.
    const jira = own(await startJiraFake({ email: EMAIL, token: JIRA_TOKEN, pageSize: 2 }));
    const forge = own(await startGiteaFake({ token: FORGE_TOKEN, repoPath: origin.bare }));
    const project = own(
      makeForgeProject(origin, {
        tracker: jiraTracker(jira, {
          import: { states: ['To Do'], labels: ['orch'] },
          stages: WORKFLOW_STAGES,
        }),
        forge: { kind: 'gitea', url: forge.url, repo: forge.repo, merge_method: 'merge' },
      }),
    );
    const unlabelled = jira.createIssue({ summary: 'Not for orch' });
    const started = jira.createIssue({
      summary: 'Someone is on it',
      status: 'In Progress',
      labels: ['orch'],
    });
    const other = jira.createIssue({ summary: 'Another', labels: ['orch', 'later'] });
    const wanted = jira.createIssue({
      summary: 'Add a greeting',
      description: adf('Print hello.'),
      labels: ['orch', 'team-a'],
    });

    await runUntilIdle(project, { ORCH_JIRA_TOKEN: JIRA_TOKEN, ORCH_GITEA_TOKEN: FORGE_TOKEN });

    // Both matching issues are imported (oldest first) and done; the ones the filter leaves out are not.
    const rec = await recorded(project, 'T-2');
    expect(rec.tasks).toEqual([
      { key: 'T-1', stage: 'done', status: 'done' },
      { key: 'T-2', stage: 'done', status: 'done' },
    ]);
    expect(rec.task).toMatchObject({
      title: 'Add a greeting',
      description: 'Print hello.',
      external_source: 'jira',
      external_id: wanted.key,
      external_key: wanted.key,
      external_url: `${jira.url}/browse/${wanted.key}`,
    });
    expect(jira.searches[0]).toBe(
      'project = "PROJ" AND status in ("To Do") AND labels = "orch" ORDER BY created ASC',
    );

    // The two landed side by side: whichever merged second took origin's main with the first in it.
    const pulls = forge.pulls().sort((a, b) => a.head.localeCompare(b.head));
    expect(pulls.map((p) => [p.head, p.merged])).toEqual([
      ['orch/T-1', true],
      ['orch/T-2', true],
    ]);
    const last = pulls.find((p) => p.mergeCommitSha === origin.rev('main'));
    expectLanded(project, origin, last?.mergeCommitSha ?? null, 'T-2');
    expect(origin.show('main', 'changes/T-1.md')).toContain('scripted change for T-1');

    const issue = jira.issue(wanted.key);
    expect(issue.status).toBe('Done');
    expect(issue.labels).toEqual(['orch', 'team-a']);
    const pr = pulls.find((p) => p.head === 'orch/T-2')!;
    expectWrittenBack(issue.comments.map(text), rec, `${forge.url}/acme/app/pulls/${pr.number}`, 'T-2');
    expect(jira.issue(other.key).status).toBe('Done');

    expect(jira.issue(unlabelled.key)).toEqual(unlabelled);
    expect(jira.issue(started.key)).toEqual(started);
  });
  it('an escalation labels the issue and posts the terminal packet as ADF', async () => {
    const jira = own(await startJiraFake({ email: EMAIL, token: JIRA_TOKEN }));
    // The reviewer never approves: two attempts, then max_attempts.
    const project = own(
      makeProject({
        config: {
          budget: { max_attempts: 2 },
          tracker: jiraTracker(jira, {
            import: { labels: ['orch'] },
            stages: { development: WORKFLOW_STAGES.development, escalated: { labels: ['orch-escalated'] } },
          }),
        },
        script: {
          defaults: { reviewer: [{ verdict: 'rejected', comments: 'Add a test for the greeting.' }] },
        },
      }),
    );
    const wanted = jira.createIssue({ summary: 'Add a greeting', labels: ['orch'] });

    await runUntilIdle(project, { ORCH_JIRA_TOKEN: JIRA_TOKEN });

    const rec = await recorded(project);
    expect(rec.task).toMatchObject({ status: 'escalated', terminal_reason: 'max_attempts' });
    const issue = jira.issue(wanted.key);
    expect(issue.status).toBe('In Progress');
    expect(issue.labels).toEqual(['orch', 'orch-escalated']);
    const comments = issue.comments.map(text);
    expectUsagePerRun(comments, rec.runs);
    const packets = comments.filter((c) => c.startsWith('# Terminal packet: T-1'));
    expect(packets).toHaveLength(1);
    expect(packets[0]).toContain('`max_attempts`');
    expect(packets[0]).toContain('Add a test for the greeting.');
    expect(packets[0]).toContain('orch task retry T-1 --max-attempts 5');
    expectAllSent(rec.outbox);
  });
});
