// (a) Synthetic stream: one logged-in session pushes the corpus (bench/corpus.ts) in 64 KiB writes
// through the middlebox (the proxy, or the raw relay, each in its own process) into the stub backend
// of this process, which once the client's start marker has come through only counts bytes and pass
// markers (the in-process sink). The figure is stanzas relayed per CPU-second of the middlebox
// process over whole passes of the corpus, from the first byte written to the pass's marker arriving
// at the sink.
import { once } from 'node:events';
import type net from 'node:net';
import { Child, QUICK, connect, cpuSeconds, envNumber, login, median, startChild, syscallsPer } from './common.js';
import { corpus, type Corpus } from './corpus.js';
import type { MiddleboxRun } from './common.js';
import { marker, startStub, type Stub } from './stub-backend.js';

export interface SyntheticRun extends MiddleboxRun {
  stanzas: number;
  bytes: number;
}

export interface SyntheticMode {
  /** median of the rounds */
  stanzasPerCpuSecond: number;
  runs: SyntheticRun[];
}

export interface SyntheticResult {
  stanzaBytesAvg: number;
  chunkBytes: number;
  proxy: SyntheticMode;
  raw: SyntheticMode;
  ratio: number;
}

async function writeAll(sock: net.Socket, c: Corpus): Promise<void> {
  for (const chunk of c.chunks) {
    if (!sock.write(chunk)) await once(sock, 'drain');
  }
}

interface Path {
  mode: 'proxy' | 'raw';
  child: Child;
  sock: net.Socket;
}

/** marker numbers, unique across connections (the stub waits for the highest seen) */
let marks = 0;

async function openPath(mode: 'proxy' | 'raw', stub: Stub): Promise<Path> {
  const child = startChild(`synthetic-${mode}`, 'middlebox.js', [mode, '127.0.0.1', String(stub.port), 'info']);
  const { port } = (await child.ready()) as { port: number };
  const sock = await connect(port);
  await login(sock, 'capulet.lit', 'juliet', 'secret', `synthetic-${mode}`);
  sock.on('data', () => undefined); // nothing comes back once the sink mode is on
  sock.on('error', () => undefined);
  // the first marker turns the stub into the sink (it has answered the proxy's own login requests)
  const first = ++marks;
  sock.write(marker(first));
  await stub.waitMark(first);
  return { mode, child, sock };
}

/**
 * Push whole passes of the corpus until `seconds` of wall time have gone, each followed by a marker
 * stanza; measure the middlebox from the first byte written to the last marker seen at the sink.
 */
async function measure(p: Path, stub: Stub, c: Corpus, seconds: number): Promise<SyntheticRun> {
  const b0 = stub.sinkBytes();
  const s0 = await p.child.stats();
  const t0 = process.hrtime.bigint();
  let passes = 0;
  do {
    await writeAll(p.sock, c);
    p.sock.write(marker(++marks));
    passes++;
  } while (Number(process.hrtime.bigint() - t0) / 1e9 < seconds);
  await stub.waitMark(marks);
  const wall = Number(process.hrtime.bigint() - t0) / 1e9;
  const s1 = await p.child.stats();
  const got = stub.sinkBytes() - b0;
  const sent = passes * (c.bytes + marker(marks).length);
  if (got < sent - passes * 8) throw new Error(`${p.mode}: sink got ${got} bytes, expected ${sent}`);
  const cpu = cpuSeconds(s1.cpu) - cpuSeconds(s0.cpu);
  const stanzas = passes * (c.stanzas + 1);
  return {
    stanzas, bytes: got, cpuSeconds: cpu, systemSeconds: (s1.cpu.system - s0.cpu.system) / 1e6, wallSeconds: wall,
    stanzasPerCpuSecond: stanzas / cpu, stanzasPerSecond: stanzas / wall,
    readsPerStanza: syscallsPer(s0, s1, stanzas).reads,
    writesPerStanza: syscallsPer(s0, s1, stanzas).writes,
  };
}

export async function runSynthetic(log: (s: string) => void): Promise<SyntheticResult> {
  const seconds = envNumber('BENCH_SYNTHETIC_SECONDS', QUICK ? 1 : 2);
  const rounds = envNumber('BENCH_SYNTHETIC_ROUNDS', QUICK ? 3 : 5);
  const writeSize = envNumber('BENCH_SYNTHETIC_WRITE', 64 * 1024);
  const c = corpus(50_000, writeSize);
  const stub = await startStub();
  const paths: Path[] = [];
  try {
    paths.push(await openPath('raw', stub), await openPath('proxy', stub));
    // warm-up: JIT, socket buffers
    for (const p of paths) await measure(p, stub, c, QUICK ? 0.5 : 1.5);
    const runs: Record<'proxy' | 'raw', SyntheticRun[]> = { proxy: [], raw: [] };
    for (let r = 0; r < rounds; r++) {
      for (const p of paths) {
        const run = await measure(p, stub, c, seconds);
        runs[p.mode].push(run);
        log(`  round ${r + 1} ${p.mode.padEnd(5)}: ${(run.stanzasPerCpuSecond / 1e3).toFixed(0)} k stanzas/CPU-s (${run.stanzas} stanzas, ${run.cpuSeconds.toFixed(2)} CPU-s of which ${run.systemSeconds.toFixed(2)} system, ${(run.stanzasPerSecond / 1e3).toFixed(0)} k/s wall, ${(c.bytes / c.stanzas / run.readsPerStanza / 1024).toFixed(1)} KiB per read, ${(c.bytes / c.stanzas / run.writesPerStanza / 1024).toFixed(1)} KiB per write)`);
      }
    }
    const proxy = { stanzasPerCpuSecond: median(runs.proxy.map((r) => r.stanzasPerCpuSecond)), runs: runs.proxy };
    const raw = { stanzasPerCpuSecond: median(runs.raw.map((r) => r.stanzasPerCpuSecond)), runs: runs.raw };
    return { stanzaBytesAvg: c.bytes / c.stanzas, chunkBytes: writeSize, proxy, raw, ratio: proxy.stanzasPerCpuSecond / raw.stanzasPerCpuSecond };
  } finally {
    for (const p of paths) {
      p.sock.destroy();
      await p.child.stop();
    }
    await stub.close();
  }
}
