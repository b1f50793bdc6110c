/**
 * What the scripted agent does for a role when its script gives no steps (or
 * there is no script): small, deterministic artifacts that name the task, so a
 * demo pipeline has files to gate on and a diff that changes per attempt.
 * Written as ordinary steps; `{{key}}`, `{{title}}` and `{{attempt}}` are
 * substituted like in a script.
 */
import type { Role } from '../../core/stages.ts';
import type { Step } from './script.ts';

const dir = 'docs/tasks/{{key}}';

export const BUILTIN_STEPS: Readonly<Record<Role, readonly Step[]>> = {
  analyst: [
    { message: 'Analysing {{key}}: {{title}}' },
    {
      write: {
        path: `${dir}/requirements.md`,
        content:
          '# Requirements: {{key}}\n\n{{title}}\n\n' +
          '- The change described by the title is implemented.\n' +
          '- Existing behaviour is unchanged.\n\n' +
          '_Written by the scripted analyst._\n',
      },
    },
    {
      write: {
        path: `${dir}/test-plan.md`,
        content:
          '# Test plan: {{key}}\n\n{{title}}\n\n' +
          '1. A test covers the new behaviour.\n' +
          '2. The existing test suite passes.\n\n' +
          '_Written by the scripted analyst._\n',
      },
    },
    { result: 'Wrote the requirements and the test plan for {{key}}: {{title}}.' },
  ],
  architect: [
    {
      write: {
        path: `${dir}/adr.md`,
        content:
          '# ADR: {{key}}\n\n## Context\n\n{{title}}\n\n## Decision\n\n' +
          'Implement the change in the smallest module that owns it.\n\n' +
          '## Consequences\n\nNo new dependencies.\n\n_Written by the scripted architect._\n',
      },
    },
    { result: 'Wrote the ADR for {{key}}: {{title}}.' },
  ],
  developer: [
    {
      append: {
        path: 'changes/{{key}}.md',
        content: '- attempt {{attempt}}: scripted change for {{key}} ({{title}})\n',
      },
    },
    { result: 'Attempt {{attempt}} for {{key}}: recorded the change in changes/{{key}}.md.' },
  ],
  reviewer: [{ verdict: 'approved', comments: 'looks good' }],
  tester: [
    { message: 'No test command to run for {{key}} (scripted).' },
    { result: 'tests passed (scripted)' },
  ],
  deployer: [{ result: 'deployed (scripted)' }],
};
