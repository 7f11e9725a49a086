/**
 * The plan catalogue: the one place where plan sizes are defined. Everything that sizes a tenant
 * (ResourceQuota, LimitRange, the tenant application's Helm values) reads it from here.
 */
import { z } from 'zod';
import type { Egress } from './k8s/network-policies';
import { issueText, zodIssues } from './validation';

export interface Plan {
  id: string;
  displayName: string;
  quota: {
    requestsCpu: string;
    requestsMemory: string;
    limitsCpu: string;
    limitsMemory: string;
    requestsStorage: string;
    persistentVolumeClaims: number;
    pods: number;
    services: number;
    secrets: number;
    configMaps: number;
  };
  limitRange: {
    defaultRequestCpu: string;
    defaultRequestMemory: string;
    defaultLimitCpu: string;
    defaultLimitMemory: string;
    maxCpu: string;
    maxMemory: string;
  };
  app: {
    replicas: number;
    requestsCpu: string;
    requestsMemory: string;
    limitsCpu: string;
    limitsMemory: string;
  };
  /**
   * What the tenant's pods may reach outside the cluster besides DNS: `none`, or `internet`
   * (any address but the cluster's own ranges, the private ranges and link-local, see
   * k8s/network-policies.ts). Catalogues that leave it out get `none`.
   */
  egress: Egress;
  /**
   * Which Stripe Prices select this plan. Without it, a Price whose `lookup_key` is the plan id
   * selects it; `metadata.plan` on the Price or its Product always may. In live mode only
   * `priceIds` select a plan (see PlanCatalogue.planForPrice).
   */
  stripe?: {
    lookupKeys?: string[];
    priceIds?: string[];
    /**
     * What a one-off payment (`payment_intent.*` with `metadata.plan`) must be to buy this plan:
     * the amount in the currency's smallest unit and the ISO currency code, lowercase as Stripe
     * writes it. A plan without it cannot be bought by a one-off payment.
     */
    oneOffPrice?: { amount: number; currency: string };
  };
}

/** The parts of a Stripe Price that can name a plan. */
export interface StripePriceRef {
  id?: string | null;
  lookup_key?: string | null;
  metadata?: Record<string, string> | null;
  /** The Product, when expanded (an id string otherwise). */
  product?: string | { metadata?: Record<string, string> | null } | null;
}

export type PriceResolution = { plan: string } | { unknown: string } | { none: true };

/** Maximum plan id length: ids end up in label values and resource names next to other text. */
export const PLAN_ID_MAX_LENGTH = 30;

// Sizing notes for the defaults:
// - quota limits leave room for at least one extra app pod, because a rolling update creates the
//   new pod before deleting the old one and that surge pod is charged to the quota too;
// - `secrets` leaves room for Helm's release history (one Secret per revision, 10 kept by default)
//   on top of the tenant credentials;
// - `configMaps` counts the kube-root-ca.crt ConfigMap that Kubernetes puts in every namespace.
const STARTER: Plan = {
  id: 'starter',
  displayName: 'Starter',
  stripe: { oneOffPrice: { amount: 2000, currency: 'usd' } },
  quota: {
    requestsCpu: '500m',
    requestsMemory: '512Mi',
    limitsCpu: '1',
    limitsMemory: '1Gi',
    requestsStorage: '5Gi',
    persistentVolumeClaims: 2,
    pods: 10,
    services: 5,
    secrets: 20,
    configMaps: 10,
  },
  limitRange: {
    defaultRequestCpu: '50m',
    defaultRequestMemory: '64Mi',
    defaultLimitCpu: '200m',
    defaultLimitMemory: '128Mi',
    maxCpu: '500m',
    maxMemory: '512Mi',
  },
  app: { replicas: 1, requestsCpu: '50m', requestsMemory: '64Mi', limitsCpu: '200m', limitsMemory: '128Mi' },
  egress: 'none',
};

const PRO: Plan = {
  id: 'pro',
  displayName: 'Pro',
  stripe: { oneOffPrice: { amount: 9900, currency: 'usd' } },
  quota: {
    requestsCpu: '2',
    requestsMemory: '4Gi',
    limitsCpu: '4',
    limitsMemory: '8Gi',
    requestsStorage: '50Gi',
    persistentVolumeClaims: 5,
    pods: 30,
    services: 10,
    secrets: 30,
    configMaps: 30,
  },
  limitRange: {
    defaultRequestCpu: '100m',
    defaultRequestMemory: '128Mi',
    defaultLimitCpu: '500m',
    defaultLimitMemory: '512Mi',
    maxCpu: '2',
    maxMemory: '4Gi',
  },
  app: { replicas: 2, requestsCpu: '250m', requestsMemory: '256Mi', limitsCpu: '1', limitsMemory: '1Gi' },
  egress: 'internet',
};

