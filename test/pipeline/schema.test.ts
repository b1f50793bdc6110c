/** The committed JSON Schema of orch.yaml is the one the code generates: it cannot drift. */
import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT } from '../helpers/kit.ts';
import { configDiagram, configJsonSchema } from '../../src/cli/commands/config.ts';

describe('orch.yaml JSON Schema', () => {
  it('docs/orch.schema.json matches the schema the code validates with (regenerate: orch config schema)', () => {
    const committed = JSON.parse(readFileSync(join(ROOT, 'docs', 'orch.schema.json'), 'utf8')) as unknown;
    expect(committed).toEqual(configJsonSchema());
  });

  it('describes the pipeline, merge and worktree sections', () => {
    const schema = configJsonSchema() as {
      properties: Record<string, { properties?: Record<string, unknown> }>;
    };
    expect(Object.keys(schema.properties)).toEqual(
      expect.arrayContaining(['pipeline', 'merge', 'worktrees', 'agents', 'budget']),
    );
    expect(Object.keys(schema.properties.pipeline!.properties!)).toContain('deploy-staging');
  });
});

describe('the pipeline state diagram', () => {
  it('docs/architecture.md holds the one the plan draws (regenerate: orch config diagram --default)', async () => {
    const doc = readFileSync(join(ROOT, 'docs', 'architecture.md'), 'utf8');
    const block =
      /<!-- state-diagram:start -->\s*```mermaid\n([\s\S]*?)```\s*<!-- state-diagram:end -->/.exec(doc);
    expect(block?.[1]).toBe(await configDiagram(null));
  });
});
