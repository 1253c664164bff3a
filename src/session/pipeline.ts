// The ordered rule pipeline of one direction of one session ("lane"). Stanzas go through the rules in
// arrival order; the first rule to claim a stanza ends its trip, an unclaimed stanza is forwarded as
// its original bytes. Rules may be asynchronous (await a backend answer): the lane then holds later
// stanzas (and may pause the socket they come from) until the stanza in hand is done, so order is
// kept per direction. The fast path, no rule interested, allocates nothing and awaits nothing.
// A rule says which stanzas each hook reads (Rule.sees); the lane asks only those rules, in table
// order: a chat message from the client meets the two rules that handle messages, not the ten with
// a client hook (each a call on a different object, and most only look at the name to say no).
// The routes are made once per direction per proxy and shared by every session; a lane only points
// at them, and so at the proxy's tally of what each rule did (counted here: an increment, no
// allocation).
import { performance } from 'node:perf_hooks';
import { inputTime } from '../stream/connection.js';
import type { Stanza } from '../stream/stanza.js';
import type { Rule, RuleContext, StanzaKind, Verdict } from '../rules/types.js';
import { LaneTally } from './tally.js';
import type { Rewrite, RewriteTrace } from './rewrite-trace.js';

export type Direction = 'client' | 'backend';

/** What a lane needs from its session (the session implements it: no closures per session). */
export interface LaneHost {
  /** pass-through: send the stanza's original bytes on */
  laneForward(from: Direction, stanza: Stanza): void;
  /** a rule failed on this stanza (threw or rejected): tell the sender, drop the stanza */
  laneFailed(from: Direction, stanza: Stanza, err: unknown): void;
  /** a rule is busy (true) or done (false): the session may stop reading the source socket */
  laneBusy(from: Direction, busy: boolean): void;
}

function noop(): void {}

const KINDS: readonly StanzaKind[] = ['message', 'presence', 'iq'];

/** 0 message, 1 presence, 2 iq, 3 anything else (a nonza from the backend: only the rules that declare no kinds see it) */
export function kindOf(s: Stanza): number {
  const n = s.name;
  return n === 'message' ? 0 : n === 'presence' ? 1 : n === 'iq' ? 2 : 3;
}

/** The rules of one direction, and for each kind of stanza which of them read it (shared). */
export interface LaneRoutes {
  readonly from: Direction;
  /** the rules with a hook for this direction, in table order (the tally's indexes) */
  readonly rules: readonly Rule[];
  /** per kindOf(), the indexes into `rules` of the rules whose hook reads that kind, in order */
  readonly byKind: readonly (readonly number[])[];
  /** shared by the lanes of this direction of every session */
  readonly tally: LaneTally;
}

/** Routes for `rules` (those without a hook for `from` are left out). */
export function laneRoutes(rules: readonly Rule[], from: Direction): LaneRoutes {
  const hooked = rules.filter((r) => (from === 'client' ? r.fromClient : r.fromBackend) !== undefined);
  const byKind = [...KINDS, undefined].map((kind) =>
    hooked.flatMap((r, i) => {
      const sees = from === 'client' ? r.sees?.client : r.sees?.backend;
      return sees === undefined || (kind !== undefined && sees.includes(kind)) ? [i] : [];
    }),
  );
  return { from, rules: hooked, byKind, tally: new LaneTally(hooked) };
}

function isPromise(v: unknown): v is Promise<Verdict> {
  return typeof v === 'object' && v !== null && typeof (v as Promise<Verdict>).then === 'function';
}

export class Lane {
  private queue: Stanza[] | undefined;
  private busy = false;
  /** the verdict of the stanza in hand, while a rule is busy with it */
  private current: Promise<unknown> | undefined;
  private stopped = false;
  /**
   * when the stanza in hand entered the rules (performance.now() of its input chunk: inputTime), or
   * -1: not read yet. Read only once a rule claims the stanza or goes asynchronous with it: a stanza
   * that passes through needs no clock (a clock read per chunk was 3-4% of the in-memory relay path).
   */
  private startedAt = -1;
  /** set while the session's user is traced (--trace): what the stanza in hand became */
  trace: RewriteTrace | undefined;
  private rewrite: Rewrite | undefined;

