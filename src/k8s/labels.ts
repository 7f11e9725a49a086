import { normalizeTenantId } from '../naming';

export const MANAGED_BY = 'tenant-provisioner';

/** Server-side apply field manager: lets the API server tell our fields from anyone else's. */
export const FIELD_MANAGER = 'tenant-provisioner';

export const LABEL_TENANT_ID = 'tenancy.dev/tenant-id';
export const LABEL_PLAN = 'tenancy.dev/plan';
export const LABEL_MANAGED_BY = 'app.kubernetes.io/managed-by';

const LABEL_VALUE_MAX_LENGTH = 63;
const LABEL_VALUE_PATTERN = /^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/;

/** True when `s` is accepted by Kubernetes as a label value. */
export function isLabelValue(s: string): boolean {
  return typeof s === 'string' && s.length <= LABEL_VALUE_MAX_LENGTH && LABEL_VALUE_PATTERN.test(s);
}

const LABEL_KEY_PATTERN = /^([a-z0-9]([-a-z0-9.]*[a-z0-9])?\/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$/;
const LABEL_KEY_MAX_LENGTH = 317;

/**
 * `k=v,k2=v2` as matchLabels (an empty text: no labels). Throws, naming the bad pair, when a pair
 * is not a label key and value Kubernetes accepts.
 */
export function parseLabelSelector(text: string): Record<string, string> {
  const labels: Record<string, string> = {};
  for (const part of text.split(',').map((p) => p.trim()).filter(Boolean)) {
    const eq = part.indexOf('=');
    const [key, value] = eq < 0 ? [part, undefined] : [part.slice(0, eq), part.slice(eq + 1)];
    if (value === undefined || !LABEL_KEY_PATTERN.test(key) || key.length > LABEL_KEY_MAX_LENGTH || !isLabelValue(value)) {
      throw new Error(`must be label=value pairs separated by commas, e.g. app.kubernetes.io/name=ingress-nginx (bad: ${JSON.stringify(part.slice(0, 80))})`);
    }
    labels[key] = value;
  }
  return labels;
}

/**
 * Labels carried by every object we create for a tenant, so that they can be found (and
 * garbage-collected) by tenant, by plan, and as "ours" rather than someone else's.
 */
export function tenantLabels(tenantId: string, plan: string): Record<string, string> {
  const id = normalizeTenantId(tenantId);
  // Checked here rather than left to the API server, whose rejection would surface much later
  // and far from the cause, as a failed apply inside a workflow.
  if (plan.length === 0 || !isLabelValue(plan)) {
    throw new Error(
      `Invalid plan id ${JSON.stringify(plan.slice(0, 80))} for label ${LABEL_PLAN}: a label value must be ` +
        `1-${LABEL_VALUE_MAX_LENGTH} characters of letters, digits, "-", "_" or ".", starting and ending ` +
        'with a letter or digit.',
    );
  }
  return {
    [LABEL_TENANT_ID]: id,
    [LABEL_PLAN]: plan,
    [LABEL_MANAGED_BY]: MANAGED_BY,
  };
}
