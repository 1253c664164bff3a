// The xep207-proxy command run as a child process, as an operator (or a container) runs it: one
// call and its exit code, or a running proxy whose JSON log lines the test reads and waits for.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { ROOT } from './common.js';

export const BIN = join(ROOT, 'bin', 'xep207-proxy');

export function runSync(args: string[], env: Record<string, string> = {}) {
  const r = spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', env: { ...cleanEnv(), ...env }, timeout: 20_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** the environment without any XEP207_* variable of the developer's */
export function cleanEnv(): NodeJS.ProcessEnv {
  const env = { ...process.env };
  for (const k of Object.keys(env)) if (k.startsWith('XEP207_')) delete env[k];
  return env;
}

export interface Running {
  child: ChildProcess;
  lines: Array<Record<string, unknown>>;
  exited: Promise<number | null>;
  waitLog(pred: (l: Record<string, unknown>) => boolean, timeoutMs?: number): Promise<Record<string, unknown>>;
}

/** Run the proxy (`command`: another command line for it, e.g. the container's) with these arguments. */
export function start(args: string[], env: Record<string, string> = {}, command: string[] = [process.execPath, BIN]): Running {
  const child = spawn(command[0]!, [...command.slice(1), ...args], { env: { ...cleanEnv(), ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  const lines: Array<Record<string, unknown>> = [];
  let buf = '';
  const waiters: Array<() => void> = [];
  child.stdout!.setEncoding('utf8').on('data', (d: string) => {
    buf += d;
    let nl;
    while ((nl = buf.indexOf('\n')) !== -1) {
      const line = buf.slice(0, nl);
      buf = buf.slice(nl + 1);
      try {
        lines.push(JSON.parse(line));
      } catch {
        lines.push({ unparsed: line });
      }
    }
    waiters.splice(0).forEach((w) => w());
  });
  child.stderr!.setEncoding('utf8').on('data', (d: string) => lines.push({ stderr: d }));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return {
    child,
    lines,
    exited,
    async waitLog(pred, timeoutMs = 10_000) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const l = lines.find(pred);
        if (l) return l;
        if (Date.now() > deadline) throw new Error(`log line not seen; got:\n${lines.map((x) => JSON.stringify(x)).join('\n')}`);
        await new Promise<void>((r) => {
          const timer = setTimeout(r, 200);
          waiters.push(() => {
            clearTimeout(timer);
            r();
          });
        });
      }
    },
  };
}

