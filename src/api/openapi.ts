/**
 * The OpenAPI 3.1 description of both ports, generated from the zod schemas the handlers validate
 * with (src/api/schemas.ts) through zod's own `z.toJSONSchema`: one source, so the contract cannot
 * drift from what the API accepts. Served at GET /openapi.json on each port;
 * test/unit/openapi.test.ts checks that every route the app registers is described and every
 * described route exists.
 */
import { z } from 'zod';
import { PROBLEMS, PROBLEM_CONTENT_TYPE, problemType, type ProblemSlug } from './problem';
import * as s from './schemas';
import { codecPayloads } from './codec';

type Auth = 'none' | 'user' | 'service' | 'user-or-service' | 'stripe-signature';

interface Response {
  description: string;
  schema?: z.ZodType;
  /** Default application/json; problems are application/problem+json. */
  contentType?: string;
}

export interface RouteSpec {
  method: 'get' | 'post';
  /** Express pattern: `/api/tenants/:tenantId`. */
  path: string;
  operationId: string;
  summary: string;
  tag: string;
  auth: Auth;
  params?: z.ZodObject;
  query?: z.ZodObject;
  body?: z.ZodType;
  /** The body may be omitted entirely (operator actions with only optional fields). */
  bodyOptional?: boolean;
  idempotencyKey?: boolean;
  responses: Record<number, Response>;
  /** Problems this route answers with, beyond the ones every authenticated route may give. */
  problems?: ProblemSlug[];
}

const json = (description: string, schema?: z.ZodType): Response => ({ description, ...(schema ? { schema } : {}) });
const PROBLEM = s.problem;

const tenantParams = s.tenantIdParams;

export const PUBLIC_ROUTES: RouteSpec[] = [
  { method: 'get', path: '/healthz', operationId: 'liveness', summary: 'The process is up (no dependency is asked).', tag: 'health', auth: 'none', responses: { 200: json('Alive', z.object({ status: z.literal('ok') })) } },
  { method: 'get', path: '/openapi.json', operationId: 'publicOpenApi', summary: 'This description.', tag: 'meta', auth: 'none', responses: { 200: json('OpenAPI 3.1 document', z.record(z.string(), z.unknown())) } },
  {
    method: 'post',
    path: '/webhooks/stripe',
    operationId: 'stripeWebhook',
    summary: 'Stripe events: signature verified, recorded once, decided and committed with their outbox rows; answers 2xx fast (Temporal is told by the outbox dispatcher).',
    tag: 'stripe',
    auth: 'stripe-signature',
    body: z.record(z.string(), z.unknown()).meta({ description: 'A Stripe event, byte for byte as Stripe signed it.' }),
    responses: { 200: json('Queued, recorded, ignored (with the reason) or a duplicate', s.webhookResult) },
    problems: ['missing-signature', 'invalid-signature', 'stale-signature', 'malformed-event', 'payload-too-large', 'dependency-unavailable', 'event-not-processed'],
  },
  {
    method: 'get',
    path: '/api/tenants/status',
    operationId: 'listMyTenants',
    summary: "The caller's own tenants, oldest first, a page at a time.",
    tag: 'tenants',
    auth: 'user',
    query: s.userListQuery,
    responses: { 200: json('A page of tenants; `nextCursor` is null on the last page', s.userTenantList) },
    problems: ['invalid-request'],
  },
  {
    method: 'get',
    path: '/api/tenants/:tenantId',
    operationId: 'getTenant',
    summary: "One of the caller's own tenants (someone else's looks absent).",
    tag: 'tenants',
    auth: 'user',
    params: tenantParams,
    responses: { 200: json('The tenant', s.tenantView) },
    problems: ['tenant-not-found'],
  },
];

const signaled = (what: string): Record<number, Response> => ({ 202: json(`${what}: the workflow was signalled`, s.signaled) });

