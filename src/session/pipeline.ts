// The ordered rule pipeline of one direction of one session ("lane"). Stanzas go through the rules in
// arrival order; the first rule to claim a stanza ends its trip, an unclaimed stanza is forwarded as
// its original bytes. Rules may be asynchronous (await a backend answer): the lane then holds later
// stanzas (and may pause the socket they come from) until the stanza in hand is done, so order is
// kept per direction. The fast path, no rule interested, allocates nothing and awaits nothing.
// The rule arrays are shared by every session of a proxy; a lane only points at them, and so at the
// proxy's tally of what each rule did (counted here: an increment, no allocation).
import { performance } from 'node:perf_hooks';
import type { Stanza } from '../stream/stanza.js';
import type { Rule, RuleContext, Verdict } from '../rules/types.js';
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

function isPromise(v: unknown): v is Promise<Verdict> {
  return typeof v === 'object' && v !== null && typeof (v as Promise<Verdict>).then === 'function';
}

export class Lane {
  private queue: Stanza[] | undefined;
  private busy = false;
  /** the verdict of the stanza in hand, while a rule is busy with it */
  private current: Promise<unknown> | undefined;
  private stopped = false;
  /** when the stanza in hand entered the rules (performance.now()) */
  private startedAt = 0;
  /** set while the session's user is traced (--trace): what the stanza in hand became */
  trace: RewriteTrace | undefined;
  private rewrite: Rewrite | undefined;

  constructor(
    /** the rules with a hook for this direction, in table order */
    private readonly rules: readonly Rule[],
    private readonly from: Direction,
    private readonly ctx: RuleContext,
    private readonly host: LaneHost,
    /** shared by the lanes of this direction of every session (same rule order) */
    private readonly tally: LaneTally = new LaneTally(rules),
  ) {}

  push(stanza: Stanza): void {
    if (this.stopped) return;
    if (this.busy) {
      (this.queue ??= []).push(stanza);
      return;
    }
    this.start(stanza);
  }

  private start(stanza: Stanza): void {
    this.startedAt = performance.now();
    const trace = this.trace;
    if (trace === undefined) return this.run(stanza, 0);
    // what the rules send while busy with this stanza (even after awaiting) is recorded with it
    const rw = (this.rewrite = trace.begin(this.from, stanza.raw));
    trace.within(rw, () => this.run(stanza, 0));
  }

  /** rule `i` claimed the stanza in hand (it was rewritten, answered or dropped by that rule) */
  private claimed(i: number): void {
    this.tally.claim(i, performance.now() - this.startedAt);
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

  /** Run `stanza` through the rules from index `first`; returns when done or when it went async. */
  private run(stanza: Stanza, first: number): void {
    const rules = this.rules;
    for (let i = first; i < rules.length; i++) {
      let verdict: Verdict | Promise<Verdict>;
      try {
        verdict = this.hook(rules[i]!, stanza);
      } catch (err) {
        this.failed(stanza, i, err);
        return;
      }
      if (isPromise(verdict)) {
        this.wait(stanza, i, verdict);
        return;
      }
      if (verdict === true) return this.claimed(i);
    }
    this.tally.passed++;
    this.host.laneForward(this.from, stanza);
    if (this.rewrite) this.endRewrite(undefined);
  }

  private wait(stanza: Stanza, index: number, verdict: Promise<Verdict>): void {
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
        else this.run(stanza, index + 1);
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
