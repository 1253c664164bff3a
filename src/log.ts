// Logging: pino, JSON lines by default, pino-pretty with --log-pretty. One logger per process; each
// session gets a child carrying its session id (and, once bound, its JID).
import { pino, type Logger } from 'pino';
import type { LogLevel } from './config.js';
import { ownString } from './stream/chars.js';

export type { Logger };

export function createLogger(opts: { level: LogLevel; pretty: boolean; destination?: NodeJS.WritableStream }): Logger {
  if (opts.pretty) {
    return pino({
      level: opts.level,
      transport: { target: 'pino-pretty', options: { colorize: process.stdout.isTTY === true, destination: 1, translateTime: 'SYS:HH:MM:ss.l' } },
    });
  }
  return pino({ level: opts.level, base: { pid: process.pid } }, (opts.destination as pino.DestinationStream | undefined) ?? batchedStdout());
}

/** A log line waits at most this long to go out with the lines after it (README "Logs"). */
export const LOG_FLUSH_MS = 100;
/** ... or until this many characters are waiting. */
const LOG_BATCH_CHARS = 16 * 1024;

/**
 * stdout, the lines of LOG_FLUSH_MS written together. pino's own destination writes each line as
 * one asynchronous write (a libuv thread-pool job: a thread woken, a write, a completion back on
 * the loop), 10-12 µs of CPU a line against 3 when batched (a pinned loop of single lines), and a
 * login logs three or four lines. sonic-boom's own batching (minLength) only writes once a size is
 * reached, and its flush() also fsyncs; so the timer and the size are kept here, and sonic-boom
 * still does the writing (partial writes, EAGAIN on a full pipe). What is waiting is written
 * synchronously at exit (a crash included; a batch handed to the thread pool just before may then
 * come out after it); a process killed with SIGKILL loses at most its last LOG_FLUSH_MS of lines.
 */
export function batchedStdout(fd = 1): pino.DestinationStream & { flush(cb?: (err?: Error) => void): void; flushSync(): void } {
  const out = pino.destination({ dest: fd, minLength: 0, sync: false });
  let waiting = '';
  let timer: NodeJS.Timeout | undefined;
  /** handed to sonic-boom and not known written yet (its 'drain': all written) */
  let inFlight = false;
  out.on('drain', () => (inFlight = false));
  const flush = () => {
    if (timer !== undefined) clearTimeout(timer);
    timer = undefined;
    if (waiting.length === 0) return;
    inFlight = true;
    out.write(waiting);
    waiting = '';
  };
  process.once('exit', () => {
    flush();
    try {
      out.flushSync();
    } catch {
      // stdout already closed: nothing more can be written
    }
  });
  return {
    write(line: string) {
      waiting += line;
      if (waiting.length >= LOG_BATCH_CHARS) flush();
      else if (timer === undefined) (timer = setTimeout(flush, LOG_FLUSH_MS)).unref();
    },
    /** write what waits; `cb` once it is written (pino's logger.flush(cb)) */
    flush(cb?: (err?: Error) => void) {
      flush();
      if (!cb) return;
      if (!inFlight) return cb();
      const done = (err?: Error) => {
        out.off('drain', done).off('error', done);
        cb(err);
      };
      out.once('drain', done).once('error', done);
    },
    flushSync() {
      flush();
      out.flushSync();
    },
  };
}

/** A logger that drops everything (library use, unit tests). */
export const silentLogger: Logger = pino({ level: 'silent' });

/**
 * Per-session children (one per session, kept while it lives: every byte counts per idle session).
 * They hang off one intermediate child per parent, whose formatters pino has already made for
 * children (a first-level child gets a formatters object of its own); and their bindings, which pino
 * keeps as a string concatenated piece by piece, are made one flat string.
 */
const bases = new WeakMap<Logger, Logger>();

export function sessionLogger(parent: Logger, bindings: Record<string, string>): Logger {
  let base = bases.get(parent);
  if (!base) bases.set(parent, (base = parent.child({})));
  const log = base.child(bindings);
  flattenBindings(log);
  return log;
}

/** setBindings, the bindings kept as one flat string. */
export function addBindings(log: Logger, bindings: Record<string, string>): void {
  log.setBindings(bindings);
  flattenBindings(log);
}

function flattenBindings(log: Logger): void {
  const holder = log as unknown as Record<symbol, unknown>;
  const s = holder[pino.symbols.chindingsSym];
  if (typeof s === 'string') holder[pino.symbols.chindingsSym] = ownString(s);
}
