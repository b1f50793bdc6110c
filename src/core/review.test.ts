import { describe, expect, it } from 'vitest';
import { reviewDecision, type LineComment, type PullRequestReview } from './review.ts';

const URL = 'https://forge/acme/app/pull/7';
const review = (
  p: Partial<PullRequestReview> & Pick<PullRequestReview, 'state' | 'submittedAt'>,
): PullRequestReview => ({
  id: `review:${p.submittedAt}`,
  author: 'alice',
  body: '',
  answered: false,
  ...p,
});
const comment = (p: Partial<LineComment>): LineComment => ({
  id: 'comment:1',
  author: 'alice',
  path: 'src/a.ts',
  line: 3,
  body: 'Rename.',
  createdAt: '2025-01-01T00:00:05Z',
  answered: false,
  ...p,
});

describe('reviewDecision', () => {
  it.each([
    { name: 'nothing said', reviews: [], comments: [], kind: 'waiting' },
    {
      name: 'a comment-only review',
      reviews: [review({ state: 'commented', submittedAt: 't1' })],
      comments: [],
      kind: 'waiting',
    },
    {
      name: 'an approval',
      reviews: [review({ state: 'approved', submittedAt: 't1', author: 'bob' })],
      comments: [],
      kind: 'approved',
    },
    {
      name: 'an approval after answered changes',
      reviews: [
        review({ state: 'changes_requested', submittedAt: 't1', answered: true }),
        review({ state: 'approved', submittedAt: 't2', author: 'bob' }),
      ],
      comments: [],
      kind: 'approved',
    },
    {
      name: 'answered changes after an approval',
      reviews: [
        review({ state: 'approved', submittedAt: 't1', author: 'bob' }),
        review({ state: 'changes_requested', submittedAt: 't2', answered: true }),
      ],
      comments: [],
      kind: 'waiting',
    },
    {
      name: 'an approval with an unanswered line comment',
      reviews: [review({ state: 'approved', submittedAt: 't1', author: 'bob' })],
      comments: [comment({})],
      kind: 'changes_requested',
    },
    {
      name: 'an answered line comment',
      reviews: [],
      comments: [comment({ answered: true })],
      kind: 'waiting',
    },
  ])('$name: $kind', ({ reviews, comments, kind }) => {
    expect(reviewDecision({ reviews, comments }, URL).kind).toBe(kind);
  });

  it("gathers every unanswered review's text and line comment, and their ids", () => {
    const d = reviewDecision(
      {
        reviews: [
          review({ id: 'review:1', state: 'changes_requested', submittedAt: 't1', body: 'Not yet.' }),
          review({
            id: 'review:2',
            state: 'changes_requested',
            submittedAt: 't0',
            body: 'Old.',
            answered: true,
          }),
        ],
        comments: [comment({ id: 'comment:9', line: null, path: 'docs/x.md', body: 'Typo.' }), comment({})],
      },
      URL,
    );
    expect(d).toEqual({
      kind: 'changes_requested',
      feedback: `Review of ${URL}:\n\nalice requested changes:\nNot yet.\n\nComments on the diff:\n- docs/x.md: Typo. (alice)\n- src/a.ts:3: Rename. (alice)`,
      handled: ['review:1', 'comment:9', 'comment:1'],
    });
  });

  it('says who approved, once each', () => {
    const reviews = [
      review({ state: 'approved', submittedAt: 't1', author: 'bob' }),
      review({ state: 'approved', submittedAt: 't2', author: 'bob' }),
      review({ state: 'approved', submittedAt: 't3', author: 'carol' }),
    ];
    expect(reviewDecision({ reviews, comments: [] }, URL)).toEqual({
      kind: 'approved',
      by: ['bob', 'carol'],
    });
  });
});
