// The proxy's metrics in the Prometheus text format (prom-client), one registry per proxy (several
// proxies may share a process: tests, embedding). Rare events (connections, logins, stream errors,
// time-outs) are counted by prom-client as they happen; what happens per stanza or per byte is
// counted by the session layer in plain numbers (LaneTally, XmlStream) and read here at scrape time,
// so the hot path never calls into prom-client.
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics, type MetricObjectWithValues, type MetricType, type MetricValueWithName } from 'prom-client';
import type { SessionMeter } from '../session/meter.js';
import { DURATION_BUCKETS, type LaneTally } from '../session/tally.js';
import type { StreamErrorCondition } from '../stream/errors.js';

export interface Bytes {
  clientIn: number;
  clientOut: number;
  backendIn: number;
  backendOut: number;
}

/** What the metrics read from the proxy when scraped. */
export interface MetricsSource {
  /** per direction (where the stanzas came from), the lanes' tallies */
  tally: { client: LaneTally; backend: LaneTally };
  /** every byte so far: the closed sessions' and the live ones' */
  bytes(): Bytes;
}

type Direction = 'from_client' | 'from_backend';

const HISTOGRAM = 'xep207_rewrite_duration_seconds';
const HISTOGRAM_HELP = 'Time from a stanza entering the rules to the rule that claimed it being done (backend round trips included), by direction and rule';

/** The rewrite durations, exported from the tallies' bucket counts (no observe() per stanza). */
class TallyHistogram extends Histogram<'direction' | 'rule'> {
  constructor(
    registry: Registry,
    private readonly lanes: ReadonlyArray<readonly [Direction, LaneTally]>,
  ) {
    super({
      name: HISTOGRAM,
      help: HISTOGRAM_HELP,
      labelNames: ['direction', 'rule'],
      buckets: DURATION_BUCKETS,
      registers: [registry],
    });
  }

  override async get() {
    return this.snapshot();
  }

  /** what the registry calls for the text format */
  async getForPromString() {
    return this.snapshot();
  }

  private snapshot(): MetricObjectWithValues<MetricValueWithName<'direction' | 'rule'>> {
    const name = HISTOGRAM;
    // `le` is a label of the bucket series that prom-client's types do not list
    const values: Array<MetricValueWithName<'direction' | 'rule'> & { labels: Record<string, string | number> }> = [];
    const width = DURATION_BUCKETS.length + 1;
    for (const [direction, t] of this.lanes) {
      t.names.forEach((rule, i) => {
        let acc = 0;
        for (let b = 0; b < width; b++) {
          acc += t.buckets[i * width + b]!;
          values.push({ labels: { le: b < DURATION_BUCKETS.length ? DURATION_BUCKETS[b]! : '+Inf', direction, rule }, value: acc, metricName: `${name}_bucket` });
        }
        values.push({ labels: { direction, rule }, value: t.seconds[i]!, metricName: `${name}_sum` });
        values.push({ labels: { direction, rule }, value: acc, metricName: `${name}_count` });
      });
    }
    // MetricType: the d.ts declares an enum that the module does not export at runtime
    return { name, help: HISTOGRAM_HELP, type: 'histogram' as unknown as MetricType, values, aggregator: 'sum', collect: () => undefined };
  }
}

export class Metrics implements SessionMeter {
  readonly registry = new Registry();
  private readonly sessions: Gauge<'transport'>;
  private readonly connections: Counter<'transport'>;
  private readonly logins: Counter<'transport' | 'result'>;
  private readonly streamErrors: Counter<'condition'>;
  private readonly timeouts: Counter<'account'>;
  /** set by the proxy: 1 while draining (SIGTERM) */
  readonly draining: Gauge;

  constructor(source: MetricsSource) {
    const registers = [this.registry];
    // process_* and nodejs_*: CPU, memory, GC, handles and the event-loop lag (nodejs_eventloop_lag_*)
    collectDefaultMetrics({ register: this.registry });
    this.sessions = new Gauge({ name: 'xep207_sessions', help: 'Client sessions open now, by transport', labelNames: ['transport'], registers });
    this.connections = new Counter({ name: 'xep207_connections_total', help: 'Client connections accepted, by transport', labelNames: ['transport'], registers });
    this.logins = new Counter({ name: 'xep207_logins_total', help: 'SASL exchanges relayed to the backend, by transport and result (ok, failed)', labelNames: ['transport', 'result'], registers });
    this.streamErrors = new Counter({ name: 'xep207_stream_errors_total', help: "Stream errors sent to clients (the proxy's own and the backend's relayed), by condition", labelNames: ['condition'], registers });
    this.timeouts = new Counter({
      name: 'xep207_backend_request_timeouts_total',
      help: "The proxy's own requests to the backend that got no answer within --request-timeout, by the account that sent them (session: a user's, service: --service-jid)",
      labelNames: ['account'],
      registers,
    });
    this.draining = new Gauge({ name: 'xep207_draining', help: '1 while the proxy drains its sessions before exiting (SIGTERM)', registers });
    const lanes = [['from_client', source.tally.client], ['from_backend', source.tally.backend]] as const;
    new Counter({
      name: 'xep207_stanzas_total',
      help: "Stanzas through the rules, by direction and the rule that claimed them ('pass-through': none did, forwarded unchanged)",
      labelNames: ['direction', 'rule'],
      registers,
      collect() {
        this.reset();
        for (const [direction, t] of lanes) {
          t.names.forEach((rule, i) => this.inc({ direction, rule }, t.claimed[i]!));
          this.inc({ direction, rule: 'pass-through' }, t.passed);
        }
      },
    });
    new Counter({
      name: 'xep207_rule_failures_total',
      help: 'Stanzas a rule failed on (the sender got a stanza error), by direction and rule',
      labelNames: ['direction', 'rule'],
      registers,
      collect() {
        this.reset();
        for (const [direction, t] of lanes) t.names.forEach((rule, i) => this.inc({ direction, rule }, t.failed[i]!));
      },
    });
    new TallyHistogram(this.registry, lanes);
    new Counter({
      name: 'xep207_bytes_total',
      help: 'XML bytes read (in) and written (out) on each leg (client, backend), after TLS',
      labelNames: ['leg', 'direction'],
      registers,
      collect() {
        const b = source.bytes();
        this.reset();
        this.inc({ leg: 'client', direction: 'in' }, b.clientIn);
        this.inc({ leg: 'client', direction: 'out' }, b.clientOut);
        this.inc({ leg: 'backend', direction: 'in' }, b.backendIn);
        this.inc({ leg: 'backend', direction: 'out' }, b.backendOut);
      },
    });
    // known label values appear at 0 from the start (a rate() needs the series before the first event)
    this.sessions.set({ transport: 'tcp' }, 0);
    this.connections.inc({ transport: 'tcp' }, 0);
    for (const result of ['ok', 'failed']) this.logins.inc({ transport: 'tcp', result }, 0);
    this.draining.set(0);
    for (const account of ['session', 'service']) this.timeouts.inc({ account }, 0);
  }

  opened(transport: string): void {
    this.sessions.inc({ transport });
    this.connections.inc({ transport });
  }

  closed(transport: string): void {
    this.sessions.dec({ transport });
  }

  login(transport: string, ok: boolean): void {
    this.logins.inc({ transport, result: ok ? 'ok' : 'failed' });
  }

  streamError(condition: StreamErrorCondition): void {
    this.streamErrors.inc({ condition });
  }

  requestTimedOut(account: 'session' | 'service' = 'session'): void {
    this.timeouts.inc({ account });
  }

  text(): Promise<string> {
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }
}