export const ADMIN_ROUTES: RouteSpec[] = [
  { method: 'get', path: '/metrics', operationId: 'metrics', summary: 'Prometheus metrics (text exposition format).', tag: 'meta', auth: 'none', responses: { 200: { description: 'Metrics', contentType: 'text/plain', schema: z.string() } } },
  { method: 'get', path: '/healthz', operationId: 'adminLiveness', summary: 'The process is up (no dependency is asked).', tag: 'health', auth: 'none', responses: { 200: json('Alive', z.object({ status: z.literal('ok') })) } },
  {
    method: 'get',
    path: '/readyz',
    operationId: 'readiness',
    summary: 'Readiness (admin port only; one round of checks answers every caller for READY_CACHE_MS): PostgreSQL answers within its deadline (503 otherwise, and while shutting down); an unreachable Temporal only makes it `degraded`, since events are still accepted into the outbox.',
    tag: 'health',
    auth: 'none',
    responses: { 200: json('Ready, or degraded (Temporal unreachable)', z.object({ status: z.enum(['ready', 'degraded']), checks: z.record(z.string(), z.unknown()), degraded: z.array(z.string()).optional(), detail: z.string().optional() })) },
    problems: ['not-ready'],
  },
  { method: 'get', path: '/openapi.json', operationId: 'adminOpenApi', summary: 'This description.', tag: 'meta', auth: 'none', responses: { 200: json('OpenAPI 3.1 document', z.record(z.string(), z.unknown())) } },
  {
    method: 'get',
    path: '/admin/tenants/:tenantId',
    operationId: 'tenantDetail',
    summary: 'One tenant for operators: status, condition, pending deprovision, step log, user and customer.',
    tag: 'admin',
    auth: 'service',
    params: tenantParams,
    responses: { 200: json('The tenant in detail', s.tenantDetail) },
    problems: ['tenant-not-found'],
  },
  {
    method: 'post',
    path: '/admin/tenants/:tenantId/suspend',
    operationId: 'suspendTenant',
    summary: 'Suspend: the app is scaled to zero, data kept.',
    tag: 'admin',
    auth: 'service',
    params: tenantParams,
    body: s.suspendBody,
    bodyOptional: true,
    responses: signaled('Suspending'),
    problems: ['tenant-not-found', 'tenant-not-running', 'invalid-request'],
  },
  { method: 'post', path: '/admin/tenants/:tenantId/resume', operationId: 'resumeTenant', summary: 'Resume a suspended tenant.', tag: 'admin', auth: 'service', params: tenantParams, responses: signaled('Resuming'), problems: ['tenant-not-found', 'tenant-not-running'] },
  {
    method: 'post',
    path: '/admin/tenants/:tenantId/change-plan',
    operationId: 'changeTenantPlan',
    summary: 'Move a tenant to another plan (quota, limit range and Helm values re-applied).',
    tag: 'admin',
    auth: 'service',
    params: tenantParams,
    body: s.changePlanBody,
    responses: signaled('Changing plan'),
    problems: ['tenant-not-found', 'tenant-not-running', 'unknown-plan', 'invalid-request'],
  },
  {
    method: 'post',
    path: '/admin/tenants/:tenantId/cancel-deprovision',
    operationId: 'cancelDeprovision',
    summary: 'Cancel a deprovision still in its grace period (ignored once teardown has begun).',
    tag: 'admin',
    auth: 'service',
    params: tenantParams,
    responses: signaled('Cancelling the deprovision'),
    problems: ['tenant-not-found', 'tenant-not-running'],
  },
  {
    method: 'post',
    path: '/admin/tenants/:tenantId/retry',
    operationId: 'retryTenant',
    summary: 'Provision a failed tenant again: a new run under the same workflow id.',
    tag: 'admin',
    auth: 'service',
    params: tenantParams,
    responses: { 202: json('Retrying', s.signaled) },
    problems: ['tenant-not-found', 'tenant-state-conflict'],
  },
  {
    method: 'get',
    path: '/api/tenants',
    operationId: 'listTenants',
    summary: 'Any tenants (service token): by customer, user, status or plan, a page at a time.',
    tag: 'tenants',
    auth: 'service',
    query: s.serviceListQuery,
    responses: { 200: json('A page of tenants; `nextCursor` is null on the last page', s.tenantList) },
    problems: ['invalid-request'],
  },
  {
    method: 'get',
    path: '/api/tenants/:tenantId',
    operationId: 'getAnyTenant',
    summary: 'Any one tenant (service token).',
    tag: 'tenants',
    auth: 'service',
    params: tenantParams,
    responses: { 200: json('The tenant', s.tenantView) },
    problems: ['tenant-not-found'],
  },
  {
    method: 'post',
    path: '/api/tenants/provision',
    operationId: 'provisionTenant',
    summary: "Provision (or bring back) a user's tenant; idempotent by Idempotency-Key.",
    tag: 'tenants',
    auth: 'service',
    idempotencyKey: true,
    body: s.provisionBody,
    responses: { 202: json('Accepted: the workflow is on it', s.accepted) },
    problems: ['invalid-request', 'missing-idempotency-key', 'idempotency-key-in-use', 'idempotency-key-reused', 'unknown-plan', 'unknown-user', 'tenant-conflict', 'unsupported-media-type'],
  },
  {
    method: 'post',
    path: '/api/tenants/deprovision',
    operationId: 'deprovisionTenant',
    summary: 'Deprovision a tenant (after an optional grace period); a closed workflow gets a cleanup run.',
    tag: 'tenants',
    auth: 'service',
    idempotencyKey: true,
    body: s.deprovisionBody,
    responses: { 202: json('Accepted', s.accepted) },
    problems: ['invalid-request', 'missing-idempotency-key', 'idempotency-key-in-use', 'idempotency-key-reused', 'tenant-not-found', 'unsupported-media-type'],
  },
  {
    method: 'get',
    path: '/api/events',
    operationId: 'listStripeEvents',
    summary: 'Stripe events as recorded, newest first, a page at a time (service token).',
    tag: 'stripe',
    auth: 'service',
    query: s.eventListQuery,
    responses: { 200: json('A page of events; `nextCursor` is null on the last page', s.eventList) },
    problems: ['invalid-request'],
  },
  {
    method: 'get',
    path: '/api/events/:eventId',
    operationId: 'getStripeEvent',
    summary: 'One recorded event and its outbox rows: what was sent to the workflow, when, and what came of it.',
    tag: 'stripe',
    auth: 'service',
    params: s.eventIdParams,
    responses: { 200: json('The event', s.eventDetail) },
    problems: ['invalid-request', 'event-not-found'],
  },
  {
    method: 'post',
    path: '/api/events/:eventId/reprocess',
    operationId: 'reprocessStripeEvent',
    summary: 'Fetch the event again from the Stripe API (events.retrieve) and process it as a delivery, even if it already has an outcome.',
    tag: 'stripe',
    auth: 'service',
    params: s.eventIdParams,
    bodyOptional: true,
    responses: { 200: json('What processing it did', s.reprocessResult) },
    problems: ['invalid-request', 'event-not-found', 'event-not-processed', 'dependency-unavailable'],
  },
  {
    method: 'post',
    path: '/codec/decode',
    operationId: 'decodePayloads',
    summary: "Decrypts payloads of the payload codec (TEMPORAL_PAYLOAD_KEYS), in the codec-server protocol of Temporal's Web UI and CLI (`--codec-endpoint <admin>/codec`).",
    tag: 'admin',
    auth: 'service',
    body: codecPayloads,
    responses: { 200: json('The payloads, decrypted (plaintext ones as they came)', codecPayloads) },
    problems: ['invalid-request', 'payload-too-large'],
  },
];

