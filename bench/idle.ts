// (c) Memory per idle session. A stub backend (own process, bench/stub-backend.ts) and a client
// process (bench/idle-clients.ts) around a fresh middlebox process for every point (the proxy, or the
// raw relay, run with --expose-gc). The client opens a warm-up batch of sessions that stay open
// (JIT, pools, heap shape), the middlebox is garbage collected and its RSS read; then N more sessions
// (login + bind, then silent), GC, RSS again. Per session = RSS delta / N. Kernel socket buffers are
// not in RSS and not counted. BENCH_HEAP_SNAPSHOT=1 writes heap snapshots before and after to
// bench/results/ (diagnostics: the RSS figures of such a run are meaningless).
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { Child, QUICK, RESULTS, envNumber, hardFdLimit, sleep, startChild, type Stats } from './common.js';

/**
 * The young generation pinned at its default maximum (16 MiB per semi-space): otherwise it grows from
 * 1 MiB to 16 MiB during whichever login burst first needs it, a one-off of up to 32 MiB of RSS that
 * would land in the measured delta or not depending on timing. Pinned, it is in the baseline.
 */
const YOUNG = ['--min-semi-space-size=16', '--max-semi-space-size=16'];

export interface IdlePoint {
  sessions: number;
  rssBefore: number;
  rssAfter: number;
  /** RSS delta per session, bytes */
  rssPerSession: number;
  heapUsedPerSession: number;
  /** V8 heap committed (pages), per session */
  heapTotalPerSession: number;
  externalPerSession: number;
  loginSeconds: number;
}

export interface IdleResult {
  warmup: number;
  proxy: IdlePoint[];
  raw: IdlePoint[];
}

async function point(mode: 'proxy' | 'raw', stubPort: number, clients: Child, warmup: number, n: number, log: (s: string) => void): Promise<IdlePoint> {
  const mb = startChild(`idle-${mode}-${n}`, 'middlebox.js', [mode, '127.0.0.1', String(stubPort), 'info'], { nodeArgs: ['--expose-gc', ...YOUNG] });
  try {
    const { port } = (await mb.ready()) as { port: number };
    // warm-up: sessions that stay open (JIT, pools, heap shape; never sessions closed again: their
    // freed memory would be reused by the measured ones), then garbage enough to have touched the
    // whole (pinned) young generation
    await clients.call('open', { port, count: warmup, concurrency: 100 });
    await mb.call('churn');
    await sleep(300);
    const before = await mb.call<Stats>('gc');
    if (process.env.BENCH_HEAP_SNAPSHOT === '1') await mb.call('snapshot', { path: join(RESULTS, `heap-${mode}-${n}-before.heapsnapshot`) });
    const opened = await clients.call<{ ms: number }>('open', { port, count: n, concurrency: 100 }, 300_000);
    await sleep(500);
    const after = await mb.call<Stats>('gc');
    if (process.env.BENCH_HEAP_SNAPSHOT === '1') await mb.call('snapshot', { path: join(RESULTS, `heap-${mode}-${n}-after.heapsnapshot`) });
    if (after.sessions !== warmup + n) throw new Error(`${mode}: ${after.sessions} sessions open, expected ${warmup + n}`);
    const p: IdlePoint = {
      sessions: n,
      rssBefore: before.mem.rss,
      rssAfter: after.mem.rss,
      rssPerSession: (after.mem.rss - before.mem.rss) / n,
      heapUsedPerSession: (after.mem.heapUsed - before.mem.heapUsed) / n,
      heapTotalPerSession: (after.mem.heapTotal - before.mem.heapTotal) / n,
      externalPerSession: (after.mem.external - before.mem.external) / n,
      loginSeconds: opened.ms / 1000,
    };
    if (process.env.BENCH_DEBUG) {
      for (const [k, v] of Object.entries(after.spaces)) {
        const b = before.spaces[k]!;
        log(`    ${k.padEnd(24)} size ${((v.size - b.size) / 2 ** 20).toFixed(2)} MiB, used ${((v.used - b.used) / 2 ** 20).toFixed(2)} MiB`);
      }
      log(`    heapTotal ${((after.mem.heapTotal - before.mem.heapTotal) / 2 ** 20).toFixed(2)} MiB, heapUsed ${((after.mem.heapUsed - before.mem.heapUsed) / 2 ** 20).toFixed(2)} MiB, rss ${((after.mem.rss - before.mem.rss) / 2 ** 20).toFixed(2)} MiB`);
    }
    log(`  ${mode.padEnd(5)} ${String(n).padStart(5)} sessions: ${(p.rssPerSession / 1024).toFixed(2)} KiB RSS/session (JS heap used ${(p.heapUsedPerSession / 1024).toFixed(2)} KiB, committed ${(p.heapTotalPerSession / 1024).toFixed(2)} KiB; RSS ${(p.rssBefore / 2 ** 20).toFixed(1)} -> ${(p.rssAfter / 2 ** 20).toFixed(1)} MiB; logins ${p.loginSeconds.toFixed(1)} s)`);
    return p;
  } finally {
    await clients.call('closeAll');
    await mb.stop();
    await sleep(300);
  }
}

export async function runIdle(log: (s: string) => void): Promise<IdleResult> {
  const counts = (process.env.BENCH_IDLE_SESSIONS ?? (QUICK ? '1000,2000' : '1000,5000')).split(',').map(Number);
  const warmup = envNumber('BENCH_IDLE_WARMUP', 200);
  const limit = hardFdLimit();
  const need = 2 * (warmup + Math.max(...counts)) + 100; // the middlebox holds two sockets per session
  if (need > limit) throw new Error(`(c) needs ${need} open files per process, the hard limit is ${limit}: raise it (ulimit -Hn) or set BENCH_IDLE_SESSIONS lower`);
  mkdirSync(RESULTS, { recursive: true });
  const stub = startChild('idle-stub', 'stub-backend.js', []);
  const clients = startChild('idle-clients', 'idle-clients.js', []);
  try {
    const { port: stubPort } = (await stub.ready()) as { port: number };
    await clients.ready();
    const result: IdleResult = { warmup, proxy: [], raw: [] };
    for (const n of counts) {
      for (const mode of ['proxy', 'raw'] as const) result[mode].push(await point(mode, stubPort, clients, warmup, n, log));
    }
    return result;
  } finally {
    await clients.stop();
    await stub.stop();
  }
}
