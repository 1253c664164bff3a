// What a session reports about itself, for the metrics (src/admin/metrics.ts implements it). Only
// rare events go through here (a connection, a login, a stream error, a time-out); per-stanza counts
// are in LaneTally, per-byte counts in the streams themselves, both read when metrics are scraped.
import type { StreamErrorCondition } from '../stream/errors.js';

export interface SessionMeter {
  /** a client connected over `transport` ('tcp' for the c2s listener) */
  opened(transport: string): void;
  /** that session is completely gone */
  closed(transport: string): void;
  /** SASL ended: success or failure from the backend */
  login(transport: string, ok: boolean): void;
  /** the client was sent a stream error (the proxy's own or the backend's relayed) */
  streamError(condition: StreamErrorCondition): void;
  /** one of the proxy's own requests to the backend got no answer in time */
  requestTimedOut(): void;
}
