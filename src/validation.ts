/**
 * How a zod failure is told to a person: each issue as where it points and what is wrong, never
 * the rejected value (it may be a secret, or megabytes of a request body). Every parser that
 * reports zod issues (configuration, plan catalogue, API requests, Stripe events) goes through here.
 */
import type { z } from 'zod';

export interface Issue {
  /** `a.b.0`, or `(root)` when the value itself is wrong. */
  path: string;
  message: string;
}

export const ROOT = '(root)';

export function zodIssues(error: z.ZodError): Issue[] {
  return error.issues.map((i) => ({ path: i.path.map(String).join('.') || ROOT, message: i.message }));
}

/** One issue as `path: message`; an issue of the value itself as its message alone when `bareRoot`. */
export function issueText(issue: Issue, options: { bareRoot?: boolean } = {}): string {
  return options.bareRoot && issue.path === ROOT ? issue.message : `${issue.path}: ${issue.message}`;
}

/** The first issue as text, for a one-line error; undefined when zod gave none. */
export function firstIssueText(error: z.ZodError): string | undefined {
  const first = zodIssues(error)[0];
  return first && issueText(first);
}
