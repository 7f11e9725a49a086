/**
 * The OpenAPI description against the apps themselves: every route express registers is
 * described, every described route exists, path parameters match, and the schemas come out of the
 * zod schemas the handlers use (a field added to a request schema appears in the document).
 */
import type { Express } from 'express';
import { createAdminApp, createApp } from '../../src/api/app';
import { ADMIN_ROUTES, PUBLIC_ROUTES, openApiDocument, openApiPath } from '../../src/api/openapi';
import { offlineApiDeps } from './api-deps';

interface Layer {
  route?: { path: string; methods: Record<string, boolean> };
  name?: string;
  handle?: { stack?: Layer[] };
  matchers?: unknown[];
  path?: string;
}

/** `METHOD /path` of every route, including those of routers mounted without a path. */
export function registeredRoutes(app: Express): string[] {
  const out: string[] = [];
  const walk = (stack: Layer[]) => {
    for (const layer of stack) {
      if (layer.route) {
        for (const [method, on] of Object.entries(layer.route.methods)) if (on && method !== '_all') out.push(`${method.toUpperCase()} ${layer.route.path}`);
      } else if (layer.name === 'router' && layer.handle?.stack) {
        walk(layer.handle.stack);
      }
    }
  };
  walk((app as unknown as { router: { stack: Layer[] } }).router.stack);
  return out.sort();
}

const documented = (doc: Record<string, unknown>) =>
  Object.entries(doc.paths as Record<string, Record<string, unknown>>)
    .flatMap(([p, ops]) => Object.keys(ops).map((m) => `${m.toUpperCase()} ${p}`))
    .sort();

describe('OpenAPI description', () => {
  // Never connected: building the apps runs no query.
  const deps = offlineApiDeps();
  afterAll(() => deps.db.$disconnect());

  it.each([
    ['public', () => createApp(deps)],
    ['admin', () => createAdminApp(deps)],
  ] as const)('describes exactly the routes the %s app registers', (which, build) => {
    const doc = openApiDocument(which);
    const routes = registeredRoutes(build()).map((r) => openApiPath(r));
    expect(routes.length).toBeGreaterThan(3);
    expect(documented(doc)).toEqual([...new Set(routes)].sort());
  });

  it('keeps /metrics and the operator endpoints off the public port', () => {
    const publicRoutes = registeredRoutes(createApp(deps));
    expect(publicRoutes.filter((r) => /\/metrics|\/admin\//.test(r))).toEqual([]);
    expect(registeredRoutes(createAdminApp(deps))).toContain('GET /metrics');
  });

  it('serves and describes nothing that takes the service token on the public port', () => {
    expect(PUBLIC_ROUTES.filter((r) => r.auth === 'service' || r.auth === 'user-or-service').map((r) => r.path)).toEqual([]);
    expect(registeredRoutes(createApp(deps))).toEqual(['GET /api/tenants/:tenantId', 'GET /api/tenants/status', 'GET /healthz', 'GET /openapi.json', 'POST /webhooks/stripe']);
    expect(registeredRoutes(createAdminApp(deps))).toContain('GET /readyz');
    const admin = registeredRoutes(createAdminApp(deps));
    for (const route of ['GET /api/tenants', 'POST /api/tenants/provision', 'POST /api/tenants/deprovision', 'GET /api/events', 'GET /api/events/:eventId', 'POST /api/events/:eventId/reprocess']) {
      expect(admin).toContain(route);
    }
    expect(JSON.stringify(openApiDocument('public'))).not.toMatch(/serviceToken"?:\s*\[|\/api\/events|\/api\/tenants\/provision/);
  });

  it('declares every path parameter, and every operation has a unique id and a problem response', () => {
    const ids = new Set<string>();
    for (const spec of [...PUBLIC_ROUTES, ...ADMIN_ROUTES]) {
      const doc = openApiDocument(PUBLIC_ROUTES.includes(spec) ? 'public' : 'admin');
      const op = (doc.paths as Record<string, Record<string, { operationId: string; parameters?: { name: string; in: string }[]; responses: Record<string, unknown> }>>)[openApiPath(spec.path)]![spec.method]!;
      const inPath = [...spec.path.matchAll(/:([A-Za-z0-9_]+)/g)].map((m) => m[1]);
      expect((op.parameters ?? []).filter((p) => p.in === 'path').map((p) => p.name)).toEqual(inPath);
      expect(ids.has(op.operationId)).toBe(false);
      ids.add(op.operationId);
      if (spec.auth !== 'none') expect(Object.keys(op.responses).some((s) => Number(s) >= 400)).toBe(true);
    }
  });

  it('is generated from the zod schemas the handlers validate with', () => {
    const doc = openApiDocument('admin');
    /** Walks a JSON document by keys (the document is untyped JSON on purpose: it is what clients read). */
    const at = (...keys: string[]): unknown => keys.reduce<unknown>((v, k) => (v as Record<string, unknown> | undefined)?.[k], doc);
    expect(doc.openapi).toMatch(/^3\.1\./);
    expect(at('paths', '/api/tenants/provision', 'post', 'requestBody', 'content', 'application/json', 'schema')).toMatchObject({
      type: 'object',
      required: ['userId', 'plan'],
      additionalProperties: false,
      properties: { userId: { type: 'string', format: 'uuid' }, plan: { type: 'string', maxLength: 50 } },
    });
    expect(at('paths', '/api/tenants/provision', 'post', 'parameters')).toEqual(expect.arrayContaining([expect.objectContaining({ name: 'Idempotency-Key', in: 'header', required: true })]));
    expect((at('paths', '/api/tenants', 'get', 'parameters') as { name: string }[]).map((p) => p.name)).toEqual(['customerId', 'userId', 'status', 'plan', 'limit', 'cursor']);
    expect(at('paths', '/api/tenants', 'get', 'responses', '200', 'content', 'application/json', 'schema')).toEqual({ $ref: '#/components/schemas/TenantList' });
    expect(at('components', 'schemas', 'Tenant', 'required')).toEqual(expect.arrayContaining(['tenantId', 'status', 'progress']));
    expect(at('paths', '/api/tenants', 'get', 'responses', '401', 'content', 'application/problem+json', 'schema')).toEqual({ $ref: '#/components/schemas/Problem' });
    // Every $ref points at a component that exists.
    const refs = JSON.stringify(doc).match(/"\$ref":"#\/components\/schemas\/[^"]+"/g) ?? [];
    expect(refs.length).toBeGreaterThan(3);
    for (const ref of refs) expect(at('components', 'schemas', ref.split('/').pop()!.replace('"', ''))).toBeDefined();
  });
});
