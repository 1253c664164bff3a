// The ordered rule pipeline of one direction of one session ("lane"). Stanzas go through the rules in
// arrival order; the first rule to claim a stanza ends its trip, an unclaimed stanza is forwarded as
// its original bytes. Rules may be asynchronous (await a backend answer): the lane then holds later
// stanzas (and pauses the socket they come from) until the stanza in hand is done, so order is kept
// per direction. The fast path, no rule interested, allocates nothing and awaits nothing.
import type { Logger } from 'pino';
import type { Stanza } from '../stream/stanza.js';
import type { Verdict } from '../rules/types.js';

export type Hook = (stanza: Stanza) => Verdict | Promise<Verdict>;

export interface LaneIo {
  /** pass-through: send the stanza's original bytes on */
  forward(stanza: Stanza): void;
  /** a rule failed on this stanza (threw or rejected): tell the sender, drop the stanza */
  failed(stanza: Stanza, err: unknown): void;
  /** stop / restart reading the socket this lane's stanzas come from */
  pause(): void;
  resume(): void;
}

function isPromise(v: unknown): v is Promise<Verdict> {
  return typeof v === 'object' && v !== null && typeof (v as Promise<Verdict>).then === 'function';
}

export class Lane {
  private queue: Stanza[] = [];
  private busy = false;
  private stopped = false;

  constructor(
    private readonly hooks: Hook[],
    private readonly io: LaneIo,
    private readonly log: Logger,
  ) {}

  /** true while a stanza is inside an asynchronous rule or stanzas wait behind it */
  get pending(): boolean {
    return this.busy || this.queue.length > 0;
  }

  push(stanza: Stanza): void {
    if (this.stopped) return;
    if (this.busy) {
      this.queue.push(stanza);
      return;
    }
    this.run(stanza, 0);
  }

  /** Drop what is queued and ignore anything pushed later (the session is closing). */
  stop(): void {
    this.stopped = true;
    this.queue = [];
  }

  /** Run `stanza` through the hooks from index `from`; returns when done or when it went async. */
  private run(stanza: Stanza, from: number): void {
    const hooks = this.hooks;
    for (let i = from; i < hooks.length; i++) {
      let verdict: Verdict | Promise<Verdict>;
      try {
        verdict = hooks[i]!(stanza);
      } catch (err) {
        this.io.failed(stanza, err);
        return;
      }
      if (isPromise(verdict)) {
        this.wait(stanza, i, verdict);
        return;
      }
      if (verdict === true) return;
    }
    this.io.forward(stanza);
  }

  private wait(stanza: Stanza, index: number, verdict: Promise<Verdict>): void {
    if (!this.busy) {
      this.busy = true;
      this.io.pause();
    }
    verdict.then(
      (claimed) => {
        if (this.stopped) return;
        this.busy = false;
        if (claimed === true) this.drain();
        else {
          this.run(stanza, index + 1);
          if (!this.busy) this.drain();
        }
      },
      (err: unknown) => {
        if (this.stopped) return;
        this.busy = false;
        this.io.failed(stanza, err);
        this.drain();
      },
    );
  }

  private drain(): void {
    while (!this.busy && !this.stopped && this.queue.length > 0) {
      this.run(this.queue.shift()!, 0);
    }
    if (!this.busy && !this.stopped) this.io.resume();
    else if (this.stopped) this.log.trace('lane stopped');
  }
}
