// Parser micro-benchmark: the same synthetic stream (bench/corpus.ts: a stream header, then typical
// stanzas as UTF-8 in 64 KiB Buffers) through each candidate XML stream layer, counting top-level
// elements. Every variant starts from Buffers, so each pays its own decoding: StringDecoder for ltx
// and sax (needed: per-chunk toString() corrupts characters split across chunks), the UTF-8 check +
// latin1 view + control-character check of XmlStream for the project's tokenizer.
// Each variant runs in a fresh process (no JIT or heap state shared between them); the figure is the
// median over measured rounds (after a warm-up of a few CPU-seconds) of stanzas / (user+system CPU s).
//
//   node dist/bench/parsers.js                 all variants, table on stdout
//   node dist/bench/parsers.js --variant NAME  one variant, a JSON line on stdout (used by the above)
import { execFile } from 'node:child_process';
import { EventEmitter } from 'node:events';
import type { Socket } from 'node:net';
import { StringDecoder } from 'node:string_decoder';
import { fileURLToPath } from 'node:url';
import { Element } from 'ltx';
import SaxLtxModule from 'ltx/src/parsers/ltx.js';
import sax from 'sax';
import { XmlStream } from '../src/stream/connection.js';
import { TcpFraming } from '../src/stream/framing-tcp.js';
import type { Stanza } from '../src/stream/stanza.js';
import { Lane, laneRoutes, type LaneHost } from '../src/session/pipeline.js';
import { defaultRules } from '../src/rules/index.js';
import type { RuleContext } from '../src/rules/types.js';
import { silentLogger } from '../src/log.js';
import { parseJid } from '../src/xmpp/jid.js';
import { STREAM_HEADER, corpus, type Corpus } from './corpus.js';
import { QUICK, cpuSeconds, envNumber, median } from './common.js';

export interface VariantInfo {
  name: string;
  label: string;
}

export const VARIANTS: VariantInfo[] = [
  { name: 'ltx-sax', label: "ltx's tokenizer (SaxLtx events only)" },
  { name: 'ltx-build', label: "ltx's tokenizer + ltx Elements per stanza" },
  { name: 'ltx-build-serialize', label: 'ltx parse + build + toString (plain re-serializing relay)' },
  { name: 'sax', label: 'sax strict, xmlns off (events only)' },
  { name: 'sax-xmlns', label: 'sax strict, xmlns on (events only)' },
  { name: 'sax-build-serialize', label: 'sax strict + ltx Elements + toString (plain re-serializing relay)' },
  { name: 'tokenizer', label: 'project Tokenizer via XmlStream (scan only)' },
  { name: 'tokenizer-el', label: 'project Tokenizer + .el for every stanza' },
  { name: 'tokenizer-el-serialize', label: 'project Tokenizer + .el + toString for every stanza' },
  { name: 'proxy-path', label: 'bound-session path in memory: XmlStream + rule Lane + batched write (no sockets)' },
];

export interface VariantResult {
  name: string;
  label: string;
  stanzasPerCpuSecond: number;
  /** each measured round's figure */
  rounds: number[];
  stanzasPerRound: number;
  bytesPerRound: number;
}

/** A variant: a fresh parser fed the whole corpus; returns the number of top-level elements it saw. */
type Runner = (c: Corpus, header: Buffer) => number;

/** ltx's own tokenizer (the default parser behind ltx's Parser); its typings describe the CommonJS build */
const SaxLtx = SaxLtxModule as unknown as new () => EventEmitter & { write(s: string): void };

function ltxSax(build: boolean, serialize: boolean): Runner {
  return (c, header) => {
    const p = new SaxLtx();
    const dec = new StringDecoder('utf8');
    let depth = 0;
    let count = 0;
    let cur: Element | undefined;
    let out = 0;
    p.on('startElement', (name: string, attrs: Record<string, string>) => {
      if (build && depth >= 1) {
        const el = new Element(name, attrs);
        cur = cur ? cur.cnode(el) : el;
      }
      depth++;
    });
    p.on('endElement', () => {
      depth--;
      if (depth === 1) {
        count++;
        if (serialize) out += cur!.toString().length;
        cur = undefined;
      } else if (build && cur) {
        cur = cur.parent ?? cur;
      }
    });
    if (build) p.on('text', (t: string) => cur?.t(t));
    p.write(dec.write(header));
    for (const chunk of c.chunks) p.write(dec.write(chunk));
    if (serialize && out === 0) throw new Error('nothing serialized');
    return count;
  };
}

