// Logging: pino, JSON lines by default, pino-pretty with --log-pretty. One logger per process; each
// session gets a child carrying its session id (and, once bound, its JID).
import { pino, type Logger } from 'pino';
import type { LogLevel } from './config.js';

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
