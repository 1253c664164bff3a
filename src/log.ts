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
  return pino({ level: opts.level, base: { pid: process.pid } }, (opts.destination as pino.DestinationStream | undefined) ?? pino.destination(1));
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
