/**
 * A small client for toxiproxy-server (the stack's TOXIPROXY_URL): a proxy per test in front of
 * PostgreSQL or the kube-apiserver, toxics that reset or stall connections, and an off switch
 * that cuts every connection and refuses new ones (a server that is down).
 */
import { randomUUID } from 'node:crypto';
import { env } from './helpers';

export interface Toxic {
  type: 'reset_peer' | 'timeout' | 'latency' | 'bandwidth' | 'slow_close' | 'limit_data';
  stream?: 'upstream' | 'downstream';
  /** Fraction of connections the toxic applies to (0–1). */
  toxicity?: number;
  attributes?: Record<string, number>;
}

export class ToxiProxy {
  private constructor(
    readonly name: string,
    /** host:port clients connect to. */
    readonly listen: string,
  ) {}

  private static async api<T>(method: string, path: string, body?: unknown): Promise<T> {
    const res = await fetch(`${env('TOXIPROXY_URL')}${path}`, {
      method,
      headers: body === undefined ? {} : { 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(10_000),
    });
    const text = await res.text();
    if (!res.ok) throw new Error(`toxiproxy ${method} ${path}: HTTP ${res.status} ${text}`);
    return (text ? JSON.parse(text) : undefined) as T;
  }

  /** A proxy on a free loopback port in front of `upstream` (host:port). */
  static async create(prefix: string, upstream: string): Promise<ToxiProxy> {
    const name = `${prefix}-${randomUUID().slice(0, 8)}`;
    const created = await ToxiProxy.api<{ listen: string }>('POST', '/proxies', { name, listen: '127.0.0.1:0', upstream, enabled: true });
    return new ToxiProxy(name, created.listen);
  }

  get port(): number {
    return Number(this.listen.slice(this.listen.lastIndexOf(':') + 1));
  }

  async addToxic(name: string, toxic: Toxic): Promise<void> {
    await ToxiProxy.api('POST', `/proxies/${this.name}/toxics`, { name, stream: 'downstream', toxicity: 1, attributes: {}, ...toxic });
  }

  async removeToxic(name: string): Promise<void> {
    await ToxiProxy.api('DELETE', `/proxies/${this.name}/toxics/${name}`);
  }

  /** Disabled: every open connection is cut and new ones are refused, as if the server were down. */
  async setEnabled(enabled: boolean): Promise<void> {
    await ToxiProxy.api('POST', `/proxies/${this.name}`, { enabled });
  }

  async delete(): Promise<void> {
    await ToxiProxy.api('DELETE', `/proxies/${this.name}`).catch(() => undefined);
  }
}
