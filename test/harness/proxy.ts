// Starts the proxy in-process for a test, in front of a harness backend.
import { join } from 'node:path';
import { Proxy } from '../../src/server.js';
import { makeConfig, type Config } from '../../src/config.js';
import { createLogger, type Logger } from '../../src/log.js';
import type { Rule } from '../../src/rules/types.js';
import { CERTS, type Backend } from './common.js';

export interface RunningProxy {
  proxy: Proxy;
  port: number;
  config: Config;
  stop(): Promise<void>;
}

/**
 * The proxy's service account in the test configs (an admin of pubsub.capulet.lit on Prosody; any
 * user may create nodes there on ejabberd): list SERVICE_USER among a backend's users
 * (`startProsody({ users: [..., SERVICE_USER] })`) and pass SERVICE_CONFIG to startTestProxy.
 */
export const SERVICE_USER: [string, string, string] = ['proxy', 'capulet.lit', 'proxy-secret'];
export const SERVICE_CONFIG = { serviceJid: 'proxy@capulet.lit', servicePassword: 'proxy-secret' } satisfies Partial<Config>;

export const TLS_FILES = { tlsCert: join(CERTS, 'cert.pem'), tlsKey: join(CERTS, 'key.pem') };

/**
 * A proxy on a free loopback port. By default it offers STARTTLS with the test certificate and talks
 * STARTTLS to the backend's main port, verifying the backend with the test CA.
 * XEP207_TEST_LOG=debug (or trace) shows its logs, unless the test passes a logger of its own.
 */
export async function startTestProxy(backend: Backend | { host: string; port: number }, overrides: Partial<Config> = {}, rules?: Rule[], log?: Logger): Promise<RunningProxy> {
  const level = (process.env.XEP207_TEST_LOG as Config['logLevel'] | undefined) ?? 'silent';
  const config = makeConfig({
    listen: { host: '127.0.0.1', port: 0 },
    upstream: { host: backend.host, port: backend.port, tls: false },
    upstreamCa: join(CERTS, 'ca.pem'),
    ...TLS_FILES,
    logLevel: level,
    ...overrides,
  });
  const proxy = new Proxy({ config, log: log ?? createLogger({ level, pretty: false }), ...(rules ? { rules } : {}) });
  const addr = await proxy.listen();
  return { proxy, port: addr.port, config, stop: () => proxy.close(500) };
}
