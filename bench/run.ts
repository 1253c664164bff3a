// `npm run bench`: the proxy's benchmark (not a test). Every figure is measured against a raw Node
// byte relay in the same run; see docs/bench.md for the method and docs/parser.md for the parsers.
//
// Sections (all by default; BENCH_ONLY=parsers,synthetic,ejabberd,idle picks some):
//   parsers    parser micro-benchmark (ltx, sax, the project's tokenizer)
//   synthetic  (a) pass-through stanzas per CPU-second, big reads into an in-process sink
//   ejabberd   (b) relayed stanzas per CPU-second with ejabberd in the loop, added round-trip latency
//   idle       (c) RSS per idle proxied session at 1k and 5k sessions
//   chat       (d) §6 chat round trip vs a legacy ejabberd; §5 MUC fan-out over two proxy instances
//   users      (e) what users see: the CLI proxy (upstream TLS on and off) vs raw relays, pinned CPUs,
//              many accounts: logins, idle RSS, relayed stanzas, added latency (bench/users.ts);
//              and two proxy instances sharing the load vs one (a table of its own)
// BENCH_QUICK=1 shortens everything (a smoke run, noisier figures). BENCH_STRICT=1 exits 1 when a
// target is missed. Sizes, durations and diagnostics: see docs/bench.md.
// Results: a table on stdout, JSON in bench/results/latest.json.
import { mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { QUICK, RESULTS, median } from './common.js';
import { corpus } from './corpus.js';
import { runChat, type ChatResult } from './chat.js';
import { runEjabberd, type EjabberdResult } from './ejabberd.js';
import { runIdle, type IdleResult } from './idle.js';
import { fmtK, parserTable, runParsers, type VariantResult } from './parsers.js';
import { runSynthetic, type SyntheticResult } from './synthetic.js';
import { runUsers, type BoxResult, type PairedResult, type UsersResult } from './users.js';

const SECTIONS = ['parsers', 'synthetic', 'ejabberd', 'idle', 'chat', 'users'] as const;
type Section = (typeof SECTIONS)[number];

const only = process.env.BENCH_ONLY?.split(',').map((s) => s.trim()).filter(Boolean);
for (const s of only ?? []) if (!SECTIONS.includes(s as Section)) throw new Error(`BENCH_ONLY: unknown section '${s}' (${SECTIONS.join(', ')})`);
const enabled = (s: Section) => !only || only.includes(s);

interface Row {
  figure: string;
  proxy: string;
  raw: string;
  ratio: string;
  target: string;
  result: 'PASS' | 'FAIL' | '';
}

const log = (s: string) => console.log(s);
const kib = (b: number) => `${(b / 1024).toFixed(2)} KiB`;
const us = (v: number) => `${v >= 0 ? '+' : ''}${v >= 1000 || v <= -1000 ? `${(v / 1000).toFixed(2)} ms` : `${v.toFixed(0)} µs`}`;

function table(rows: Row[], names: Partial<Row> = {}): string {
  const head: Row = { figure: 'figure', proxy: 'proxy', raw: 'raw relay', ratio: 'proxy/raw', target: 'target', result: '', ...names };
  const cols = ['figure', 'proxy', 'raw', 'ratio', 'target', 'result'] as const;
  const width = cols.map((c) => Math.max(...[head, ...rows].map((r) => (c === 'result' && r === head ? 'result' : r[c]).length)));
  const line = (r: Row, isHead = false) =>
    '| ' + cols.map((c, i) => (isHead && c === 'result' ? 'result' : r[c]).padEnd(width[i]!)).join(' | ') + ' |';
  return [line(head, true), '|' + width.map((w) => '-'.repeat(w + 2)).join('|') + '|', ...rows.map((r) => line(r))].join('\n');
}

/**
 * (e) rows: the proxy with upstream plaintext against the raw relay, and with upstream TLS (its
 * default) against the relay terminating the same TLS leg. Targets (issue 10) apply to plaintext.
 * Scaling: two plaintext proxy instances against one, as their own table (x2/x1, no targets).
 */
function usersRows(u: UsersResult): { rows: Row[]; scaling: Row[] } {
  return {
    rows: [...pairRows('upstream plaintext', u.boxes['proxy-off'], u.boxes.raw, true, u.paired), ...pairRows('upstream TLS', u.boxes['proxy-tls'], u.boxes.rawtls, false)],
    scaling: pairRows('upstream plaintext, 2 instances vs 1', u.boxes['proxy-off-x2'], u.boxes['proxy-off'], false),
  };
}

/**
 * (e) rows of `p` against `r`: their figures and p/r. With `paired` (both measured in turns, the
 * same minutes), the relay and latency targets are judged on those rows instead of on the boxes'
 * own phases, minutes apart.
 */
function pairRows(leg: string, p: BoxResult | undefined, r: BoxResult | undefined, targets: boolean, paired?: PairedResult): Row[] {
  if (!p || !r) return [];
  const out: Row[] = [];
  const ms = (v: number) => `${(v / 1e3).toFixed(2)} ms`;
  const row = (figure: string, pv: number, rv: number, show: (v: number) => string, target: string, pass: ((ratio: number) => boolean) | undefined) => {
    const ratio = pv / rv;
    out.push({ figure: `(e) ${figure}, ${leg}`, proxy: show(pv), raw: show(rv), ratio: ratio.toFixed(2), target: targets && pass ? target : '', result: targets && pass ? (pass(ratio) ? 'PASS' : 'FAIL') : '' });
  };
  const perS = (v: number) => `${v.toFixed(0)}/s`;
  // with logins in turns, those rows judge the login targets (as the relay's, below)
  const inTurns = paired?.logins;
  const ratePass = (x: number) => x >= 0.5;
  const cpuPass = (x: number) => x <= 2;
  if (p.fresh && r.fresh) {
    // a restarted instance: its first logins, while V8 compiles the login code (reported, not judged)
    row(`logins/s, a fresh process's first ${p.fresh.logins} logins`, p.fresh.perSecond, r.fresh.perSecond, perS, '', undefined);
    row(`middlebox CPU per login, a fresh process's first ${p.fresh.logins} logins`, p.fresh.cpuPerLoginUs, r.fresh.cpuPerLoginUs, ms, '', undefined);
  }
  row('logins/s, first login', p.first.perSecond, r.first.perSecond, perS, '>= 0.5 of raw', inTurns ? undefined : ratePass);
  row('logins/s, second login', p.second.perSecond, r.second.perSecond, perS, '>= 0.5 of raw', inTurns ? undefined : ratePass);
  row('connect -> initial presence answered p50, first login', p.first.presence.p50us, r.first.presence.p50us, ms, '', undefined);
  row('connect -> initial presence answered p99, first login', p.first.presence.p99us, r.first.presence.p99us, ms, '', undefined);
  row('connect -> bound p50, second login', p.second.bound.p50us, r.second.bound.p50us, ms, '', undefined);
  row('middlebox CPU per login, first login', p.first.cpuPerLoginUs, r.first.cpuPerLoginUs, ms, '<= 2x raw', inTurns ? undefined : cpuPass);
  row('middlebox CPU per login, second login', p.second.cpuPerLoginUs, r.second.cpuPerLoginUs, ms, '<= 2x raw', inTurns ? undefined : cpuPass);
  row('ejabberd CPU per login, first login', p.first.backendCpuPerLoginUs, r.first.backendCpuPerLoginUs, ms, '', undefined);
  for (const i of p.idle) {
    const ri = r.idle.find((x) => x.sessions === i.sessions);
    if (ri) row(`RSS per idle session @${i.sessions}`, i.rssPerSessionKiB, ri.rssPerSessionKiB, (v) => `${v.toFixed(1)} KiB`, '<= 1.5x raw', (x) => x <= 1.5);
  }
  const relayPass = (x: number) => x >= 0.9;
  row('relayed stanzas per CPU-second (4 x 64 in flight)', p.relay.stanzasPerCpuSecond, r.relay.stanzasPerCpuSecond, (v) => `${(v / 1e3).toFixed(1)} k`, '>= 0.9 of raw', paired ? undefined : relayPass);
  const latencyRow = (figure: string, pv: number, rv: number, judged: boolean) => {
    const added = pv - rv;
    out.push({ figure: `(e) ${figure}, ${leg}`, proxy: us(pv), raw: us(rv), ratio: `${us(added)}`, target: targets && judged ? '<= raw + 30 µs' : '', result: targets && judged ? (added <= 30 ? 'PASS' : 'FAIL') : '' });
  };
  latencyRow('added round trip p50 over direct', p.latency.addedP50us, r.latency.addedP50us, !paired);
  if (paired) {
    const n = paired.rounds.length;
    out.push({
      figure: `(e) relayed stanzas per CPU-second, ${n} rounds in turns (median ratio), ${leg}`,
      proxy: `${(median(paired.rounds.map((x) => x.proxy)) / 1e3).toFixed(1)} k`,
      raw: `${(median(paired.rounds.map((x) => x.raw)) / 1e3).toFixed(1)} k`,
      ratio: paired.relayRatio.toFixed(2),
      target: targets ? '>= 0.9 of raw' : '',
      result: targets ? (relayPass(paired.relayRatio) ? 'PASS' : 'FAIL') : '',
    });
    latencyRow('added round trip p50 over direct, in turns', paired.latency.proxyAddedP50us, paired.latency.rawAddedP50us, true);
    if (inTurns) {
      const rounds = inTurns.rounds;
      const turnRow = (figure: string, get: (x: (typeof rounds)[number]) => { raw: number; proxy: number }, show: (v: number) => string, ratio: number, target: string, pass: ((x: number) => boolean) | undefined) =>
        out.push({
          figure: `(e) ${figure}, ${rounds.length} rounds in turns (median ratio), ${leg}`,
          proxy: show(median(rounds.map((x) => get(x).proxy))),
          raw: show(median(rounds.map((x) => get(x).raw))),
          ratio: ratio.toFixed(2),
          target: targets && pass ? target : '',
          result: targets && pass ? (pass(ratio) ? 'PASS' : 'FAIL') : '',
        });
      turnRow('logins/s, first login', (x) => ({ raw: x.first.raw.perSecond, proxy: x.first.proxy.perSecond }), perS, inTurns.firstRate, '>= 0.5 of raw', ratePass);
      turnRow('logins/s, second login', (x) => ({ raw: x.second.raw.perSecond, proxy: x.second.proxy.perSecond }), perS, inTurns.secondRate, '>= 0.5 of raw', ratePass);
      turnRow('middlebox CPU per login, first login', (x) => ({ raw: x.first.raw.cpuPerLoginUs, proxy: x.first.proxy.cpuPerLoginUs }), ms, inTurns.firstCpu, '<= 2x raw', cpuPass);
      turnRow('middlebox CPU per login, second login', (x) => ({ raw: x.second.raw.cpuPerLoginUs, proxy: x.second.proxy.cpuPerLoginUs }), ms, inTurns.secondCpu, '<= 2x raw', cpuPass);
      turnRow('ejabberd CPU per login, first login', (x) => ({ raw: x.first.raw.backendCpuPerLoginUs, proxy: x.first.proxy.backendCpuPerLoginUs }), ms, median(rounds.map((x) => x.first.proxy.backendCpuPerLoginUs / x.first.raw.backendCpuPerLoginUs)), '', undefined);
    }
  }
  // what the host took while each was measured: a ratio from phases with unequal steal is the host's
  const pct = (v: number) => `${(v * 100).toFixed(1)}%`;
  out.push({ figure: `(e) CPU time taken by the hypervisor (steal) during the box's phases, ${leg}`, proxy: pct(p.steal), raw: pct(r.steal), ratio: '', target: '', result: '' });
  if (paired) out.push({ figure: `(e) steal during the rounds in turns, ${leg}`, proxy: pct(paired.steal), raw: pct(paired.steal), ratio: '', target: '', result: '' });
  return out;
}

async function main(): Promise<void> {
  const started = new Date();
  const c = corpus(1000);
  log(`xep207-proxy benchmark — node ${process.version}, ${os.cpus().length} CPUs (${os.cpus()[0]?.model ?? '?'}), ${QUICK ? 'QUICK' : 'full'} run`);
  log(`synthetic corpus: ${(c.bytes / c.stanzas).toFixed(0)} bytes per stanza on average, 64 KiB writes\n`);

  let parsers: VariantResult[] | undefined;
  let synthetic: SyntheticResult | undefined;
  let ejabberd: EjabberdResult | undefined;
  let idle: IdleResult | undefined;
  let chat: ChatResult | undefined;
  let users: UsersResult | undefined;
  const rows: Row[] = [];
  const scaling: Row[] = [];

  if (enabled('parsers')) {
    log('parser micro-benchmark (each variant in a fresh process)');
    parsers = await runParsers({ log });
    log('');
  }
  if (enabled('synthetic')) {
    log('(a) synthetic stream, big reads, in-process sink');
    synthetic = await runSynthetic(log);
    rows.push({
      figure: '(a) synthetic pass-through, stanzas/CPU-s',
      proxy: fmtK(synthetic.proxy.stanzasPerCpuSecond),
      raw: fmtK(synthetic.raw.stanzasPerCpuSecond),
      ratio: synthetic.ratio.toFixed(3),
      target: '>= 0.05 of raw',
      result: synthetic.ratio >= 0.05 ? 'PASS' : 'FAIL',
    });
    log('');
  }
  if (enabled('ejabberd')) {
    log('(b) ejabberd in the loop (plaintext c2s, SASL PLAIN)');
    ejabberd = await runEjabberd(log);
    rows.push({
      figure: '(b) ejabberd relayed, stanzas/CPU-s',
      proxy: fmtK(ejabberd.proxy.stanzasPerCpuSecond),
      raw: fmtK(ejabberd.raw.stanzasPerCpuSecond),
      ratio: ejabberd.ratio.toFixed(3),
      target: '>= 0.7 of raw',
      result: ejabberd.ratio >= 0.7 ? 'PASS' : 'FAIL',
    });
    if (ejabberd.proxyPingOnly) {
      rows.push({
        figure: '(b) diagnostic: proxy with the ping rule only',
        proxy: fmtK(ejabberd.proxyPingOnly.stanzasPerCpuSecond),
        raw: fmtK(ejabberd.raw.stanzasPerCpuSecond),
        ratio: (ejabberd.proxyPingOnly.stanzasPerCpuSecond / ejabberd.raw.stanzasPerCpuSecond).toFixed(3),
        target: '',
        result: '',
      });
    }
    rows.push({
      figure: '(b) added RTT over direct, p50',
      proxy: us(ejabberd.added.proxy.p50us),
      raw: us(ejabberd.added.raw.p50us),
      ratio: '',
      target: `(direct p50 ${us(ejabberd.latency.direct.p50us).slice(1)})`,
      result: '',
    });
    rows.push({
      figure: '(b) added RTT over direct, p99',
      proxy: us(ejabberd.added.proxy.p99us),
      raw: us(ejabberd.added.raw.p99us),
      ratio: '',
      target: `(direct p99 ${us(ejabberd.latency.direct.p99us).slice(1)})`,
      result: '',
    });
    log('');
  }
  if (enabled('idle')) {
    log('(c) RSS per idle session (stub backend, plaintext)');
    idle = await runIdle(log);
    for (let i = 0; i < idle.proxy.length; i++) {
      const p = idle.proxy[i]!;
      const r = idle.raw[i]!;
      const is5k = p.sessions === 5000;
      rows.push({
        figure: `(c) RSS per idle session @${p.sessions >= 1000 ? `${p.sessions / 1000}k` : p.sessions}`,
        proxy: kib(p.rssPerSession),
        raw: kib(r.rssPerSession),
        ratio: (p.rssPerSession / r.rssPerSession).toFixed(2),
        target: is5k ? '<= 12 KiB (proxy)' : '',
        result: is5k ? (p.rssPerSession <= 12 * 1024 ? 'PASS' : 'FAIL') : '',
      });
    }
    log('');
  }

  if (enabled('chat')) {
    log('(d) §6 and §5 with ejabberd in the loop (plaintext c2s, SASL PLAIN)');
    chat = await runChat(log);
    rows.push({
      figure: '(d) chat round trip p50 (raw: legacy ejabberd)',
      proxy: us(chat.proxy.p50us).slice(1),
      raw: us(chat.native.p50us).slice(1),
      ratio: chat.ratio.toFixed(2),
      target: '<= 1.5x native',
      result: chat.ratio <= 1.5 ? 'PASS' : 'FAIL',
    });
    // the backend's own floors, beside the native round trip (information, no target)
    const floors: Array<[string, number, string]> = [
      ["(d) the backend's floor: 2 publishes + notifications", chat.floor.p50us, '(what pubsub costs alone)'],
      ['(d) the same, nodes configured as chat nodes', chat.chatFloor.p50us, '(whitelist, max_items max, bare JID)'],
    ];
    for (const [figure, p50us, target] of floors) {
      rows.push({ figure, proxy: us(p50us).slice(1), raw: us(chat.native.p50us).slice(1), ratio: (p50us / chat.native.p50us).toFixed(2), target, result: '' });
    }
    const first = chat.fanOut[0];
    for (const f of chat.fanOut) {
      // linear in occupants: the CPU per delivered message does not grow with the room
      const growth = first ? f.cpuUsPerDelivery / first.cpuUsPerDelivery : 1;
      rows.push({
        figure: `(d) MUC ${f.occupants} occupants: last has it p50 / CPU per delivery`,
        proxy: `${f.p50ms.toFixed(1)} ms / ${f.cpuUsPerDelivery.toFixed(0)} µs`,
        raw: '',
        ratio: f === first ? '' : `${growth.toFixed(2)}x of ${first!.occupants}`,
        target: f === first ? '' : '<= 2x per delivery',
        result: f === first ? '' : growth <= 2 ? 'PASS' : 'FAIL',
      });
    }
    log('');
  }

  if (enabled('users')) {
    log('(e) what users see: the CLI proxy vs raw relays, ejabberd in the loop, many accounts');
    users = await runUsers(log);
    const u = usersRows(users);
    rows.push(...u.rows);
    scaling.push(...u.scaling);
    log('');
  }

  if (parsers) log(parserTable(parsers) + '\n');
  if (rows.length > 0) log(table(rows));
  if (scaling.length > 0) log('\n' + table(scaling, { proxy: '2 instances', raw: '1 instance', ratio: 'x2/x1' }));

  const result = {
    date: started.toISOString(),
    seconds: (Date.now() - started.getTime()) / 1000,
    node: process.version,
    cpus: os.cpus().length,
    cpuModel: os.cpus()[0]?.model,
    loadavg: os.loadavg(),
    quick: QUICK,
    env: Object.fromEntries(Object.entries(process.env).filter(([k]) => k.startsWith('BENCH_'))),
    corpus: { bytesPerStanza: c.bytes / c.stanzas },
    table: rows,
    scalingTable: scaling,
    parsers,
    synthetic,
    ejabberd,
    idle,
    chat,
    users,
  };
  mkdirSync(RESULTS, { recursive: true });
  const file = join(RESULTS, 'latest.json');
  writeFileSync(file, JSON.stringify(result, null, 2) + '\n');
  log(`\nJSON: ${file} (${result.seconds.toFixed(0)} s)`);
  if (process.env.BENCH_STRICT === '1' && rows.some((r) => r.result === 'FAIL')) process.exitCode = 1;
}

await main();