/** `/api/tenants/:tenantId` → `/api/tenants/{tenantId}` */
export function openApiPath(expressPath: string): string {
  return expressPath.replace(/:([A-Za-z0-9_]+)/g, '{$1}');
}

type JsonSchema = Record<string, unknown>;

/** zod → JSON Schema 2020-12 (OpenAPI 3.1's dialect); named schemas move to components. */
function schemaOf(schema: z.ZodType, io: 'input' | 'output', components: Record<string, JsonSchema>): JsonSchema {
  const out = z.toJSONSchema(schema, { io, unrepresentable: 'any' }) as JsonSchema & { $defs?: Record<string, JsonSchema> };
  const { $schema: _ignored, $defs, ...rest } = out;
  const relink = (value: unknown): unknown => {
    if (Array.isArray(value)) return value.map(relink);
    if (value && typeof value === 'object') {
      return Object.fromEntries(
        Object.entries(value).map(([k, v]) => [k, k === '$ref' && typeof v === 'string' ? v.replace('#/$defs/', '#/components/schemas/') : relink(v)]),
      );
    }
    return value;
  };
  for (const [name, def] of Object.entries($defs ?? {})) components[io === 'input' ? `${name}Input` : name] ??= relink(def) as JsonSchema;
  return relink(rest) as JsonSchema;
}

const SECURITY: Record<Auth, Record<string, string[]>[]> = {
  none: [],
  user: [{ userJwt: [] }],
  service: [{ serviceToken: [] }],
  'user-or-service': [{ userJwt: [] }, { serviceToken: [] }],
  'stripe-signature': [{ stripeSignature: [] }],
};

