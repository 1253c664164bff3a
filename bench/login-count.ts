// Instructions per login, counted (docs/bench.md, "Seventh round"): the proxy as its CLI starts it
// (`bin/xep207-proxy --upstream-tls off`) in front of a private ejabberd, run under valgrind's
// callgrind; W warm-up first logins of accounts of their own, then N first logins of other accounts
// and N second logins of the same, LOGIN_COUNT_CONCURRENCY in progress; after each phase its
// sessions are closed and the proxy is left to go idle (the closes are not counted). Between phases
// callgrind's counters are zeroed and read per thread (callgrind_control), so each phase's count is
// its own: the proxy's main thread and, apart, its other threads (V8's optimizing compiler, almost
// all of it, and the GC's helpers). User-space instructions only: the kernel's share of a socket
// write is not in them.
//
//   LOGIN_COUNT_WARMUP=300 LOGIN_COUNT_LOGINS=300 node dist/bench/login-count.js
//
// Options (environment): LOGIN_COUNT_WARMUP (300), LOGIN_COUNT_LOGINS (300),
// LOGIN_COUNT_CONCURRENCY (16), LOGIN_COUNT_NODE_ARGS (node flags for the proxy, e.g.
// `--interrupt-budget=135168`), LOGIN_COUNT_LOG_LEVEL (the proxy's `--log-level`; unset: the CLI's
// default), LOGIN_COUNT_STDOUT (a file for the proxy's log lines; unset: /dev/null), LOGIN_COUNT_VALGRIND=0 (no valgrind: CPU time per login from /proc,
// as noisy as any timing on a shared host). Needs valgrind (not installed by the project). A phase
// of 300 logins takes about a minute under callgrind.
import { execFileSync, spawn } from 'node:child_process';
import { appendFileSync, openSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { freePort, waitForPort } from '../test/harness/common.js';
import { startEjabberd } from '../test/harness/ejabberd.js';
import { ROOT, cpuSeconds, envNumber, pool } from './common.js';
import { DOMAIN, PASSWORD, closeAll, loginOnce, pin, procStats, quiet } from './users.js';

const cpuOf = (pid: number) => cpuSeconds(procStats(pid).cpu);

/** Instructions per thread since the last zeroing, from callgrind_control's event counters. */
function counters(pid: number): Map<number, number> {
  const out = execFileSync('callgrind_control', ['-e', 'Ir', String(pid)], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
  return new Map([...out.matchAll(/Th\s*(\d+)\s+([\d,]+)/g)].map((m) => [Number(m[1]), Number(m[2]!.replaceAll(',', ''))]));
}

async function main(): Promise<void> {
  const warmup = envNumber('LOGIN_COUNT_WARMUP', 300, 0);
  const logins = envNumber('LOGIN_COUNT_LOGINS', 300);
  const concurrency = envNumber('LOGIN_COUNT_CONCURRENCY', 16);
  const counted = process.env.LOGIN_COUNT_VALGRIND !== '0';
  const nodeArgs = process.env.LOGIN_COUNT_NODE_ARGS?.split(' ').filter(Boolean) ?? [];
  const warmUsers = Array.from({ length: warmup }, (_, i) => `cw${i}`);
  const users = Array.from({ length: logins }, (_, i) => `cm${i}`);
  const backend = await startEjabberd({ loglevel: 'warning', users: [...warmUsers, ...users].map((u) => [u, DOMAIN, PASSWORD] as [string, string, string]) });
  const port = await freePort();
  // the bin's own first line gives node --max-semi-space-size=8; started through node here, so it is passed
  const proxyArgs = ['--max-semi-space-size=8', ...nodeArgs, join(ROOT, 'bin', 'xep207-proxy'), '--listen', `127.0.0.1:${port}`, '--upstream', `tcp://127.0.0.1:${backend.plainPort!}`, '--upstream-tls', 'off'];
  if (process.env.LOGIN_COUNT_LOG_LEVEL) proxyArgs.push('--log-level', process.env.LOGIN_COUNT_LOG_LEVEL);
  // appended to, as the phase marks below are (e.g. with LOGIN_COUNT_NODE_ARGS=--trace-opt: what V8
  // compiles during which phase)
  const logFile = process.env.LOGIN_COUNT_STDOUT;
  if (logFile) writeFileSync(logFile, '');
  const stdout = logFile ? openSync(logFile, 'a') : 'ignore';
  const mark = (what: string) => logFile && appendFileSync(logFile, `=== login-count: ${what}\n`);
  const cmd = counted ? ['valgrind', '-q', '--tool=callgrind', '--smc-check=all-non-file', '--callgrind-out-file=/dev/null', process.execPath, ...proxyArgs] : [process.execPath, ...proxyArgs];
  const proc = spawn(cmd[0]!, cmd.slice(1), { stdio: ['ignore', stdout, 'inherit'] });
  const pid = proc.pid!;
  try {
    await waitForPort(port, counted ? 300_000 : 20_000);
    // with two CPUs: the proxy on CPU 0, ejabberd and this load generator on CPU 1 (as bench (e));
    // without taskset the counts are the same, the /proc timings are not
    const beam = backend.pid?.();
    if (os.cpus().length >= 2 && beam !== undefined) {
      pin(pid, 0);
      pin(beam, 1);
      pin(process.pid, 1);
    }
    const phase = async (list: string[], tag: string): Promise<void> => {
      if (counted) execFileSync('callgrind_control', ['-z', String(pid)], { stdio: 'ignore' });
      mark(`${tag} starts`);
      const c0 = cpuOf(pid);
      const t0 = Date.now();
      // under callgrind a login's own presence can take seconds to come back: waited for, so that the
      // phase's count holds all of its work
      const sessions = await pool(list, concurrency, (u) => loginOnce(port, u, tag, 600_000));
      const wall = (Date.now() - t0) / 1000;
      const cpu = cpuOf(pid) - c0;
      const per = (v: number) => (v / list.length / 1e6).toFixed(3);
      let line = `${tag.padEnd(6)} ${list.length} logins, ${(list.length / wall).toFixed(0)}/s, CPU ${((cpu * 1000) / list.length).toFixed(2)} ms per login`;
      if (counted) {
        const th = counters(pid);
        const main = th.get(1) ?? 0;
        const other = [...th].reduce((a, [n, v]) => a + (n === 1 ? 0 : v), 0);
        line += `; instructions per login: main thread ${per(main)} M, other threads ${per(other)} M, in all ${per(main + other)} M`;
      }
      process.stdout.write(line + '\n');
      mark(`${tag} done`);
      // the closes (an unavailable publish and a retraction each) are not the next phase's to count
      await closeAll(sessions);
      await quiet([pid]);
    };
    if (warmup > 0) await phase(warmUsers, 'warm');
    await phase(users, 'first');
    await phase(users, 'second');
  } finally {
    proc.kill('SIGTERM');
    await backend.stop();
  }
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    process.stderr.write(`login-count: ${err instanceof Error ? err.stack : String(err)}\n`);
    process.exit(1);
  },
);
