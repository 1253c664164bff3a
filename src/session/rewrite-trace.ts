// The operator trace of one session (--trace JID): every stanza that goes through the rules is logged
// with what it became, side by side: the legacy stanza and the pubsub requests it turned into (and the
// backend's answers), or the pubsub notification and the legacy stanzas the client got. One log line
// per stanza, at info level, so that tracing one user needs no debug logs for everybody.
//
// Why AsyncLocalStorage: a rule awaits backend answers, and both lanes of a session may each be
// busy with a stanza at once; what a rule sends after an await can only be told apart by the async
// context it runs in. Only traced sessions enter a context, but once one has, Node 20 tracks async
// context for every promise of the process (a cost the README states): when the last traced session
// stops being traced, the storage is disabled, which ends that cost until the next one.
import { AsyncLocalStorage } from 'node:async_hooks';
import { performance } from 'node:perf_hooks';
import type { Logger } from 'pino';

export type Output = { to: 'client' | 'backend'; xml: string } | { answer: string } | { error: string };

export interface Rewrite {
  /** where the stanza came from, or the hook that runs ('onBound', 'onClose') */
  from: string;
  in: string | undefined;
  out: Output[];
  startedAt: number;
  done: boolean;
  /** the rule that claimed the stanza, once known (for outputs that come after it was logged) */
  rule?: string;
}

const current = new AsyncLocalStorage<Rewrite>();
/** sessions being traced now */
let attached = 0;

/** latin1-held bytes (what the streams carry) as text for the log */
function text(bytes: string): string {
  return Buffer.from(bytes, 'latin1').toString('utf8');
}

export class RewriteTrace {
  constructor(
    /** the session's logger (it carries sid and jid) */
    private readonly log: Logger,
    /** the traced JID that matched (bare or full), named on every line */
    readonly jid: string,
  ) {}

  /** a session starts (attach) or stops (detach) using a trace */
  static attach(): void {
    attached++;
  }

  static detach(): void {
    if (--attached === 0) current.disable(); // the next run() enables it again
  }

  begin(from: string, raw?: string): Rewrite {
    return { from, in: raw === undefined ? undefined : text(raw), out: [], startedAt: performance.now(), done: false };
  }

  within<T>(rw: Rewrite, fn: () => T): T {
    return current.run(rw, fn);
  }

  /** the session sent what a rule made: an element's text, or bytes held in a latin1 string */
  output(to: 'client' | 'backend', xml: string, latin1 = false): void {
    this.record({ to, xml: latin1 ? text(xml) : xml });
  }

  /** the backend answered one of the proxy's requests */
  answer(xml: string): void {
    this.record({ answer: xml });
  }

  /** a request of the proxy's failed (the backend's error, a time-out) */
  failure(err: unknown): void {
    this.record({ error: String(err) });
  }

  private record(o: Output): void {
    const rw = current.getStore();
    if (rw !== undefined && !rw.done) {
      rw.out.push(o);
      return;
    }
    // outside any stanza (a timer, another session's notification) or after its line was written
    this.log.info({ trace: this.jid, ...(rw ? { after: rw.from, rule: rw.rule } : {}), out: [o] }, 'trace');
  }

  /** The stanza is done: claimed by `rule`, passed through (no rule), or a rule failed (`err`). */
  end(rw: Rewrite, rule: string | undefined, err?: unknown): void {
    rw.done = true;
    if (rule !== undefined) rw.rule = rule;
    const ms = Math.round((performance.now() - rw.startedAt) * 100) / 100;
    this.log.info(
      { trace: this.jid, from: rw.from, rule: rule ?? 'pass-through', ms, in: rw.in, out: rw.out, ...(err !== undefined ? { failed: String(err) } : {}) },
      'rewrite',
    );
  }
}
