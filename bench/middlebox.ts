// The measured process: either the proxy (the real Proxy class, plaintext on both legs) or a raw Node
// byte relay (net.Socket pipe both ways, nothing else), listening on a free loopback port in front of
// the given upstream. The parent reads its CPU time and memory over IPC (see common.ts).
//
//   node dist/bench/middlebox.js proxy|raw <upstream-host> <upstream-port> [log-level]
//
// BENCH_PROXY_RULES=ping|none (diagnostics only): run the proxy with just the ping rule, or with no
// rule at all, instead of the default rule table, to see what the rules cost.
import { readFileSync } from 'node:fs';
import net from 'node:net';
import tls from 'node:tls';
import v8 from 'node:v8';
import { Proxy, makeConfig, createLogger, type Rule } from '../src/index.js';
import { pingRule } from '../src/rules/ping.js';
import type { Config } from '../src/config.js';
import { serveParent } from './common.js';

const [mode, host, portArg, level] = process.argv.slice(2);
const upstreamPort = Number(portArg);
if ((mode !== 'proxy' && mode !== 'raw' && mode !== 'rawtls') || !host || !upstreamPort) {
  console.error('usage: middlebox.js proxy|raw|rawtls <upstream-host> <upstream-port> [log-level]');
  process.exit(2);
}

/**
 * The raw relay: what any TCP forwarder costs in Node (pipe() handles backpressure both ways).
 * `rawtls`: the upstream leg is direct TLS (the backend's XEP-0368 port; CA from BENCH_UPSTREAM_CA,
 * name BENCH_UPSTREAM_NAME), the reference for a proxy whose backend leg is encrypted.
 */
function startRawRelay(): Promise<{ port: number; pairs: () => number }> {
  let pairs = 0;
  const ca = mode === 'rawtls' && process.env.BENCH_UPSTREAM_CA ? readFileSync(process.env.BENCH_UPSTREAM_CA) : undefined;
  const server = net.createServer({ noDelay: true }, (client) => {
    const upstream: net.Socket =
      mode === 'rawtls' ? tls.connect({ host, port: upstreamPort, servername: process.env.BENCH_UPSTREAM_NAME ?? 'capulet.lit', ...(ca ? { ca } : {}) }) : net.connect({ host, port: upstreamPort });
    upstream.setNoDelay(true);
    pairs++;
    let done = false;
    const end = () => {
      if (done) return;
      done = true;
      pairs--;
      client.destroy();
      upstream.destroy();
    };
    client.on('error', end).on('close', end);
    upstream.on('error', end).on('close', end);
    client.pipe(upstream);
    upstream.pipe(client);
  });
  return new Promise((resolve) => {
    server.listen({ host: '127.0.0.1', port: 0, backlog: 4096 }, () => {
      resolve({ port: (server.address() as net.AddressInfo).port, pairs: () => pairs });
    });
  });
}

async function startProxy(): Promise<{ port: number; pairs: () => number }> {
  const logLevel = (level ?? 'info') as Config['logLevel'];
  const config = makeConfig({
    listen: { host: '127.0.0.1', port: 0 },
    upstream: { host: host!, port: upstreamPort, tls: false },
    upstreamTls: 'off',
    logLevel,
  });
  // JSON log lines go to stdout, which the parent points at /dev/null: the cost of logging stays in
  const table = process.env.BENCH_PROXY_RULES;
  const rules: Rule[] | undefined = table === 'ping' ? [pingRule] : table === 'none' ? [] : undefined;
  const proxy = new Proxy({ config, log: createLogger({ level: logLevel, pretty: false }), ...(rules ? { rules } : {}) });
  const addr = await proxy.listen();
  return { port: addr.port, pairs: () => proxy.sessions.size };
}

const started = mode === 'proxy' ? await startProxy() : await startRawRelay();
serveParent({
  // diagnostics (BENCH_HEAP_SNAPSHOT=1 in the idle section): a heap snapshot, path returned
  snapshot: (msg) => v8.writeHeapSnapshot(msg.path as string),
}, started.pairs);
process.send!({ type: 'ready', port: started.port, pid: process.pid });