function saxRunner(xmlns: boolean, build = false): Runner {
  return (c, header) => {
    const p = sax.parser(true, { xmlns });
    const dec = new StringDecoder('utf8');
    let depth = 0;
    let count = 0;
    let cur: Element | undefined;
    let out = 0;
    p.onopentag = (tag) => {
      if (build && depth >= 1) {
        const el = new Element(tag.name, tag.attributes as Record<string, string>);
        cur = cur ? cur.cnode(el) : el;
      }
      depth++;
    };
    p.onclosetag = () => {
      depth--;
      if (depth === 1) {
        count++;
        if (build) out += cur!.toString().length;
        cur = undefined;
      } else if (build && cur) {
        cur = cur.parent ?? cur;
      }
    };
    if (build) p.ontext = (t) => void cur?.t(t);
    p.onerror = (e) => {
      throw e;
    };
    p.write(dec.write(header));
    for (const chunk of c.chunks) p.write(dec.write(chunk));
    if (build && out === 0) throw new Error('nothing serialized');
    return count;
  };
}

/** Enough of a net.Socket for XmlStream: 'data' is emitted by hand, writes are turned into bytes and counted. */
export class FakeSocket extends EventEmitter {
  written = 0;
  write(data: string, enc: BufferEncoding): boolean {
    this.written += Buffer.from(data, enc).length; // what socket.write(string) does before the syscall
    return true;
  }
  pause(): void {}
  resume(): void {}
  end(): void {}
  destroy(): void {}
}

export const LIMITS = { maxSize: 262144, maxDepth: 64 };

function tokenizerRunner(el: boolean, serialize: boolean): Runner {
  return (c, header) => {
    const sock = new FakeSocket();
    let count = 0;
    let out = 0;
    new XmlStream(new TcpFraming(sock as unknown as Socket, LIMITS), {
      onStreamStart: () => undefined,
      onElement: (s: Stanza) => {
        count++;
        if (el) {
          const e = s.el;
          if (serialize) out += e.toString().length;
        }
      },
      onStreamEnd: () => undefined,
      onViolation: (err) => {
        throw err;
      },
      onClose: () => undefined,
    });
    sock.emit('data', header);
    for (const chunk of c.chunks) sock.emit('data', chunk);
    if (serialize && out === 0) throw new Error('nothing serialized');
    return count;
  };
}

/** A bound session's rule context whose backend never answers (no rule's onBound has run). */
export function boundContext(full: string): RuleContext {
  const jid = parseJid(full)!;
  const noop = (): void => undefined;
  return {
    jid,
    bare: jid.bare().toString(),
    domain: jid.domain,
    sessionId: 'bench',
    log: silentLogger,
    state: new Map(),
    toClient: noop,
    toBackend: noop,
    request: () => Promise.reject(new Error('no backend in this benchmark')),
    endSession: noop,
  };
}

/**
 * What a bound session does with a client stanza, minus the sockets: XmlStream (UTF-8 check, tokenizer,
 * Stanza), the session's bound dispatch (isStanza -> lane), the default rule table, forward of the raw
 * bytes into the other leg's XmlStream, one batched write per tick. Asynchronous (the batch flushes on
 * nextTick), so each chunk is fed from its own macrotask, as socket reads are.
 */
async function proxyPath(c: Corpus, header: Buffer): Promise<number> {
  const clientSock = new FakeSocket();
  const backendSock = new FakeSocket();
  const noop = () => undefined;
  const backend = new XmlStream(new TcpFraming(backendSock as unknown as Socket, LIMITS), {
    onStreamStart: noop, onElement: noop, onStreamEnd: noop, onViolation: noop, onClose: noop,
  });
  const ctx = boundContext('juliet@capulet.lit/balcony');
  let count = 0;
  const host: LaneHost = {
    laneForward: (_from, s) => {
      count++;
      backend.sendRaw(s.raw);
    },
    laneFailed: (_from, _s, err) => {
      throw err;
    },
    laneBusy: noop,
  };
  const lane = new Lane(laneRoutes(defaultRules(), 'client'), ctx, host);
  new XmlStream(new TcpFraming(clientSock as unknown as Socket, LIMITS), {
    onStreamStart: noop,
    onElement: (s) => {
      if (s.isStanza) lane.push(s);
    },
    onStreamEnd: noop,
    onViolation: (err) => {
      throw err;
    },
    onClose: noop,
  });
  clientSock.emit('data', header);
  for (const chunk of c.chunks) {
    clientSock.emit('data', chunk);
    await new Promise<void>((resolve) => setImmediate(resolve));
  }
  if (backendSock.written !== c.bytes) throw new Error(`proxy-path forwarded ${backendSock.written} of ${c.bytes} bytes`);
  return count;
}

function runnerOf(name: string): (c: Corpus, header: Buffer) => number | Promise<number> {
  switch (name) {
    case 'ltx-sax': return ltxSax(false, false);
    case 'ltx-build': return ltxSax(true, false);
    case 'ltx-build-serialize': return ltxSax(true, true);
    case 'sax': return saxRunner(false);
    case 'sax-xmlns': return saxRunner(true);
    case 'sax-build-serialize': return saxRunner(false, true);
    case 'tokenizer': return tokenizerRunner(false, false);
    case 'tokenizer-el': return tokenizerRunner(true, false);
    case 'tokenizer-el-serialize': return tokenizerRunner(true, true);
    case 'proxy-path': return proxyPath;
    default: throw new Error(`unknown variant ${name}`);
  }
}

