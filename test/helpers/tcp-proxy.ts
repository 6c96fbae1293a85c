// A TCP proxy in front of a real server (Redis, RabbitMQ) that a test can break in the ways a
// network and a server break, without touching the shared server: cut (gone: connections closed,
// new ones refused), stall (hung: nothing forwarded either way) or hold replies (requests still
// reach the server, answers never come back), then restore.
import { connect, createServer, type Server, type Socket } from 'node:net';

export interface TcpProxy {
  /** The port the proxy listens on, on 127.0.0.1. */
  port: number;
  /** Connections from clients that are open now. */
  readonly openConnections: number;
  /** The server goes away: every connection is closed and new ones are refused. */
  cut(): Promise<void>;
  /** The server hangs: connections stay open (and new ones are accepted) but nothing is forwarded. */
  stall(): void;
  /** The server stops answering: what clients send still reaches it, nothing comes back, on open and new connections. */
  holdReplies(): void;
  /** The server comes back: new connections are forwarded again; stalled or held ones are closed. */
  restore(): Promise<void>;
  close(): Promise<void>;
}

export async function startTcpProxy(upstreamHost: string, upstreamPort: number): Promise<TcpProxy> {
  const sockets = new Set<Socket>();
  const clients = new Set<Socket>();
  const servers = new Map<Socket, Socket>();
  let mode: 'forward' | 'stall' | 'hold' = 'forward';
  let listener: Server | null = null;
  let port = 0;

  function track(socket: Socket): void {
    sockets.add(socket);
    socket.on('error', () => {});
    socket.on('close', () => sockets.delete(socket));
  }

  function onConnection(client: Socket): void {
    track(client);
    clients.add(client);
    client.on('close', () => clients.delete(client));
    if (mode === 'stall') return;
    const server = connect(upstreamPort, upstreamHost);
    track(server);
    servers.set(server, client);
    server.on('close', () => servers.delete(server));
    client.pipe(server);
    if (mode === 'hold') server.pause();
    else server.pipe(client);
    client.on('close', () => server.destroy());
    server.on('close', () => client.destroy());
  }

  async function listen(): Promise<void> {
    const next = createServer(onConnection);
    await new Promise<void>((resolve, reject) => {
      next.once('error', reject);
      next.listen(port, '127.0.0.1', () => resolve());
    });
    const address = next.address();
    if (address && typeof address === 'object') port = address.port;
    listener = next;
  }

  async function stopListening(): Promise<void> {
    const current = listener;
    listener = null;
    for (const socket of sockets) socket.destroy();
    if (current) await new Promise<void>((resolve) => current.close(() => resolve()));
  }

  await listen();
  return {
    port,
    get openConnections() {
      return clients.size;
    },
    cut: stopListening,
    stall() {
      mode = 'stall';
      for (const socket of sockets) {
        socket.unpipe();
        socket.pause();
      }
    },
    holdReplies() {
      mode = 'hold';
      for (const [server, client] of servers) {
        server.unpipe(client);
        server.pause();
      }
    },
    async restore() {
      const degraded = mode !== 'forward';
      mode = 'forward';
      if (degraded) for (const socket of sockets) socket.destroy();
      if (!listener) await listen();
    },
    close: stopListening,
  };
}
