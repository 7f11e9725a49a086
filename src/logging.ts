/**
 * One structured (JSON) logger for the API, the worker and the activities, through pino.
 *
 * Secrets never reach a log line, by two independent means:
 * - fields that carry credentials (authorization headers, tokens, passwords, connection strings,
 *   Secret data) are masked by path, wherever they appear in the first two levels of an object;
 * - strings (messages and error texts, which may quote a connection URL or a header) are scrubbed
 *   of URL credentials, bearer tokens and Stripe keys.
 * test/unit/logging.test.ts proves both.
 */
import { format } from 'node:util';
import pino, { type DestinationStream, type Logger } from 'pino';
import type { LogLevel as TemporalLogLevel, LogMetadata, Logger as TemporalLogger } from '@temporalio/common';
import { tenantIdOfWorkflowId } from './naming';

export type LogLevel = 'trace' | 'debug' | 'info' | 'warn' | 'error' | 'fatal' | 'silent';

export const REDACTED = '[redacted]';

const SECRET_KEYS = [
  'authorization',
  'cookie',
  'password',
  'passwd',
  'secret',
  'token',
  'accessToken',
  'apiKey',
  'serviceToken',
  'databaseUrl',
  'connectionString',
  'DATABASE_URL',
  'SERVICE_TOKEN',
  'JWT_SECRET',
  'STRIPE_WEBHOOK_SECRET',
  'STRIPE_API_KEY',
  'stringData',
  'data',
  '"stripe-signature"',
];

/** Each key at the top level and one level down (`*.key`), and under `headers`. */
export const REDACT_PATHS = [
  ...SECRET_KEYS.flatMap((k) => (k.startsWith('"') ? [`[${k}]`, `*[${k}]`] : [k, `*.${k}`])),
  'headers.authorization',
  '*.headers.authorization',
  'headers["stripe-signature"]',
  '*.headers["stripe-signature"]',
];

const SCRUBBERS: [RegExp, string][] = [
  // scheme://user:password@host → scheme://user:[redacted]@host
  [/\b([a-z][a-z0-9+.-]*:\/\/[^\s:/@]*):[^\s@/]+@/gi, `$1:${REDACTED}@`],
  [/\b(Bearer)\s+[A-Za-z0-9\-._~+/]+=*/g, `$1 ${REDACTED}`],
  [/\b(whsec|sk_live|sk_test|rk_live|rk_test)_[A-Za-z0-9]+/g, `$1_${REDACTED}`],
  [/\b(password|passwd|secret|token)=([^\s&;,]+)/gi, `$1=${REDACTED}`],
];

/** Masks credentials inside free text (messages, error messages and stacks). */
export function scrub(text: string): string {
  let out = text;
  for (const [pattern, replacement] of SCRUBBERS) out = out.replace(pattern, replacement);
  return out;
}

function scrubError(err: unknown): unknown {
  const s = pino.stdSerializers.err(err as Error) as unknown as Record<string, unknown>;
  if (!s || typeof s !== 'object') return s;
  for (const key of ['message', 'stack']) if (typeof s[key] === 'string') s[key] = scrub(s[key]);
  return s;
}

export interface LoggerOptions {
  service: string;
  level: LogLevel;
  /** Where lines go (default stdout); tests pass a stream to read them back. */
  destination?: DestinationStream;
}

export function createLogger(options: LoggerOptions): Logger {
  return pino(
    {
      level: options.level,
      base: { service: options.service },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
      redact: { paths: REDACT_PATHS, censor: REDACTED },
      serializers: { err: scrubError, error: scrubError },
      hooks: {
        // Messages and string arguments are scrubbed too: an error text may quote a URL.
        // A format string is filled in first, so a secret split across it and its arguments
        // ("Bearer %s", token) is still recognised.
        logMethod(args, method) {
          const at = args.findIndex((a) => typeof a === 'string');
          if (at < 0) return method.apply(this, args);
          const message = scrub(format(...(args.slice(at) as [string, ...unknown[]])));
          method.apply(this, [...args.slice(0, at), message] as unknown as Parameters<typeof method>);
        },
      },
    },
    options.destination,
  );
}


const LEVELS: Record<TemporalLogLevel, 'trace' | 'debug' | 'info' | 'warn' | 'error'> = { TRACE: 'trace', DEBUG: 'debug', INFO: 'info', WARN: 'warn', ERROR: 'error' };

/**
 * Temporal's Runtime logger, bridged to pino: the SDK's own lines (core, worker), workflow
 * `log` lines and activity `log` lines all come out as JSON with workflow, run and tenant ids.
 */
export function temporalLogger(logger: Logger): TemporalLogger {
  const log = (level: TemporalLogLevel, message: string, meta?: LogMetadata) => {
    // The SDK adds symbol-keyed fields (its own timestamp); JSON has no place for them.
    const fields: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(meta ?? {})) fields[k] = typeof v === 'bigint' ? v.toString() : v;
    const tenantId = (fields.tenantId as string | undefined) ?? tenantIdOfWorkflowId(fields.workflowId);
    if (tenantId) fields.tenantId = tenantId;
    // Activity lines name the run `workflowRunId`, workflow lines `runId`: one name to search by.
    if (fields.runId === undefined && fields.workflowRunId !== undefined) fields.runId = fields.workflowRunId;
    if (fields.error instanceof Error) {
      fields.err = fields.error;
      delete fields.error;
    }
    logger[LEVELS[level]](fields, message);
  };
  return {
    log,
    trace: (m, meta) => log('TRACE', m, meta),
    debug: (m, meta) => log('DEBUG', m, meta),
    info: (m, meta) => log('INFO', m, meta),
    warn: (m, meta) => log('WARN', m, meta),
    error: (m, meta) => log('ERROR', m, meta),
  };
}