const AUTH_PROBLEMS: Record<Auth, ProblemSlug[]> = {
  none: [],
  user: ['unauthorized', 'invalid-token', 'forbidden'],
  service: ['unauthorized', 'invalid-token', 'forbidden'],
  'user-or-service': ['unauthorized', 'invalid-token'],
  'stripe-signature': [],
};

export function openApiDocument(which: 'public' | 'admin', version = '0.1.0'): Record<string, unknown> {
  const routes = which === 'public' ? PUBLIC_ROUTES : ADMIN_ROUTES;
  const components: Record<string, JsonSchema> = {};
  const problemRef = () => schemaOf(PROBLEM, 'output', components);
  const paths: Record<string, Record<string, unknown>> = {};
  for (const r of routes) {
    const parameters: unknown[] = [];
    for (const [where, obj] of [['path', r.params], ['query', r.query]] as const) {
      if (!obj) continue;
      const js = schemaOf(obj, 'input', components) as { properties?: Record<string, JsonSchema>; required?: string[] };
      for (const [name, prop] of Object.entries(js.properties ?? {})) {
        parameters.push({ name, in: where, required: where === 'path' || (js.required ?? []).includes(name), schema: prop, ...(prop.description ? { description: prop.description } : {}) });
      }
    }
    if (r.idempotencyKey) {
      parameters.push({ name: 'Idempotency-Key', in: 'header', required: true, schema: { type: 'string', minLength: 1, maxLength: 255 }, description: 'The same key and body replay the first answer.' });
    }
    if (r.auth === 'stripe-signature') parameters.push({ name: 'Stripe-Signature', in: 'header', required: true, schema: { type: 'string' } });
    const responses: Record<string, unknown> = {};
    for (const [status, resp] of Object.entries(r.responses)) {
      responses[status] = { description: resp.description, ...(resp.schema ? { content: { [resp.contentType ?? 'application/json']: { schema: schemaOf(resp.schema, 'output', components) } } } : {}) };
    }
    const slugs = [...new Set([...AUTH_PROBLEMS[r.auth], ...(r.problems ?? []), ...(r.auth === 'none' ? [] : (['rate-limited', 'internal-error', 'dependency-unavailable'] as ProblemSlug[]))])];
    const byStatus = new Map<number, ProblemSlug[]>();
    for (const slug of slugs) byStatus.set(PROBLEMS[slug].status, [...(byStatus.get(PROBLEMS[slug].status) ?? []), slug]);
    for (const [status, list] of [...byStatus].sort((a, b) => a[0] - b[0])) {
      responses[String(status)] ??= {
        description: list.map((slug) => `\`${problemType(slug)}\`: ${PROBLEMS[slug].title}`).join('; '),
        content: { [PROBLEM_CONTENT_TYPE]: { schema: problemRef() } },
      };
    }
    const op: Record<string, unknown> = {
      operationId: r.operationId,
      summary: r.summary,
      tags: [r.tag],
      security: SECURITY[r.auth],
      ...(parameters.length ? { parameters } : {}),
      ...(r.body ? { requestBody: { required: !r.bodyOptional, content: { 'application/json': { schema: schemaOf(r.body, 'input', components) } } } } : {}),
      responses,
    };
    (paths[openApiPath(r.path)] ??= {})[r.method] = op;
  }
  return {
    openapi: '3.1.1',
    jsonSchemaDialect: 'https://json-schema.org/draft/2020-12/schema',
    info: {
      title: which === 'public' ? 'tenant-provisioner API' : 'tenant-provisioner admin API (internal port)',
      version,
      description:
        which === 'public'
          ? "Stripe webhooks and users' own tenants. Everything that takes the service token is on the internal admin port. Errors are RFC 9457 problem documents."
          : 'Tenant provisioning for the platform backend, Stripe events and their reprocessing, operator endpoints and Prometheus metrics, on the internal admin port only. Errors are RFC 9457 problem documents.',
    },
    paths,
    components: {
      schemas: components,
      securitySchemes: {
        userJwt: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT', description: 'HS256 user token; `sub` is the user id.' },
        serviceToken: { type: 'http', scheme: 'bearer', description: 'The SERVICE_TOKEN shared with the platform backend and operators.' },
        stripeSignature: { type: 'apiKey', in: 'header', name: 'Stripe-Signature', description: 'Stripe webhook signature over the raw body.' },
      },
    },
  };
}
