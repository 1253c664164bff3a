// One XML stream over one transport (either leg): the framing (framing-tcp.ts, framing-ws.ts) turns
// input into stream events; this class gates them while closing, batches what is sent into one
// transport write per tick, swaps in TLS (STARTTLS, where the framing has it) and closes the stream
// politely (stream error, then our footer, then the transport). It knows nothing about SASL,
// binding or rules, nor which transport it is on.
import type { Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import type { Element } from 'ltx';
import { textToBytes } from './chars.js';
import { NS_STREAMS, StreamError, type StreamErrorCondition } from './errors.js';
import type { Framing, FramingSink } from './framing.js';
import type { TokenizerHandler } from './tokenizer.js';
import type { Stanza } from './stanza.js';
import type { Attrs } from './xml.js';

export interface StreamEvents extends TokenizerHandler {
  /** the peer broke the stream rules (we already know what to tell it) */
  onViolation(err: StreamError): void;
  /** the transport is gone (after our close, the peer's close, or an error) */
  onClose(err?: Error): void;
  /** our writes are queuing up (true) or drained (false): the other leg should pause/resume reading */
  onBackpressure?(full: boolean): void;
  /** a chunk was parsed; `partial`: it left the start of a header or top-level element unfinished */
  onChunk?(partial: boolean): void;
}

/** Time allowed for the peer to answer our end of stream before the transport is destroyed. */
const CLOSE_GRACE_MS = 2000;

// Output queued while an input chunk is parsed (what the rules forward or answer at once) is written
// when the chunk is done: one flush per stream per chunk, without a nextTick callback per write
// (5% of the proxy's CPU in the relay phase, bench (e)). Output queued anywhere else (a rule's
// awaited work, a timer) is flushed on the next tick, as before.
let inputDepth = 0;
let batched: XmlStream[] = [];
/** performance.now() when the chunk being parsed was first asked its time (-1: not yet) */
let inputAt = -1;

/** An input chunk is about to be parsed (framings call this around their tokenizer's write). */
export function beginInput(): void {
  if (inputDepth++ === 0) inputAt = -1;
}

/**
 * performance.now(), read once per input chunk: what the stanzas of one chunk are timed from (the
 * rule lanes' durations), instead of a clock read per stanza (1-1.5% of the proxy's CPU in a
 * profile of bench (e)'s relay phase). Outside a chunk (a rule's awaited work, a timer) the clock itself.
 */
export function inputTime(): number {
  if (inputDepth === 0) return performance.now();
  if (inputAt < 0) inputAt = performance.now();
  return inputAt;
}

/** The chunk is parsed: flush what it made. */
export function endInput(): void {
  if (--inputDepth > 0 || batched.length === 0) return;
  const streams = batched;
  batched = [];
  for (const s of streams) s.flush();
}

export class XmlStream implements FramingSink {
  /** what is queued for the next flush (none: an idle stream keeps no array) */
  private out: string[] | undefined;
  private flushScheduled = false;
  /** a held stream header's deadline (holdHeader) */
  private holdTimer: NodeJS.Timeout | undefined;
  private full = false;
  private closing = false;
  private gone = false;
  private paused = false;
  /** the peer ended its stream */
  private peerEnded = false;
  private graceTimer: NodeJS.Timeout | undefined;
  /** bytes written (latin1-held units: one character per byte), for logs, metrics and the benchmark */
  bytesOut = 0;

  constructor(
    readonly framing: Framing,
    private readonly events: StreamEvents,
  ) {
    framing.attach(this);
  }

  /** bytes read, for logs and the benchmark */
  get bytesIn(): number {
    return this.framing.bytesIn;
  }

  // the framing's events: once we are closing, elements are ignored; only the peer's end of stream
  // still matters

  onStreamStart(name: string, attrs: Record<string, string>): void {
    if (!this.closing) this.events.onStreamStart(name, attrs);
  }

  onElement(s: Stanza): void {
    if (!this.closing) this.events.onElement(s);
  }

  onStreamEnd(): void {
    this.peerEnded = true;
    if (this.closing) this.framing.end();
    else this.events.onStreamEnd();
  }

  onWhitespace(): void {
    if (!this.closing) this.events.onWhitespace?.();
  }

  onChunk(partial: boolean): void {
    if (!this.closing) this.events.onChunk?.(partial);
  }

  onViolation(err: StreamError): void {
    if (this.gone) return;
    if (this.closing) this.framing.end(); // garbage while we wait for its end of stream: stop waiting
    else this.events.onViolation(err);
  }

  onBackpressure(full: boolean): void {
    if (full === this.full) return;
    this.full = full;
    this.events.onBackpressure?.(full);
  }

  onClose(err?: Error): void {
    if (this.gone) return;
    this.gone = true;
    this.closing = true;
    clearTimeout(this.graceTimer);
    this.framing.stopParsing();
    this.out = undefined;
    this.events.onClose(err);
  }

  get closed(): boolean {
    return this.closing || this.gone;
  }

  /** STARTTLS, where the transport has it: see Framing.upgrade. */
  get canUpgrade(): boolean {
    return this.framing.upgrade !== undefined;
  }

  upgrade(wrap: (plain: Socket) => Socket): Socket {
    if (!this.framing.upgrade) throw new Error(`no STARTTLS over ${this.framing.kind}`);
    this.flush();
    return this.framing.upgrade(wrap);
  }

  /** Parse a new stream from the next input on (after SASL success). */
  restart(): void {
    this.framing.restart();
  }

  /** Queue our stream header (in the transport's form) for the next flush. */
  sendHeader(attrs: Attrs): void {
    this.sendRaw(this.framing.header(attrs));
  }

  /**
   * Queue our stream header to go out with what is sent next (the features, or a stream error or
   * end of stream), not on its own: a server's header is followed by its features, which the proxy
   * has only when the backend's arrive, and one write carries both (as a server's own does), not
   * two. Held `maxMs` at most, then sent alone: a client may give the header less time than the
   * features (xmpp.js: 2 s), and a slow backend must not cost it the connection. Never for a stream
   * whose peer speaks next (the backend waits for our header).
   */
  holdHeader(attrs: Attrs, maxMs: number): void {
    if (this.closed) return;
    (this.out ??= []).push(this.framing.header(attrs));
    clearTimeout(this.holdTimer);
    this.holdTimer = setTimeout(() => this.flush(), maxMs);
    this.holdTimer.unref();
  }

  /** Queue bytes (latin1-held): one complete top-level element. */
  sendRaw(bytes: string): void {
    if (this.closed) return;
    (this.out ??= []).push(bytes);
    this.schedule();
  }

  /** Queue text (a Unicode string) for the next flush. */
  sendText(text: string): void {
    this.sendRaw(textToBytes(text));
  }

  send(el: Element): void {
    this.sendText(el.toString());
  }

  private schedule(): void {
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    if (inputDepth > 0) batched.push(this);
    else process.nextTick(() => this.flush());
  }

  /** Write everything queued in one go (TCP: one socket write). */
  flush(): void {
    this.flushScheduled = false;
    if (this.holdTimer !== undefined) {
      clearTimeout(this.holdTimer);
      this.holdTimer = undefined;
    }
    const units = this.out;
    if (units === undefined || this.gone) return;
    this.out = undefined;
    for (const u of units) this.bytesOut += u.length;
    if (!this.framing.write(units)) this.onBackpressure(true);
  }

  pause(): void {
    if (!this.paused) {
      this.paused = true;
      this.framing.pause();
    }
  }

  resume(): void {
    if (this.paused) {
      this.paused = false;
      this.framing.resume();
    }
  }

  /**
   * Send a stream error and close. `header` holds the attributes of our stream header if it was not
   * sent yet (RFC 6120 §4.9.1.2: the error goes inside a stream). The transport is ended at once:
   * after a stream error nothing the peer says matters.
   */
  error(condition: StreamErrorCondition, text: string | undefined, header?: Attrs): void {
    if (this.closed) return;
    if (header) this.sendHeader(header);
    const t = text ? `<text xmlns='${NS_STREAMS}'>${escapeText(text)}</text>` : '';
    this.sendText(`<stream:error><${condition} xmlns='${NS_STREAMS}'/>${t}</stream:error>`);
    this.close(false);
  }

  /**
   * Send our end of stream. With `wait` (the default) the transport is ended when the peer answers
   * with its own (RFC 6120 §4.4, RFC 7395 §3.6); without, at once. Either way it is destroyed if it
   * is still open after the grace period: end() alone never closes a TCP socket whose peer does not
   * close its side (it need not even read: keepalives are answered by its kernel), and cannot send
   * its FIN through a TLS handshake the peer never finishes.
   */
  close(wait = true): void {
    if (this.closed) return;
    this.sendRaw(this.framing.footer);
    this.flush();
    this.closing = true;
    this.out = undefined;
    if (!wait || this.peerEnded) {
      this.framing.stopParsing();
      this.framing.end();
    } else {
      this.resume(); // a paused transport would never read the answer we wait for
    }
    this.graceTimer = setTimeout(() => this.framing.destroy(), CLOSE_GRACE_MS);
    this.graceTimer.unref();
  }

  /** Drop the transport now (the peer is gone or misbehaving beyond a polite close). */
  destroy(): void {
    this.closing = true;
    this.framing.destroy();
  }
}

function escapeText(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}
