/**
 * The API's only door to the Stripe API: read a subscription (with its prices and products), find
 * the subscription a PaymentIntent paid for, and fetch an event again for reprocessing.
 *
 * Webhook events often lack what a decision needs (an `invoice.paid` names only its subscription),
 * so the webhook reads the subscription here, before its transaction: no lock or transaction is ever
 * held across this network call. Every call has a deadline and a bounded number of retries (the
 * stripe library's own, with idempotent GETs only). Failures are split the way the webhook answers:
 * - Stripe unreachable, slow, 429 or 5xx → DependencyError('stripe'): 503, Stripe redelivers;
 * - anything else (no such object, a bad key, no permission) → StripeLookupError: it will not fix
 *   itself on redelivery; the webhook answers 500 and keeps the event for reprocessing.
 */
import Stripe from 'stripe';
import { DependencyError } from './problem';

export interface StripeApiOptions {
  apiKey: string;
  /** Base URL of the Stripe API; stripe-mock's in the local stack and in tests. */
  apiBase?: string;
  timeoutMs: number;
  maxNetworkRetries: number;
}

/** The subscription fields decisions use; the full object is what Stripe returns. */
export type StripeSubscription = Stripe.Subscription;

export interface StripeReader {
  /**
   * The subscription with `items.data.price.product` expanded (so product metadata can name the
   * plan); `account`: read as that Stripe Connect account.
   */
  subscription(id: string, account?: string): Promise<StripeSubscription>;
  /**
   * The subscription a PaymentIntent paid an invoice of (API 2025-03-31 and later: through the
   * invoice's payments), or undefined when the payment belongs to no subscription invoice.
   */
  subscriptionOfPaymentIntent(paymentIntentId: string, account?: string): Promise<string | undefined>;
  /** The event as Stripe has it now (for reprocessing); null when Stripe has no such event. */
  event(id: string): Promise<unknown>;
}

/** A Stripe answer that a retry will not change: the webhook answers 500 and keeps the event. */
export class StripeLookupError extends Error {
  override readonly name = 'StripeLookupError';

  constructor(
    message: string,
    readonly notFound: boolean,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** Used when no STRIPE_API_KEY is configured: every lookup explains what to set. */
export const unconfiguredStripe: StripeReader = {
  subscription: (id) => Promise.reject(new StripeLookupError(`reading subscription ${id} needs the Stripe API: set STRIPE_API_KEY`, false)),
  subscriptionOfPaymentIntent: (id) => Promise.reject(new StripeLookupError(`resolving payment ${id} needs the Stripe API: set STRIPE_API_KEY`, false)),
  event: (id) => Promise.reject(new StripeLookupError(`fetching event ${id} needs the Stripe API: set STRIPE_API_KEY`, false)),
};

export function createStripeReader(options: StripeApiOptions): StripeReader {
  const base = options.apiBase ? new URL(options.apiBase) : undefined;
  const stripe = new Stripe(options.apiKey, {
    timeout: options.timeoutMs,
    maxNetworkRetries: options.maxNetworkRetries,
    telemetry: false,
    ...(base
      ? {
          host: base.hostname,
          port: base.port ? Number(base.port) : base.protocol === 'http:' ? 80 : 443,
          protocol: base.protocol === 'http:' ? ('http' as const) : ('https' as const),
        }
      : {}),
  });

  async function call<T>(what: string, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      throw mapStripeError(what, err);
    }
  }

  return {
    subscription: (id, account) =>
      call(`reading subscription ${id}`, () => stripe.subscriptions.retrieve(id, { expand: ['items.data.price.product'] }, account ? { stripeAccount: account } : {})),

    async subscriptionOfPaymentIntent(paymentIntentId, account) {
      const payments = await call(`finding the invoice paid by ${paymentIntentId}`, () =>
        stripe.invoicePayments.list({ payment: { type: 'payment_intent', payment_intent: paymentIntentId }, limit: 1, expand: ['data.invoice'] }, account ? { stripeAccount: account } : {}),
      );
      for (const payment of payments.data) {
        const invoice = payment.invoice;
        if (!invoice || typeof invoice === 'string' || 'deleted' in invoice) continue;
        const sub = invoice.parent?.subscription_details?.subscription;
        const id = typeof sub === 'string' ? sub : sub?.id;
        if (id && /^sub_[A-Za-z0-9_]{1,200}$/.test(id)) return id;
      }
      return undefined;
    },

    async event(id) {
      try {
        return await call(`fetching event ${id}`, () => stripe.events.retrieve(id));
      } catch (err) {
        if (err instanceof StripeLookupError && err.notFound) return null;
        throw err;
      }
    },
  };
}

/** Unavailability (retry later) vs. an answer that stays the same (see the module comment). */
export function mapStripeError(what: string, err: unknown): Error {
  if (err instanceof Stripe.errors.StripeError) {
    const status = err.statusCode;
    const transient =
      err instanceof Stripe.errors.StripeConnectionError ||
      err instanceof Stripe.errors.StripeRateLimitError ||
      err instanceof Stripe.errors.StripeAPIError ||
      status === undefined ||
      status === 409 ||
      status === 429 ||
      status >= 500;
    if (transient) return new DependencyError('stripe', `Stripe API unavailable while ${what}: ${err.message}`, { cause: err });
    if (err instanceof Stripe.errors.StripeAuthenticationError) {
      return new StripeLookupError(`Stripe refused the API key while ${what}: check STRIPE_API_KEY`, false, { cause: err });
    }
    if (err instanceof Stripe.errors.StripePermissionError) {
      return new StripeLookupError(`the Stripe API key may not read this while ${what}: grant it read access to subscriptions, invoices and events`, false, { cause: err });
    }
    return new StripeLookupError(`Stripe answered ${status ?? '?'} while ${what}: ${err.message}`, status === 404, { cause: err });
  }
  if (err instanceof Error && /timeout|ECONN|ENOTFOUND|EAI_AGAIN|socket/i.test(`${err.name} ${err.message}`)) {
    return new DependencyError('stripe', `Stripe API unavailable while ${what}: ${err.message}`, { cause: err });
  }
  return err instanceof Error ? err : new Error(String(err));
}
