import { chmodSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { ConfigError } from '../../src/config';
import { describeTemporalConnection, temporalConnectionOptions, temporalSettingsFromEnv } from '../../src/temporal/connection';
import { makeTestPki, type TestPki } from '../support/certs';

describe('temporalConnectionOptions', () => {
  let pki: TestPki;
  beforeAll(() => {
    pki = makeTestPki();
  });
  afterAll(() => pki.remove());

  const options = (env: Record<string, string>) => temporalConnectionOptions(temporalSettingsFromEnv(env));
  const failure = (env: Record<string, string>): string => {
    try {
      options(env);
    } catch (err) {
      expect(err).toBeInstanceOf(ConfigError);
      return (err as Error).message;
    }
    throw new Error('expected a ConfigError');
  };

  it('is plaintext to 127.0.0.1:7233 with nothing set, said explicitly', () => {
    expect(options({})).toEqual({ address: '127.0.0.1:7233', tls: false });
  });

  it('turns TLS on with the system roots when only TEMPORAL_TLS=on, and for an API key (as the SDK does)', () => {
    expect(options({ TEMPORAL_TLS: 'on' }).tls).toEqual({});
    expect(options({ TEMPORAL_API_KEY: 'key-0123456789' })).toEqual({ address: '127.0.0.1:7233', tls: {}, apiKey: 'key-0123456789' });
    // An API key over plaintext, e.g. to a sidecar that adds TLS, when asked for.
    expect(options({ TEMPORAL_API_KEY: 'key-0123456789', TEMPORAL_TLS: 'off' }).tls).toBe(false);
  });

  it('reads the CA, the client pair and the server name for mTLS', () => {
    const o = options({
      TEMPORAL_ADDRESS: 'temporal.example:7233',
      TEMPORAL_TLS_SERVER_CA_CERT_PATH: pki.ca,
      TEMPORAL_TLS_CLIENT_CERT_PATH: pki.clientCert,
      TEMPORAL_TLS_CLIENT_KEY_PATH: pki.clientKey,
      TEMPORAL_TLS_SERVER_NAME: 'temporal.test',
    });
    expect(o.tls).toMatchObject({ serverNameOverride: 'temporal.test' });
    expect(o.tls && Buffer.from(o.tls.serverRootCACertificate!).toString()).toContain('BEGIN CERTIFICATE');
    expect(o.tls && Buffer.from(o.tls.clientCertPair!.key).toString()).toContain('PRIVATE KEY');
    expect(
      describeTemporalConnection(
        temporalSettingsFromEnv({
          TEMPORAL_ADDRESS: 'temporal.example:7233',
          TEMPORAL_TLS_SERVER_CA_CERT_PATH: pki.ca,
          TEMPORAL_TLS_CLIENT_CERT_PATH: pki.clientCert,
          TEMPORAL_TLS_CLIENT_KEY_PATH: pki.clientKey,
        }),
      ),
    ).toEqual({ address: 'temporal.example:7233', tls: 'mtls', apiKey: 'unset', payloads: 'plain' });
  });

  it('names the setting and the path of a file it cannot read', () => {
    const missing = path.join(pki.dir, 'nope.crt');
    expect(failure({ TEMPORAL_TLS_SERVER_CA_CERT_PATH: missing })).toContain(`TEMPORAL_TLS_SERVER_CA_CERT_PATH: cannot read ${missing} (no such file)`);
    expect(failure({ TEMPORAL_TLS_SERVER_CA_CERT_PATH: pki.dir })).toContain(`cannot read ${pki.dir} (is a directory)`);
    if (process.getuid?.() !== 0) {
      const locked = path.join(pki.dir, 'locked.key');
      writeFileSync(locked, 'x');
      chmodSync(locked, 0);
      expect(failure({ TEMPORAL_TLS_CLIENT_CERT_PATH: pki.clientCert, TEMPORAL_TLS_CLIENT_KEY_PATH: locked })).toContain('permission denied');
    }
  });

  it('refuses a file that is not what the setting says, naming both', () => {
    expect(failure({ TEMPORAL_TLS_SERVER_CA_CERT_PATH: pki.clientKey })).toContain(`TEMPORAL_TLS_SERVER_CA_CERT_PATH: ${pki.clientKey} is not a PEM certificate`);
    expect(failure({ TEMPORAL_TLS_CLIENT_CERT_PATH: pki.clientCert, TEMPORAL_TLS_CLIENT_KEY_PATH: pki.clientCert })).toContain(
      `TEMPORAL_TLS_CLIENT_KEY_PATH: ${pki.clientCert} is not a PEM private key`,
    );
  });

  it('refuses a key that is not the certificate’s, without printing either', () => {
    const message = failure({ TEMPORAL_TLS_CLIENT_CERT_PATH: pki.clientCert, TEMPORAL_TLS_CLIENT_KEY_PATH: pki.strangerKey });
    expect(message).toContain(`TEMPORAL_TLS_CLIENT_KEY_PATH: ${pki.strangerKey} is not the key of the certificate in TEMPORAL_TLS_CLIENT_CERT_PATH`);
    expect(message).not.toContain('BEGIN');
  });

  it('refuses half a client pair, and TLS files with TLS off', () => {
    expect(failure({ TEMPORAL_TLS_CLIENT_CERT_PATH: pki.clientCert })).toContain('set both (mTLS) or neither');
    expect(failure({ TEMPORAL_TLS: 'off', TEMPORAL_TLS_SERVER_CA_CERT_PATH: pki.ca })).toContain('TEMPORAL_TLS: is off, but TEMPORAL_TLS_* settings are set');
  });

  it('never puts the API key in what it logs or in a config error', () => {
    expect(JSON.stringify(describeTemporalConnection(temporalSettingsFromEnv({ TEMPORAL_API_KEY: 'very-secret-key' })))).not.toContain('very-secret-key');
    expect(() => temporalSettingsFromEnv({ TEMPORAL_API_KEY: 'short', TEMPORAL_TLS: 'maybe' })).toThrow(/TEMPORAL_TLS: must be on or off[\s\S]*TEMPORAL_API_KEY: must be at least 8/);
  });
});
