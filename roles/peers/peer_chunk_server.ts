// The chunk server every serving peer runs (a client relaying, a server of its own disk): at the
// rate limit asked for, and only for clients the master sent here (their ticket is checked with
// the key that comes with each welcome, so it is set later than the server starts).
import type { Logger } from "../../imagetools/kit/mod.ts";
import { type ChunkSource, rateLimited, startChunkServer } from "../data/mod.ts";
import { ticketValid } from "../protocol/mod.ts";

export async function startPeerChunkServer(o: {
  source: ChunkSource;
  listen: string;
  rateLimit?: number;
  log: Logger;
}) {
  let ticketKey: string | null = null;
  const server = await startChunkServer({
    source: o.rateLimit ? rateLimited(o.source, o.rateLimit) : o.source,
    hostname: o.listen,
    port: 0,
    log: o.log,
    tickets: (ticket, address) => ticketKey !== null && ticketValid(ticketKey, ticket, address),
  });
  return { server, setTicketKey: (key: string) => (ticketKey = key) };
}
