/**
 * Stripe events as the service recorded them, and reprocessing (service token only):
 *
 *   GET  /api/events?outcome=&type=&tenantId=&limit=&cursor=  → 200 { events: EventView[], nextCursor }
 *   GET  /api/events/:eventId                                 → 200 EventView with its outbox rows
 *   POST /api/events/:eventId/reprocess                       → 200 the webhook's answer for it
 *
 * Reprocessing fetches the event again from the Stripe API (`events.retrieve`, the event as Stripe
 * sent it) and runs it through the same code as a webhook delivery, deciding again even when it
 * already has a final outcome. Decisions are idempotent and newest-wins, so reprocessing an event
 * that was applied changes nothing, and one that met an outage (answered 503 or 500 until Stripe
 * gave up, about three days) is applied now. Stripe keeps events for 30 days.
 */
import express, { type Router } from 'express';
import type { z } from 'zod';
import type { Db } from '../db/client';
import type { StripeEvent } from '../generated/prisma/client';
import type { createAuth } from './auth';
import { HttpProblem, validationProblem } from './problem';
import { eventListQuery, type eventView as eventViewSchema, type outboxView as outboxViewSchema } from './schemas';
import type { StripeReader } from './stripe-api';
import { stripeEventEnvelope } from './stripe-events';
import { processAndCount, type WebhookDeps } from './webhook';

export interface EventsDeps {
  db: Db;
  auth: ReturnType<typeof createAuth>;
  stripe: StripeReader;
  webhook: WebhookDeps;
}

export type EventView = z.infer<typeof eventViewSchema>;
export type OutboxView = z.infer<typeof outboxViewSchema>;

const EVENT_ID = /^evt_[A-Za-z0-9_]{1,250}$/;

/** Newest first; the cursor is the last row's (received_at, id), opaque to callers. */
function encodeCursor(receivedAt: Date, id: string): string {
  return Buffer.from(JSON.stringify([receivedAt.toISOString(), id])).toString('base64url');
}

function decodeCursor(cursor: string): { receivedAt: Date; id: string } {
  try {
    const [at, id] = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8')) as [unknown, unknown];
    const receivedAt = new Date(String(at));
    if (typeof id !== 'string' || Number.isNaN(receivedAt.getTime())) throw new Error('bad cursor');
    return { receivedAt, id };
  } catch {
    throw new HttpProblem('invalid-request', 'cursor is not one this API returned; start again without it');
  }
}

function eventView(e: StripeEvent): EventView {
  return {
    id: e.id,
    type: e.type,
    // The column holds only these outcomes (the webhook writes them).
    outcome: e.outcome as EventView['outcome'],
    tenantId: e.tenantId,
    detail: e.detail,
    attempts: e.attempts,
    stripeCreatedAt: e.stripeCreatedAt.toISOString(),
    receivedAt: e.receivedAt.toISOString(),
    processedAt: e.processedAt?.toISOString() ?? null,
  };
}

export function eventsRouter(deps: EventsDeps): Router {
  const { db, auth } = deps;
  const router = express.Router();

  router.get('/api/events', auth.requireService, async (req, res) => {
    const parsed = eventListQuery.safeParse(req.query);
    if (!parsed.success) throw validationProblem(parsed.error, 'the query');
    const q = parsed.data;
    const after = q.cursor ? decodeCursor(q.cursor) : undefined;
    const rows = await db.stripeEvent.findMany({
      where: {
        ...(q.outcome ? { outcome: q.outcome } : {}),
        ...(q.type ? { type: q.type } : {}),
        ...(q.tenantId ? { tenantId: q.tenantId.toLowerCase() } : {}),
        ...(after ? { OR: [{ receivedAt: { lt: after.receivedAt } }, { receivedAt: after.receivedAt, id: { gt: after.id } }] } : {}),
      },
      orderBy: [{ receivedAt: 'desc' }, { id: 'asc' }],
      take: q.limit + 1,
    });
    const page = rows.slice(0, q.limit);
    const last = page[page.length - 1];
    res.json({ events: page.map(eventView), nextCursor: rows.length > q.limit && last ? encodeCursor(last.receivedAt, last.id) : null });
  });

  router.get('/api/events/:eventId', auth.requireService, async (req, res) => {
    const id = String(req.params.eventId);
    if (!EVENT_ID.test(id)) throw new HttpProblem('invalid-request', 'the event id must be a Stripe event id (evt_...)');
    const row = await db.stripeEvent.findUnique({ where: { id } });
    if (!row) throw new HttpProblem('event-not-found', `no event ${id} was recorded; POST /api/events/${id}/reprocess fetches it from Stripe`);
    const outbox = await db.outboxMessage.findMany({ where: { sourceId: id }, orderBy: { id: 'asc' } });
    res.json({
      ...eventView(row),
      outbox: outbox.map(
        (o): OutboxView => ({
          id: String(o.id),
          payload: o.payload as OutboxView['payload'],
          attempts: o.attempts,
          createdAt: o.createdAt.toISOString(),
          deliveredAt: o.deliveredAt?.toISOString() ?? null,
          failedAt: o.failedAt?.toISOString() ?? null,
          result: o.result,
          lastError: o.lastError,
        }),
      ),
    });
  });

  router.post('/api/events/:eventId/reprocess', auth.requireService, async (req, res) => {
    const id = String(req.params.eventId);
    if (!EVENT_ID.test(id)) throw new HttpProblem('invalid-request', 'the event id must be a Stripe event id (evt_...)');
    const fetched = await deps.stripe.event(id);
    if (fetched === null) throw new HttpProblem('event-not-found', `Stripe has no event ${id} (Stripe keeps events for 30 days)`);
    const envelope = stripeEventEnvelope.safeParse(fetched);
    if (!envelope.success) throw validationProblem(envelope.error, `the event Stripe returned for ${id}`);
    if (envelope.data.id !== id) throw new HttpProblem('invalid-request', `Stripe returned event ${envelope.data.id} for ${id}`);
    const result = await processAndCount(deps.webhook, envelope.data, res.locals.requestId as string | undefined, { force: true });
    res.json({ ...result, reprocessed: true });
  });

  return router;
}
