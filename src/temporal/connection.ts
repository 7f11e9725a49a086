/**
 * The one factory of connections to Temporal: the worker's NativeConnection (src/temporal/native.ts),
 * the API's, tenantctl's (through the API), the bench's and the tests' clients all take their
 * options from `temporalConnectionOptions`, so TLS, mTLS and the API key cannot be configured for
 * one of them and forgotten for another.
 *
 * Files are read and checked here, once, at start-up: a missing file, one that is not PEM, or a key
 * that does not belong to its certificate stops the process with the setting's name and the path,
 * instead of surfacing later as a TLS handshake failure that names neither.
 */
import { X509Certificate, createPrivateKey } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { Client, Connection } from '@temporalio/client';
import type { TLSConfig } from '@temporalio/common/lib/internal-non-workflow';
import { ConfigError, parseEnv } from '../config';
import { temporalDataConverter } from './codec';
import { temporalSchema, type TemporalSettings } from './settings';

export type { TemporalSettings } from './settings';

/** What both SDK connection kinds take: the client's Connection and the worker's NativeConnection. */
export interface TemporalConnectionOptions {
  address: string;
  /** `false`: plaintext, said explicitly (the SDK turns TLS on by itself when an API key is set). */
  tls: TLSConfig | false;
  apiKey?: string;
}

/** The Temporal settings alone, from an environment (tests, tools that read no other setting). */
export function temporalSettingsFromEnv(env: NodeJS.ProcessEnv = process.env): TemporalSettings {
  return parseEnv(temporalSchema, env, 'Temporal configuration');
}

function readSetting(setting: string, file: string): Buffer {
  try {
    return readFileSync(file);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT' ? 'no such file' : code === 'EACCES' ? 'permission denied' : code === 'EISDIR' ? 'is a directory' : (err as Error).message;
    throw new ConfigError(`invalid Temporal configuration:\n  ${setting}: cannot read ${file} (${why})`);
  }
}

function certificate(setting: string, file: string): { pem: Buffer; cert: X509Certificate } {
  const pem = readSetting(setting, file);
  try {
    return { pem, cert: new X509Certificate(pem) };
  } catch {
    throw new ConfigError(`invalid Temporal configuration:\n  ${setting}: ${file} is not a PEM certificate (expected "-----BEGIN CERTIFICATE-----")`);
  }
}

/** Reads and checks the TLS files and builds the connection options, or throws a ConfigError naming the setting. */
export function temporalConnectionOptions(settings: TemporalSettings): TemporalConnectionOptions {
  const s = settings;
  const problems: string[] = [];
  if (!!s.TEMPORAL_TLS_CLIENT_CERT_PATH !== !!s.TEMPORAL_TLS_CLIENT_KEY_PATH) {
    problems.push('  TEMPORAL_TLS_CLIENT_CERT_PATH and TEMPORAL_TLS_CLIENT_KEY_PATH: set both (mTLS) or neither');
  }
  const tlsFiles = s.TEMPORAL_TLS_SERVER_CA_CERT_PATH ?? s.TEMPORAL_TLS_CLIENT_CERT_PATH ?? s.TEMPORAL_TLS_CLIENT_KEY_PATH ?? s.TEMPORAL_TLS_SERVER_NAME;
  if (s.TEMPORAL_TLS === 'off' && tlsFiles) problems.push('  TEMPORAL_TLS: is off, but TEMPORAL_TLS_* settings are set (remove them, or turn TLS on)');
  if (problems.length) throw new ConfigError(`invalid Temporal configuration:\n${problems.join('\n')}`);

  const on = s.TEMPORAL_TLS === 'on' || (s.TEMPORAL_TLS === undefined && (!!tlsFiles || !!s.TEMPORAL_API_KEY));
  const apiKey = s.TEMPORAL_API_KEY ? { apiKey: s.TEMPORAL_API_KEY } : {};
  if (!on) return { address: s.TEMPORAL_ADDRESS, tls: false, ...apiKey };

  const tls: TLSConfig = {};
  if (s.TEMPORAL_TLS_SERVER_NAME) tls.serverNameOverride = s.TEMPORAL_TLS_SERVER_NAME;
  if (s.TEMPORAL_TLS_SERVER_CA_CERT_PATH) tls.serverRootCACertificate = certificate('TEMPORAL_TLS_SERVER_CA_CERT_PATH', s.TEMPORAL_TLS_SERVER_CA_CERT_PATH).pem;
  if (s.TEMPORAL_TLS_CLIENT_CERT_PATH && s.TEMPORAL_TLS_CLIENT_KEY_PATH) {
    const { pem: crt, cert } = certificate('TEMPORAL_TLS_CLIENT_CERT_PATH', s.TEMPORAL_TLS_CLIENT_CERT_PATH);
    const key = readSetting('TEMPORAL_TLS_CLIENT_KEY_PATH', s.TEMPORAL_TLS_CLIENT_KEY_PATH);
    let privateKey;
    try {
      privateKey = createPrivateKey(key);
    } catch {
      throw new ConfigError(`invalid Temporal configuration:\n  TEMPORAL_TLS_CLIENT_KEY_PATH: ${s.TEMPORAL_TLS_CLIENT_KEY_PATH} is not a PEM private key`);
    }
    if (!cert.checkPrivateKey(privateKey)) {
      throw new ConfigError(
        `invalid Temporal configuration:\n  TEMPORAL_TLS_CLIENT_KEY_PATH: ${s.TEMPORAL_TLS_CLIENT_KEY_PATH} is not the key of the certificate in TEMPORAL_TLS_CLIENT_CERT_PATH (${s.TEMPORAL_TLS_CLIENT_CERT_PATH})`,
      );
    }
    tls.clientCertPair = { crt, key };
  }
  return { address: s.TEMPORAL_ADDRESS, tls, ...apiKey };
}

/** What the logs may say about the connection: never a key, never file contents. */
export function describeTemporalConnection(settings: TemporalSettings): Record<string, unknown> {
  const options = temporalConnectionOptions(settings);
  return {
    address: options.address,
    tls: options.tls === false ? 'off' : options.tls.clientCertPair ? 'mtls' : 'on',
    apiKey: options.apiKey ? 'set' : 'unset',
    payloads: settings.TEMPORAL_PAYLOAD_KEYS ? `encrypted (${settings.TEMPORAL_PAYLOAD_ENCRYPTION})` : 'plain',
  };
}

/** A client and its connection, connected (or failed) within `connectTimeoutMs`. */
export async function connectTemporalClient(settings: TemporalSettings, connectTimeoutMs: number): Promise<{ client: Client; connection: Connection }> {
  const connection = await Connection.connect({ ...temporalConnectionOptions(settings), connectTimeout: `${connectTimeoutMs}ms` });
  return { client: new Client({ connection, namespace: settings.TEMPORAL_NAMESPACE, dataConverter: temporalDataConverter(settings) }), connection };
}

/**
 * A client whose connection is made on its first call, so that a process starts (and reports not
 * ready) while Temporal is unreachable; gRPC reconnects by itself.
 */
export function lazyTemporalClient(settings: TemporalSettings, connectTimeoutMs: number): { client: Client; connection: Connection } {
  const connection = Connection.lazy({ ...temporalConnectionOptions(settings), connectTimeout: `${connectTimeoutMs}ms` });
  return { client: new Client({ connection, namespace: settings.TEMPORAL_NAMESPACE, dataConverter: temporalDataConverter(settings) }), connection };
}
