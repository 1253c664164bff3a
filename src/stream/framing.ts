// What an XML stream needs from its transport, whatever that is: TCP (one XML document over a byte
// stream, RFC 6120) or WebSocket (one element per message, RFC 7395). A framing turns what arrives
// into stream events (header, elements, end) for XmlStream, and writes what XmlStream sends in the
// transport's own form. XmlStream (connection.ts) keeps everything that is the same on both: the
// polite close, stream errors, batching, backpressure; the session above knows no framing at all.
import type { Socket } from 'node:net';
import type { StreamError } from './errors.js';
import type { TokenizerHandler } from './tokenizer.js';
import type { Attrs } from './xml.js';

/** What a framing reports to its stream. */
export interface FramingSink extends TokenizerHandler {
  /** the peer broke the rules of the stream or of the framing */
  onViolation(err: StreamError): void;
  /** a unit of input was parsed; `partial`: it left a header or top-level element unfinished */
  onChunk(partial: boolean): void;
  /** the transport is gone (after our end, the peer's close, or an error) */
  onClose(err?: Error): void;
  /** our writes are queuing up (true) or drained (false) */
  onBackpressure(full: boolean): void;
}

export interface Framing {
  /** 'tcp' or 'websocket', for logs */
  readonly kind: string;
  /** bytes received, for logs and the benchmark */
  readonly bytesIn: number;
  /** XmlStream attaches itself once, before any input is read */
  attach(sink: FramingSink): void;
  /** our stream header with these attributes, serialized for this transport (latin1-held bytes) */
  header(attrs: Attrs): string;
  /** the end of our stream */
  readonly footer: string;
  /**
   * Write units in order: each one our header, one complete top-level element, or our footer
   * (latin1-held bytes). Returns false when the transport's buffer is full.
   */
  write(units: readonly string[]): boolean;
  /** parse a new stream from the next input on (after SASL success) */
  restart(): void;
  /** stop parsing for good (the stream is closed or closing without waiting) */
  stopParsing(): void;
  pause(): void;
  resume(): void;
  /** close our side once what is written has gone out */
  end(): void;
  /** drop the transport now */
  destroy(): void;
  /**
   * Swap the socket for a TLS one (STARTTLS): `wrap` gets the plain socket and returns the TLS one.
   * Absent where the transport has no STARTTLS (WebSocket: TLS is the URL's, wss://).
   */
  upgrade?(wrap: (plain: Socket) => Socket): Socket;
}
