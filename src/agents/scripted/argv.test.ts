import { describe, expect, it } from 'vitest';
import { agentConfig, launchVars } from '../../../test/helpers/adapter-fixtures.ts';
import { SCRIPTED_AGENT_PATH, scriptedArgv, scriptedEnv } from './argv.ts';

describe('scripted argv', () => {
  it('runs this Node binary on the scripted agent', () => {
    expect(scriptedArgv()).toEqual([process.execPath, SCRIPTED_AGENT_PATH]);
    expect(SCRIPTED_AGENT_PATH).toMatch(/src\/agents\/scripted\/agent\.ts$/);
  });

  it.each([
    [undefined, {}],
    ['.orch/script.yaml', { ORCH_SCRIPT_FILE: '/repo/.orch/script.yaml' }],
    ['/abs/script.json', { ORCH_SCRIPT_FILE: '/abs/script.json' }],
  ])('script %s gives env %j', (script, want) => {
    expect(
      scriptedEnv(agentConfig({ adapter: 'scripted', ...(script ? { script } : {}) }), launchVars()),
    ).toEqual(want);
  });
});