export async function runVariant(name: string, stanzas: number, warmupSeconds: number, rounds: number): Promise<VariantResult> {
  const info = VARIANTS.find((v) => v.name === name);
  if (!info) throw new Error(`unknown variant ${name}`);
  const c = corpus(stanzas);
  const header = Buffer.from(STREAM_HEADER, 'utf8');
  const run = runnerOf(name);
  const once = async (): Promise<number> => {
    const t0 = process.cpuUsage();
    const n = await run(c, header);
    const cpu = cpuSeconds(process.cpuUsage(t0));
    if (n !== stanzas) throw new Error(`${name}: saw ${n} stanzas, expected ${stanzas}`);
    return n / cpu;
  };
  // warm-up by CPU time, not rounds: the figures of the first second or two are far from steady
  // (optimizing compiler, heap sizing)
  const w0 = process.cpuUsage();
  for (let r = 0; r < 3 || cpuSeconds(process.cpuUsage(w0)) < warmupSeconds; r++) await once();
  const figures: number[] = [];
  for (let r = 0; r < rounds; r++) figures.push(await once());
  return { name, label: info.label, stanzasPerCpuSecond: median(figures), rounds: figures, stanzasPerRound: stanzas, bytesPerRound: c.bytes };
}

/**
 * Every variant, each in a fresh `node` process, in `passes` passes (alternately forwards and
 * backwards through the list); each variant's figure is its best pass: on a shared machine other
 * processes only ever make a pass slower (cache and memory-bus contention inflate CPU time).
 */
export async function runParsers(opts: { stanzas?: number; /** CPU seconds */ warmup?: number; rounds?: number; passes?: number; log?: (s: string) => void } = {}): Promise<VariantResult[]> {
  const stanzas = opts.stanzas ?? envNumber('BENCH_PARSER_STANZAS', QUICK ? 25_000 : 50_000);
  const warmup = opts.warmup ?? (QUICK ? 1 : 1.5);
  const rounds = opts.rounds ?? (QUICK ? 3 : 5);
  const passes = opts.passes ?? envNumber('BENCH_PARSER_PASSES', QUICK ? 1 : 2);
  const best = new Map<string, VariantResult>();
  const script = fileURLToPath(import.meta.url);
  for (let pass = 0; pass < passes; pass++) {
    const order = pass % 2 === 0 ? VARIANTS : [...VARIANTS].reverse();
    for (const v of order) {
      const stdout = await new Promise<string>((resolve, reject) => {
        execFile(process.execPath, [script, '--variant', v.name, '--stanzas', String(stanzas), '--warmup', String(warmup), '--rounds', String(rounds)], { maxBuffer: 1 << 20 }, (err, so, se) => {
          if (err) reject(new Error(`parser variant ${v.name} failed: ${err.message}\n${se}`));
          else resolve(so);
        });
      });
      const r = JSON.parse(stdout.trim().split('\n').pop()!) as VariantResult;
      opts.log?.(`  pass ${pass + 1} ${v.name.padEnd(24)} ${fmtK(r.stanzasPerCpuSecond)} stanzas/CPU-s`);
      const prev = best.get(v.name);
      if (!prev || r.stanzasPerCpuSecond > prev.stanzasPerCpuSecond) best.set(v.name, r);
    }
  }
  return VARIANTS.map((v) => best.get(v.name)!);
}

export function fmtK(n: number): string {
  if (n >= 1e6) return `${(n / 1e6).toFixed(2)} M`;
  if (n >= 1e3) return `${(n / 1e3).toFixed(0)} k`;
  return n.toFixed(0);
}

export function parserTable(results: VariantResult[]): string {
  const base = results.find((r) => r.name === 'ltx-sax')?.stanzasPerCpuSecond;
  const lines = [`| variant | what | stanzas/CPU-s | vs ltx tokenizer |`, `|---|---|---:|---:|`];
  for (const r of results) {
    lines.push(`| ${r.name} | ${r.label} | ${fmtK(r.stanzasPerCpuSecond)} | ${base ? (r.stanzasPerCpuSecond / base).toFixed(2) : ''} |`);
  }
  return lines.join('\n');
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const args = process.argv.slice(2);
  const arg = (k: string) => {
    const i = args.indexOf(k);
    return i === -1 ? undefined : args[i + 1];
  };
  const variant = arg('--variant');
  if (variant) {
    const r = await runVariant(variant, Number(arg('--stanzas') ?? 50_000), Number(arg('--warmup') ?? 2.5), Number(arg('--rounds') ?? 5));
    process.stdout.write(JSON.stringify(r) + '\n');
  } else {
    const c = corpus(1000);
    console.log(`parser micro-benchmark: ${c.bytes / 1000} bytes per stanza on average, 64 KiB chunks`);
    const results = await runParsers({ log: (s) => console.log(s) });
    console.log('\n' + parserTable(results));
  }
}
