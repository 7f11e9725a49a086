/**
 * API configuration from environment variables, validated once at start-up. A missing or bad value
 * stops the process with the variable's name (never its value: several of them are secrets).
 */
import { z } from 'zod';
import { ConfigError, int, parseEnv, sharedEnv } from '../config';

export { ConfigError };

const secret = (minLength: number, what: string) =>
  z.string({ error: 'is required' }).min(minLength, `must be at least ${minLength} characters (${what})`);

const DAY = 86_400;

/** A comma-separated list of at most 5 values, each checked by `item`. */
const list = (item: z.ZodType<string, string>) =>
  z
    .string({ error: 'is required' })
    .transform((v) => v.split(',').map((x) => x.trim()))
    .pipe(z.array(item).min(1).max(5, 'at most 5 values (one old, one new, during a rotation)'));

const schema = z.object({
  ...sharedEnv,
  DB_POOL_SIZE: int(1, 100).default(10),
  /** Deadline of each Temporal call the API makes (start, signal). */
  TEMPORAL_TIMEOUT_MS: int(100, 60_000).default(5_000),
  /** Budget for the live `status` query; PostgreSQL answers when Temporal is slower. */
  STATUS_QUERY_TIMEOUT_MS: int(50, 10_000).default(750),
  /** Deadline of each readiness check. */
  READY_TIMEOUT_MS: int(100, 30_000).default(2_000),
  /** One round of readiness checks answers every /readyz caller for this long (0: each runs its own). */
  READY_CACHE_MS: int(0, 60_000).default(1_000),
  /**
   * The endpoint's signing secret; during a rotation, the old and the new one, comma-separated
   * (a delivery signed with any of them is accepted).
   */
  STRIPE_WEBHOOK_SECRET: list(z.string().startsWith('whsec_', 'must be Stripe webhook signing secrets (whsec_...), comma-separated')),
  /**
   * Reads subscriptions, invoice payments and events (a restricted key with read access suffices).
   * Without it, one-off payments and subscription events that carry the subscription still work;
   * events that name only a subscription (invoice.paid, checkout) answer 500 until it is set.
   */
  STRIPE_API_KEY: z.string().regex(/^(sk|rk)_(test|live)_/, 'must be a Stripe secret or restricted key (sk_test_..., rk_live_...)').optional(),
  /** Base URL of the Stripe API: Stripe's own by default; stripe-mock's in the local stack. */
  STRIPE_API_BASE: z.url({ protocol: /^https?$/, error: 'must be an http(s) URL' }).optional(),
  /** Deadline of each Stripe API call; the library retries a failed read this many times more. */
  STRIPE_TIMEOUT_MS: int(100, 60_000).default(5_000),
  STRIPE_MAX_RETRIES: int(0, 5).default(1),
  /**
   * Which events this deployment accepts: `test` or `live` (Stripe's `livemode`). Default: the
   * mode of STRIPE_API_KEY, else test. An event of the other mode is ignored with the reason.
   */
  STRIPE_MODE: z.enum(['test', 'live']).optional(),
  /**
   * Stripe Connect accounts (acct_..., comma-separated) whose events are acted on. Unset: none;
   * an event that carries `account` is then ignored with the reason.
   */
  STRIPE_CONNECT_ACCOUNTS: z
    .string()
    .regex(/^acct_[A-Za-z0-9]{1,100}(,acct_[A-Za-z0-9]{1,100})*$/, 'must be a comma-separated list of Stripe account ids (acct_...)')
    .optional()
    .transform((v) => new Set(v ? v.split(',') : [])),
  /** Subscription statuses that suspend a tenant (comma-separated). past_due is not among them by default: Stripe is still retrying. */
  SUSPEND_ON_STATUSES: z
    .string()
    .regex(/^[a-z_]+(,[a-z_]+)*$/, 'must be a comma-separated list of Stripe subscription statuses, e.g. unpaid,paused')
    .refine((v) => !v.split(',').some((s) => ['active', 'trialing', 'canceled', 'incomplete_expired'].includes(s)), 'may not contain active, trialing, canceled or incomplete_expired')
    .default('unpaid,paused')
    .transform((v) => new Set(v.split(','))),
  /** The outbox dispatcher: poll interval when idle, and the cap of its retry backoff. */
  OUTBOX_POLL_MS: int(10, 60_000).default(1_000),
  OUTBOX_MAX_BACKOFF_MS: int(100, 3_600_000).default(60_000),
  /**
   * Retention (src/db/retention.ts): how often the API prunes old rows (0: never), and the ages
   * after which final Stripe events, settled outbox rows, idempotency keys and step-log rows go.
   * The newest RETENTION_STEPS_KEEP step rows of each tenant are always kept.
   */
  RETENTION_INTERVAL_SECONDS: int(0, 7 * DAY).default(3_600),
  RETENTION_EVENTS_DAYS: int(4, 3_650).default(30),
  RETENTION_OUTBOX_DAYS: int(1, 3_650).default(30),
  RETENTION_IDEMPOTENCY_HOURS: int(1, 24 * 3_650).default(48),
  RETENTION_STEPS_DAYS: int(1, 3_650).default(180),
  RETENTION_STEPS_KEEP: int(0, 100_000).default(200),
  /** Stripe's default is 300 s; a replayed request older than this is refused. */
  STRIPE_WEBHOOK_TOLERANCE_SECONDS: int(1, 3600).default(300),
  WEBHOOK_BODY_LIMIT: z.string().regex(/^\d+(b|kb|mb)$/i, 'must be a size like 256kb').default('256kb'),
  JWT_SECRET: secret(32, 'an HS256 key needs 256 bits'),
  JWT_ISSUER: z.string({ error: 'is required' }).min(1),
  JWT_AUDIENCE: z.string({ error: 'is required' }).min(1),
  JWT_CLOCK_TOLERANCE_SECONDS: int(0, 300).default(5),
  /**
   * The oldest user token accepted, from its `iat` (required), and the longest lifetime
   * (`exp - iat`) one may claim: a leaked token stops working after this long whatever its `exp`.
   */
  JWT_MAX_AGE_SECONDS: int(60, 30 * DAY).default(DAY),
  /**
   * Accepted on the admin port only. During a rotation, the new and the old token,
   * comma-separated: deploy both, move the callers to the new one, then drop the old.
   */
  SERVICE_TOKEN: list(
    secret(32, 'a guessable service token is no authentication').regex(
      /^[A-Za-z0-9\-._~+/]+=*$/,
      'must use only the characters of a bearer token (letters, digits and -._~+/, = padding at the end); several are separated by commas',
    ),
  ),
  /** Loopback by default: a container or a host that must serve others sets 0.0.0.0 (the chart does). */
  HOST: z.string().min(1).default('127.0.0.1'),
  PORT: int(0, 65_535).default(8080),
  /** The internal admin port (/metrics, readiness, every service-token endpoint): never expose it publicly. */
  ADMIN_HOST: z.string().min(1).default('127.0.0.1'),
  ADMIN_PORT: int(0, 65_535).default(9090),
  /** Requests per minute per client address on /api and on /webhooks; 0 turns a limit off. */
  RATE_LIMIT_PER_MINUTE: int(0, 1_000_000).default(600),
  RATE_LIMIT_WEBHOOK_PER_MINUTE: int(0, 1_000_000).default(3_000),
  /** Proxies in front of the API whose X-Forwarded-For is trusted for the client address (0: none). */
  TRUST_PROXY: int(0, 10).default(0),
  /** Grace period between a subscription's deletion and the tenant's teardown. */
  DEPROVISION_GRACE_SECONDS: int(0, 365 * DAY).default(7 * DAY),
  /**
   * After SIGTERM, how long /readyz answers 503 while the listener still serves, so that load
   * balancers and Kubernetes endpoints notice before connections are refused.
   */
  SHUTDOWN_DELAY_MS: int(0, 120_000).default(5_000),
  /** Then how long in-flight requests get before remaining connections are closed. */
  SHUTDOWN_TIMEOUT_MS: int(0, 120_000).default(20_000),
});

export type ApiConfig = z.infer<typeof schema>;

export function loadApiConfig(env: NodeJS.ProcessEnv = process.env): ApiConfig {
  return parseEnv(schema, env, 'API configuration');
}

/** Live mode when STRIPE_MODE says so, else when the API key is a live one. */
export function stripeLivemode(config: Pick<ApiConfig, 'STRIPE_MODE' | 'STRIPE_API_KEY'>): boolean {
  if (config.STRIPE_MODE) return config.STRIPE_MODE === 'live';
  return /^(sk|rk)_live_/.test(config.STRIPE_API_KEY ?? '');
}
