// /readyz: is the backend reachable and answering a stream header now? A fresh connection to
// --upstream, our stream header, the backend's header back within a short time-out; nothing else is
// negotiated (no STARTTLS, no SASL: nothing secret travels). The answer is cached for a moment and
// concurrent probes share one connection, so a load balancer probing every instance often does not
// open a connection per probe.
import net from 'node:net';
import tls from 'node:tls';
import { performance } from 'node:perf_hooks';
import type { Config } from '../config.js';
import { XmlStream, type StreamEvents } from '../stream/connection.js';
import type { StreamError } from '../stream/errors.js';
import { TcpFraming } from '../stream/framing-tcp.js';

export interface Readiness {
  ready: boolean;
  /** how long the backend took to answer, when it did */
  ms?: number;
  reason?: string;
}

/** a probe's time-out: short, a load balancer's own check is usually 2-5 s */
export const PROBE_TIMEOUT_MS = 2000;
/** how long an answer is reused */
export const PROBE_CACHE_MS = 1000;

/** One probe: connect, send a header for `domain`, wait for the backend's header. */
export function probeBackend(config: Config, domain: string, timeoutMs = PROBE_TIMEOUT_MS): Promise<Readiness> {
  const started = performance.now();
  const { host, port, tls: direct } = config.upstream;
  return new Promise((resolve) => {
    let settled = false;
    let stream: XmlStream | undefined;
    const done = (r: Readiness) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if (stream) stream.close(false);
      else socket.destroy();
      resolve(r);
    };
    const timer = setTimeout(() => done({ ready: false, reason: `no stream header from ${host}:${port} within ${timeoutMs} ms` }), timeoutMs);
    // a direct-TLS backend is not verified here: the probe sends nothing but a header, and the
    // sessions verify it anyway (a certificate problem shows as their remote-connection-failed)
    const socket: net.Socket = direct ? tls.connect({ host, port, servername: domain, rejectUnauthorized: false }) : net.connect({ host, port });
    socket.once(direct ? 'secureConnect' : 'connect', () => {
      const events: StreamEvents = {
        onStreamStart: () => done({ ready: true, ms: Math.round((performance.now() - started) * 10) / 10 }),
        onElement: () => undefined,
        onStreamEnd: () => done({ ready: false, reason: 'the backend closed the stream at once' }),
        onViolation: (err: StreamError) => done({ ready: false, reason: `the backend sent bad XML: ${err.message}` }),
        onClose: (err?: Error) => done({ ready: false, reason: `connection closed${err ? `: ${err.message}` : ''}` }),
      };
      stream = new XmlStream(new TcpFraming(socket, { maxSize: 1 << 20, maxDepth: 64 }), events);
      stream.sendHeader({ to: domain, version: '1.0' });
    });
    socket.once('error', (err) => done({ ready: false, reason: `cannot reach ${host}:${port}: ${err.message}` }));
  });
}

/** Probes with a short cache and one probe in flight at a time. */
export class ReadinessProbe {
  private last: { at: number; answer: Readiness } | undefined;
  private running: Promise<Readiness> | undefined;

  constructor(
    private readonly config: Config,
    /** the domain named in the probe's header (any the backend serves answers best) */
    private readonly domain: string,
  ) {}

  check(): Promise<Readiness> {
    if (this.last && performance.now() - this.last.at < PROBE_CACHE_MS) return Promise.resolve(this.last.answer);
    this.running ??= probeBackend(this.config, this.domain).then((answer) => {
      this.last = { at: performance.now(), answer };
      this.running = undefined;
      return answer;
    });
    return this.running;
  }
}
