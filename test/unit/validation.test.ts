import { z } from 'zod';
import { firstIssueText, issueText, zodIssues } from '../../src/validation';

const schema = z.object({ name: z.string(), limits: z.object({ cpu: z.string() }), tags: z.array(z.string()) });

describe('zod issues as people read them', () => {
  it('names each issue by its path, never by the rejected value', () => {
    const result = schema.safeParse({ name: 'sk_live_secret_value', limits: { cpu: 2 }, tags: ['a', 3] });
    expect(result.success).toBe(false);
    const issues = zodIssues(result.error!);
    expect(issues.map((i) => i.path)).toEqual(['limits.cpu', 'tags.1']);
    expect(issues.map((i) => issueText(i))).toEqual([expect.stringMatching(/^limits\.cpu: .*expected string/), expect.stringMatching(/^tags\.1: .*expected string/)]);
    expect(JSON.stringify(issues)).not.toContain('sk_live_secret_value');
  });

  it('calls an issue of the value itself (root), and can leave that label out', () => {
    const result = schema.safeParse('not an object');
    const [issue] = zodIssues(result.error!);
    expect(issue!.path).toBe('(root)');
    expect(firstIssueText(result.error!)).toMatch(/^\(root\): .*expected object/);
    expect(issueText(issue!, { bareRoot: true })).toMatch(/^[^(].*expected object/);
  });
});
