import { WebSocket } from 'ws';

/**
 * Pings a WebSocket every `intervalMs` and terminates it when the pong of its previous ping has not come
 * by the next (a peer gone without a close). The first ping comes after a random share of the interval:
 * sockets opened together (every dashboard reconnecting after a deploy) would otherwise be pinged, and
 * send their pongs, all in the same moment, a burst that held up live updates. 0: no pings.
 *
 * In place of graphql-ws's own keep-alive, which pings on the interval from the moment of connection and
 * arms a timer and a listener per ping.
 */
export function keepAlive(socket: WebSocket, intervalMs: number): void {
  if (!(intervalMs > 0)) return;
  let answered = true;
  socket.on('pong', () => {
    answered = true;
  });
  const ping = () => {
    if (socket.readyState !== WebSocket.OPEN) return;
    if (!answered) return void socket.terminate();
    answered = false;
    socket.ping();
  };
  let interval: NodeJS.Timeout | undefined;
  const first = setTimeout(() => {
    ping();
    interval = setInterval(ping, intervalMs);
  }, Math.random() * intervalMs);
  socket.once('close', () => {
    clearTimeout(first);
    clearInterval(interval);
  });
}
