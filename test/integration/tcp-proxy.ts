/**
 * A tiny TCP proxy that tests stop and start to make PostgreSQL or Temporal "go away" for the API
 * only: the shared servers keep running. Stopping closes the listener and cuts every open
 * connection; starting listens again on the same port.
 */
import net from 'node:net';

/**
 * Joins a client's socket to its upstream both ways, tracked in `sockets` until closed (so a
 * proxy's stop can cut them), and an error on either side closes both.
 */
export function splice(client: net.Socket, upstream: net.Socket, sockets: Set<net.Socket>): void {
  for (const s of [client, upstream]) {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    s.on('error', () => {
      client.destroy();
      upstream.destroy();
    });
  }
  client.pipe(upstream);
  upstream.pipe(client);
}

export class TcpProxy {
  private server: net.Server | undefined;
  private readonly sockets = new Set<net.Socket>();
  private listenPort = 0;

  constructor(
    private readonly targetHost: string,
    private readonly targetPort: number,
  ) {}

  /** "host:port", e.g. from TEMPORAL_ADDRESS. */
  static forAddress(address: string): TcpProxy {
    const i = address.lastIndexOf(':');
    return new TcpProxy(address.slice(0, i), Number(address.slice(i + 1)));
  }

  get port(): number {
    return this.listenPort;
  }

  get address(): string {
    return `127.0.0.1:${this.listenPort}`;
  }

  async start(): Promise<void> {
    if (this.server) return;
    const server = net.createServer((client) => {
      splice(client, net.connect(this.targetPort, this.targetHost), this.sockets);
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.listenPort, '127.0.0.1', () => {
        server.off('error', reject);
        resolve();
      });
    });
    this.listenPort = (server.address() as net.AddressInfo).port;
    this.server = server;
  }

  async stop(): Promise<void> {
    const server = this.server;
    if (!server) return;
    this.server = undefined;
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    for (const s of this.sockets) s.destroy();
    this.sockets.clear();
    await closed;
  }
}
