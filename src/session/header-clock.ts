// The header time-out (--header-timeout). A peer that stops inside its stream header, or inside an
// element before binding, holds a socket and parser state while sending nothing useful: that is an
// attack, not a slow client, so it gets far less time than --negotiation-timeout. The session starts
// the clock at connect and at each restart and stops it when the header is complete; then it runs
// from the chunk that begins an element until that element is complete (a drip of bytes does not
// restart it). From binding on the session leaves it off.

/** Who is told when the clock runs out (the session: an object, so that no closure is kept per session). */
export interface HeaderClockOwner {
  headerTimedOut(): void;
}

function expired(owner: HeaderClockOwner): void {
  owner.headerTimedOut();
}

export class HeaderClock {
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly ms: number,
    private readonly owner: HeaderClockOwner,
  ) {}

  /** Start afresh. */
  start(): void {
    clearTimeout(this.timer);
    this.timer = setTimeout(expired, this.ms, this.owner);
    this.timer.unref();
  }

  stop(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
  }

  /** After a chunk, between headers: run while an element is unfinished, timed from the chunk that began it. */
  chunk(partial: boolean): void {
    if (!partial) this.stop();
    else if (this.timer === undefined) this.start();
  }
}