const ENTERPRISE: Plan = {
  id: 'enterprise',
  displayName: 'Enterprise',
  stripe: { oneOffPrice: { amount: 49900, currency: 'usd' } },
  quota: {
    requestsCpu: '8',
    requestsMemory: '16Gi',
    limitsCpu: '16',
    limitsMemory: '32Gi',
    requestsStorage: '500Gi',
    persistentVolumeClaims: 20,
    pods: 100,
    services: 30,
    secrets: 100,
    configMaps: 100,
  },
  limitRange: {
    defaultRequestCpu: '250m',
    defaultRequestMemory: '256Mi',
    defaultLimitCpu: '1',
    defaultLimitMemory: '1Gi',
    maxCpu: '4',
    maxMemory: '8Gi',
  },
  app: { replicas: 3, requestsCpu: '500m', requestsMemory: '512Mi', limitsCpu: '2', limitsMemory: '2Gi' },
  egress: 'internet',
};

function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const child of Object.values(value)) deepFreeze(child);
  }
  return value;
}

/** Frozen: a caller mutating a shared plan would silently resize every later tenant. */
export const DEFAULT_PLANS: readonly Plan[] = deepFreeze([STARTER, PRO, ENTERPRISE]);

// ---------------------------------------------------------------------------------------------
// Quantities
// ---------------------------------------------------------------------------------------------

// The grammar of k8s.io/apimachinery/pkg/api/resource.Quantity. The decimal exponent is tried
// before the bare "E" (exa) suffix, so "1e3" is 1000 and "1E" is 10^18, as in Kubernetes.
const QUANTITY_PATTERN =
  /^([+-]?)(\d+(?:\.\d*)?|\.\d+)(?:(Ki|Mi|Gi|Ti|Pi|Ei)|[eE]([+-]?\d+)|(n|u|m|k|M|G|T|P|E)?)$/;

const BINARY_POWERS: Readonly<Record<string, number>> = { Ki: 1, Mi: 2, Gi: 3, Ti: 4, Pi: 5, Ei: 6 };
const DECIMAL_EXPONENTS: Readonly<Record<string, number>> = {
  n: -9,
  u: -6,
  m: -3,
  k: 3,
  M: 6,
  G: 9,
  T: 12,
  P: 15,
  E: 18,
};

// Bounds the BigInt arithmetic below; real quantities never get anywhere near it.
const MAX_DECIMAL_EXPONENT = 300;

/** A quantity as an exact fraction, so that comparisons like 3 x 100m <= 300m are not at the mercy of floating point. */
interface Fraction {
  num: bigint;
  den: bigint; // always > 0
}

class QuantityError extends Error {
  override readonly name = 'QuantityError';
}

function invalidQuantity(q: unknown, why: string): QuantityError {
  const shown = typeof q === 'string' ? JSON.stringify(q.length > 40 ? `${q.slice(0, 40)}...` : q) : String(q);
  return new QuantityError(
    `Invalid Kubernetes quantity ${shown}: ${why}. Expected a number with an optional suffix, ` +
      'e.g. "500m", "2", "2.5", "128Mi", "1Gi", "1G", "100k" or "1e3".',
  );
}

function quantityToFraction(q: string): Fraction {
  if (typeof q !== 'string') throw invalidQuantity(q, 'not a string');
  const match = QUANTITY_PATTERN.exec(q);
  if (!match) throw invalidQuantity(q, 'not in Kubernetes quantity format');
  const [, sign = '', digits = '', binarySuffix, exponent, decimalSuffix] = match;

  const [whole = '', fractional = ''] = digits.split('.');
  let num = BigInt(`${whole}${fractional}` || '0');
  let den = 10n ** BigInt(fractional.length);

  let decimalExponent = 0;
  if (binarySuffix !== undefined) {
    num *= 1024n ** BigInt(BINARY_POWERS[binarySuffix] ?? 0);
  } else if (exponent !== undefined) {
    decimalExponent = Number(exponent);
    if (Math.abs(decimalExponent) > MAX_DECIMAL_EXPONENT) {
      throw invalidQuantity(q, `exponent ${exponent} is out of range`);
    }
  } else if (decimalSuffix !== undefined) {
    decimalExponent = DECIMAL_EXPONENTS[decimalSuffix] ?? 0;
  }
  if (decimalExponent > 0) num *= 10n ** BigInt(decimalExponent);
  if (decimalExponent < 0) den *= 10n ** BigInt(-decimalExponent);

  return { num: sign === '-' ? -num : num, den };
}

