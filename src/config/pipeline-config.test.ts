/** What the pipeline's config check refuses of `candidates`, by key. */
import { describe, expect, it } from 'vitest';
import {
  MergeSchema,
  PipelineSchema,
  WorktreesSchema,
  pipelineProblems,
  resolvePipeline,
} from './pipeline-config.ts';

const problems = (pipeline: unknown) =>
  pipelineProblems(
    resolvePipeline(
      PipelineSchema.parse(pipeline),
      MergeSchema.parse(undefined),
      WorktreesSchema.parse(undefined),
    ),
  );

describe('pipeline.development.candidates', () => {
  it('defaults to one, and takes more with an agent review stage', () => {
    const plan = resolvePipeline(
      PipelineSchema.parse({}),
      MergeSchema.parse(undefined),
      WorktreesSchema.parse(undefined),
    );
    expect(plan.stages.find((s) => s.name === 'development')?.candidates).toBe(1);
    expect(problems({ development: { candidates: 3 } })).toEqual([]);
  });

  it('refuses candidates without a review to choose, on another stage, or out of range', () => {
    expect(problems({ development: { candidates: 2 }, review: { enabled: false } })).toEqual([
      { key: 'pipeline.development.candidates', message: expect.stringMatching(/enable the review stage/) },
    ]);
    expect(problems({ testing: { candidates: 2 } })).toEqual([
      { key: 'pipeline.testing.candidates', message: 'only the development stage runs candidates' },
    ]);
    expect(PipelineSchema.safeParse({ development: { candidates: 10 } }).success).toBe(false);
    expect(PipelineSchema.safeParse({ development: { candidates: 0 } }).success).toBe(false);
  });
});