  constructor(
    /** shared: a lane keeps one pointer to them (two lanes per session, idle ones included) */
    private readonly routes: LaneRoutes,
    private readonly ctx: RuleContext,
    private readonly host: LaneHost,
  ) {}

  private get from(): Direction {
    return this.routes.from;
  }

  private get tally(): LaneTally {
    return this.routes.tally;
  }

  push(stanza: Stanza): void {
    if (this.stopped) return;
    if (this.busy) {
      (this.queue ??= []).push(stanza);
      return;
    }
    this.start(stanza);
  }

  private start(stanza: Stanza): void {
    this.startedAt = -1;
    const trace = this.trace;
    const order = this.routes.byKind[kindOf(stanza)]!;
    if (trace === undefined) return this.run(stanza, order, 0);
    // what the rules send while busy with this stanza (even after awaiting) is recorded with it
    const rw = (this.rewrite = trace.begin(this.from, stanza.raw));
    trace.within(rw, () => this.run(stanza, order, 0));
  }

  /** rule `i` claimed the stanza in hand (it was rewritten, answered or dropped by that rule) */
  private claimed(i: number): void {
    // a synchronous claim: timed from its input chunk, as one that waited is
    const t0 = this.startedAt < 0 ? inputTime() : this.startedAt;
    this.tally.claim(i, performance.now() - t0);
    if (this.rewrite) this.endRewrite(this.tally.names[i]!);
  }

  private failed(stanza: Stanza, i: number, err: unknown): void {
    this.tally.failed[i]!++;
    if (this.rewrite) this.endRewrite(this.tally.names[i]!, err);
    this.host.laneFailed(this.from, stanza, err);
  }

  private endRewrite(rule: string | undefined, err?: unknown): void {
    const rw = this.rewrite!;
    this.rewrite = undefined;
    this.trace?.end(rw, rule, err);
  }

  /**
   * Drop what is queued and ignore anything pushed later (the session is closing). Resolves when the
   * stanza a rule is busy with, if any, is done: its work (e.g. publishing an unavailable presence and
   * retracting the item) must finish before the session's onClose hooks look at the state it leaves.
   */
  stop(): Promise<void> {
    this.stopped = true;
    this.queue = undefined;
    return this.current ? this.current.then(noop, noop) : Promise.resolve();
  }

  private hook(rule: Rule, stanza: Stanza): Verdict | Promise<Verdict> {
    return this.from === 'client' ? rule.fromClient!(stanza, this.ctx) : rule.fromBackend!(stanza, this.ctx);
  }

  /**
   * Run `stanza` through the rules order[first..] (indexes into routes.rules); returns when done or
   * when a rule went async.
   */
  private run(stanza: Stanza, order: readonly number[], first: number): void {
    const rules = this.routes.rules;
    for (let p = first; p < order.length; p++) {
      const i = order[p]!;
      let verdict: Verdict | Promise<Verdict>;
      try {
        verdict = this.hook(rules[i]!, stanza);
      } catch (err) {
        this.failed(stanza, i, err);
        return;
      }
      if (isPromise(verdict)) {
        this.wait(stanza, order, p, verdict);
        return;
      }
      if (verdict === true) return this.claimed(i);
    }
    this.tally.passed++;
    this.host.laneForward(this.from, stanza);
    if (this.rewrite) this.endRewrite(undefined);
  }

  private wait(stanza: Stanza, order: readonly number[], p: number, verdict: Promise<Verdict>): void {
    const index = order[p]!;
    if (this.startedAt < 0) this.startedAt = inputTime();
    if (!this.busy) {
      this.busy = true;
      this.host.laneBusy(this.from, true);
    }
    this.current = verdict;
    verdict.then(
      (claimed) => {
        if (this.stopped) return;
        this.busy = false;
        if (claimed === true) this.claimed(index);
        else this.run(stanza, order, p + 1);
        this.drain();
      },
      (err: unknown) => {
        if (this.stopped) return;
        this.busy = false;
        this.failed(stanza, index, err);
        this.drain();
      },
    );
  }

  private drain(): void {
    const q = this.queue;
    while (!this.busy && !this.stopped && q !== undefined && q.length > 0) this.start(q.shift()!);
    if (this.busy || this.stopped) return;
    this.queue = undefined;
    this.current = undefined;
    this.host.laneBusy(this.from, false);
  }
}