function fractionToNumber({ num, den }: Fraction): number {
  // Dividing (rather than multiplying by 0.001) keeps "100m" at exactly 0.1.
  return Number(num) / Number(den);
}

/**
 * Converts a Kubernetes quantity ("500m", "1", "2.5", "128Mi", "1Gi", "1G", "1e3", "100k") to a
 * plain number: cores for CPU, bytes for memory and storage. Throws an Error naming the input
 * when it is not a valid quantity.
 */
export function parseQuantity(q: string): number {
  const value = fractionToNumber(quantityToFraction(q));
  if (!Number.isFinite(value)) throw invalidQuantity(q, 'too large');
  return value;
}

/** Negative, zero or positive as a < b, a = b, a > b, computed exactly. */
function compareFractions(a: Fraction, b: Fraction): number {
  const left = a.num * b.den;
  const right = b.num * a.den;
  return left < right ? -1 : left > right ? 1 : 0;
}

// ---------------------------------------------------------------------------------------------
// Validation
// ---------------------------------------------------------------------------------------------

/** Thrown when a plan catalogue is unusable. `problems` holds one line per problem found. */
export class PlanCatalogueError extends Error {
  override readonly name = 'PlanCatalogueError';
  readonly problems: readonly string[];

  constructor(problems: readonly string[]) {
    const count = problems.length === 1 ? '1 problem' : `${problems.length} problems`;
    super(`Invalid plan catalogue (${count}):\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.problems = problems;
  }
}

const quantity = z.string().superRefine((value, ctx) => {
  try {
    const parsed = quantityToFraction(value);
    if (parsed.num < 0n) ctx.addIssue({ code: 'custom', message: `must not be negative, got "${value}"` });
    else if (!Number.isFinite(fractionToNumber(parsed))) ctx.addIssue({ code: 'custom', message: `"${value}" is too large` });
  } catch (err) {
    ctx.addIssue({ code: 'custom', message: err instanceof Error ? err.message : String(err) });
  }
});

const count = z.int().nonnegative();

const PLAN_ID_PATTERN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

const planId = z.string().superRefine((value, ctx) => {
  if (!PLAN_ID_PATTERN.test(value) || value.length > PLAN_ID_MAX_LENGTH) {
    ctx.addIssue({
      code: 'custom',
      message:
        'must be a DNS-1123 label (lowercase letters, digits and "-", starting and ending with a letter or ' +
        `digit) of at most ${PLAN_ID_MAX_LENGTH} characters`,
    });
  }
});

const planSchema: z.ZodType<Plan> = z.strictObject({
  id: planId,
  displayName: z.string().trim().min(1),
  quota: z.strictObject({
    requestsCpu: quantity,
    requestsMemory: quantity,
    limitsCpu: quantity,
    limitsMemory: quantity,
    requestsStorage: quantity,
    persistentVolumeClaims: count,
    pods: count,
    services: count,
    secrets: count,
    configMaps: count,
  }),
  limitRange: z.strictObject({
    defaultRequestCpu: quantity,
    defaultRequestMemory: quantity,
    defaultLimitCpu: quantity,
    defaultLimitMemory: quantity,
    maxCpu: quantity,
    maxMemory: quantity,
  }),
  app: z.strictObject({
    replicas: count,
    requestsCpu: quantity,
    requestsMemory: quantity,
    limitsCpu: quantity,
    limitsMemory: quantity,
  }),
  egress: z.enum(['none', 'internet']).default('none'),
  stripe: z
    .strictObject({
      lookupKeys: z.array(z.string().min(1).max(200)).max(50).optional(),
      priceIds: z.array(z.string().regex(/^price_[A-Za-z0-9_]{1,200}$/, 'must be a Stripe price id (price_...)')).max(50).optional(),
      oneOffPrice: z
        .strictObject({
          amount: z.int().positive().max(99_999_999),
          currency: z.string().regex(/^[a-z]{3}$/, 'must be a lowercase ISO 4217 currency code, as Stripe writes it (usd, eur, ...)'),
        })
        .optional(),
    })
    .optional(),
});

/** How a plan is named in messages: by id when it has one, otherwise by position. */
function planLabel(raw: unknown, index: number): string {
  if (typeof raw === 'object' && raw !== null && 'id' in raw && typeof raw.id === 'string' && raw.id !== '') {
    return `plan ${JSON.stringify(raw.id)}`;
  }
  return `plans[${index}]`;
}

type Section = 'quota' | 'limitRange' | 'app';

interface QuantityField {
  field: string;
  text: string;
  value: Fraction;
}

/** Reads a quantity field of a plan that has passed the schema; `field` names it in messages. */
function quantityField<S extends Section>(plan: Plan, section: S, key: keyof Plan[S] & string): QuantityField {
  const text: unknown = plan[section][key];
  if (typeof text !== 'string') throw new Error(`internal error: ${section}.${key} is not a quantity field`);
  return { field: `${section}.${key}`, text, value: quantityToFraction(text) };
}

function semanticProblems(plan: Plan, label: string): string[] {
  const problems: string[] = [];
  const notAbove = (a: QuantityField, b: QuantityField): void => {
    if (compareFractions(a.value, b.value) > 0) {
      problems.push(`${label}: ${a.field} (${a.text}) exceeds ${b.field} (${b.text})`);
    }
  };

  for (const resource of ['Cpu', 'Memory'] as const) {
    const defaultRequest = quantityField(plan, 'limitRange', `defaultRequest${resource}` as const);
    const defaultLimit = quantityField(plan, 'limitRange', `defaultLimit${resource}` as const);
    const max = quantityField(plan, 'limitRange', `max${resource}` as const);
    notAbove(defaultRequest, defaultLimit);
    notAbove(defaultLimit, max);

    const appRequest = quantityField(plan, 'app', `requests${resource}` as const);
    const appLimit = quantityField(plan, 'app', `limits${resource}` as const);
    notAbove(appRequest, appLimit);
    notAbove(appLimit, max);

    // Every replica is charged to the quota; if they do not all fit, the Deployment never becomes
    // ready and the provisioning workflow waits on it until it times out.
    const replicas = BigInt(plan.app.replicas);
    for (const [app, quota] of [
      [appLimit, quantityField(plan, 'quota', `limits${resource}` as const)],
      [appRequest, quantityField(plan, 'quota', `requests${resource}` as const)],
    ] as const) {
      if (compareFractions({ num: app.value.num * replicas, den: app.value.den }, quota.value) > 0) {
        problems.push(
          `${label}: app.replicas (${plan.app.replicas}) x ${app.field} (${app.text}) exceeds ${quota.field} (${quota.text})`,
        );
      }
    }
  }

  if (plan.app.replicas > plan.quota.pods) {
    problems.push(`${label}: app.replicas (${plan.app.replicas}) exceeds quota.pods (${plan.quota.pods})`);
  }
  return problems;
}

/**
 * Validates a plan catalogue (an array of plans, e.g. parsed from PLANS_JSON) and returns it
 * typed. Throws PlanCatalogueError listing every problem found, each with the plan and field.
 */
export function validatePlanCatalogue(input: unknown): Plan[] {
  if (!Array.isArray(input)) {
    throw new PlanCatalogueError([
      `the catalogue must be a JSON array of plans, got ${input === null ? 'null' : typeof input}`,
    ]);
  }
  if (input.length === 0) throw new PlanCatalogueError(['the catalogue must contain at least one plan']);

  const problems: string[] = [];
  const plans: Plan[] = [];
  const firstIndexById = new Map<string, number>();

  input.forEach((raw: unknown, index) => {
    const label = planLabel(raw, index);
    const result = planSchema.safeParse(raw);
    if (!result.success) {
      for (const issue of zodIssues(result.error)) problems.push(`${label}: ${issueText(issue, { bareRoot: true })}`);
    } else {
      problems.push(...semanticProblems(result.data, label));
      plans.push(result.data);
    }

    if (typeof raw === 'object' && raw !== null && 'id' in raw && typeof raw.id === 'string') {
      const first = firstIndexById.get(raw.id);
      if (first === undefined) firstIndexById.set(raw.id, index);
      else problems.push(`${label}: id is not unique (plans[${first}] and plans[${index}] both use it)`);
    }
  });

  problems.push(...stripeSelectorProblems(plans));
  if (problems.length > 0) throw new PlanCatalogueError(problems);
  return plans;
}

/** A lookup key or price id may select one plan only, or a Price's plan would depend on catalogue order. */
function stripeSelectorProblems(plans: readonly Plan[]): string[] {
  const problems: string[] = [];
  for (const kind of ['lookupKeys', 'priceIds'] as const) {
    const owner = new Map<string, string>();
    for (const plan of plans) {
      for (const key of plan.stripe?.[kind] ?? []) {
        const first = owner.get(key);
        if (first !== undefined && first !== plan.id) problems.push(`stripe.${kind}: ${JSON.stringify(key)} selects both plan ${first} and plan ${plan.id}`);
        else owner.set(key, plan.id);
      }
    }
  }
  return problems;
}

// ---------------------------------------------------------------------------------------------
// Catalogue
// ---------------------------------------------------------------------------------------------

export class UnknownPlanError extends Error {
  override readonly name = 'UnknownPlanError';

  constructor(
    readonly planId: string,
    readonly knownPlanIds: readonly string[],
  ) {
    const shown = typeof planId === 'string' ? JSON.stringify(planId.slice(0, 80)) : String(planId);
    super(`Unknown plan ${shown}. Known plans: ${knownPlanIds.join(', ')}.`);
  }
}

export class PlanCatalogue {
  private readonly byId: ReadonlyMap<string, Plan>;

  /** Takes plans that have already been through validatePlanCatalogue. */
  constructor(plans: readonly Plan[]) {
    this.byId = new Map(plans.map((plan) => [plan.id, deepFreeze(plan)]));
  }

  get(id: string): Plan {
    const plan = this.byId.get(id);
    if (plan === undefined) throw new UnknownPlanError(id, this.ids());
    return plan;
  }

  /** Plan ids in catalogue order. */
  ids(): string[] {
    return [...this.byId.keys()];
  }

  /**
   * The plan a Stripe Price selects: its `lookup_key` (listed in a plan's `stripe.lookupKeys`, or
   * equal to a plan id when no plan lists lookup keys), else its id (`stripe.priceIds`), else
   * `metadata.plan` on the Price, else on its expanded Product. `unknown` names what the Price
   * offered when none of it is in the catalogue; `none` when it offered nothing.
   *
   * With `explicitOnly` (live mode) only `stripe.priceIds` select: a lookup key can be moved to
   * another Price (`transfer_lookup_key`) and metadata edited by anyone with write access to the
   * Stripe account, while a price id names one immutable amount.
   */
  planForPrice(price: StripePriceRef, options: { explicitOnly?: boolean } = {}): PriceResolution {
    const plans = [...this.byId.values()];
    if (options.explicitOnly) {
      const byId = price.id ? plans.find((p) => p.stripe?.priceIds?.includes(price.id!)) : undefined;
      if (byId) return { plan: byId.id };
      if (!price.id) return { none: true };
      return { unknown: `price ${price.id} is in no plan's stripe.priceIds (${this.ids().join(', ')}); in live mode only explicit price ids select a plan` };
    }
    const offered: string[] = [];
    const lookupKey = price.lookup_key ?? undefined;
    if (lookupKey) {
      offered.push(`lookup_key ${JSON.stringify(lookupKey)}`);
      const listed = plans.find((p) => p.stripe?.lookupKeys?.includes(lookupKey));
      if (listed) return { plan: listed.id };
      const anyListed = plans.some((p) => p.stripe?.lookupKeys !== undefined);
      if (!anyListed && this.byId.has(lookupKey)) return { plan: lookupKey };
    }
    if (price.id) {
      const byId = plans.find((p) => p.stripe?.priceIds?.includes(price.id!));
      if (byId) return { plan: byId.id };
    }
    const product = typeof price.product === 'object' && price.product !== null ? price.product : undefined;
    for (const [where, named] of [
      ['price metadata.plan', price.metadata?.plan],
      ['product metadata.plan', product?.metadata?.plan],
    ] as const) {
      if (!named) continue;
      if (this.byId.has(named)) return { plan: named };
      offered.push(`${where} ${JSON.stringify(named)}`);
    }
    if (offered.length === 0 && !price.id) return { none: true };
    return { unknown: `${price.id ? `price ${price.id}` : 'a price'}${offered.length ? ` (${offered.join(', ')})` : ''} selects no plan of the catalogue (${this.ids().join(', ')})` };
  }
}

/**
 * Builds the catalogue from PLANS_JSON when it is set, otherwise from DEFAULT_PLANS. An empty or
 * blank value counts as unset, because deployment templates render unset values as "".
 * Either way the catalogue is validated, so a bad one stops the service at start-up rather than
 * failing tenant provisioning later.
 */
export function loadPlanCatalogue(json?: string): PlanCatalogue {
  if (json === undefined || json.trim() === '') {
    return new PlanCatalogue(validatePlanCatalogue(DEFAULT_PLANS));
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(json);
  } catch (err) {
    const reason = err instanceof Error ? err.message : String(err);
    throw new PlanCatalogueError([`PLANS_JSON is not valid JSON (${reason})`]);
  }
  return new PlanCatalogue(validatePlanCatalogue(parsed));
}
