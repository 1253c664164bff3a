// One validated Config from flags, environment (XEP207_*) and a JSON file, in that order of precedence.
// Every option is declared once in OPTIONS: its flag, its environment variable, its JSON key, its
// default and how to read it; the CLI help, the README table and validation all come from it.
import { readFileSync } from 'node:fs';
import type { BackendName } from './backends/profile.js';
import { isDomain, parseJid } from './xmpp/jid.js';

export type UpstreamTlsMode = 'require' | 'prefer' | 'off';
export type LogLevel = 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';

export interface Endpoint {
  host: string;
  port: number;
}

/** The backend: TCP (STARTTLS per --upstream-tls), direct TLS, or WebSocket (`ws`: the URL; wss is TLS). */
export type Upstream = Endpoint & { tls: boolean; ws?: string };

export interface Config {
  listen: Endpoint;
  /** direct TLS for clients (XEP-0368, --listen-tls); absent: none */
  listenTls?: Endpoint;
  /** XMPP over WebSocket (RFC 7395, --listen-ws); absent: none */
  listenWs?: Endpoint;
  /** the HTTP path that upgrades to WebSocket */
  wsPath: string;
  /** Origin values a WebSocket handshake may carry (--ws-origin); absent: any */
  wsOrigins?: string[];
  /** every connection on the TCP listeners starts with a PROXY protocol v1/v2 header */
  proxyProtocol: boolean;
  upstream: Upstream;
  upstreamTls: UpstreamTlsMode;
  upstreamCa?: string;
  upstreamInsecure: boolean;
  tlsCert?: string;
  tlsKey?: string;
  requireTls: boolean;
  maxStanzaSize: number;
  maxDepth: number;
  negotiationTimeout: number;
  headerTimeout: number;
  connectTimeout: number;
  requestTimeout: number;
  /** ms between two sweeps of a group chat room for occupants whose session is gone (muc.ts) */
  mucSweepInterval: number;
  /** how many messages a group chat room keeps for joiners (--muc-history) */
  mucHistory: number;
  /** the MUC service of a served domain D is `<mucPrefix>.<D>` (--muc-prefix) */
  mucPrefix: string;
  logLevel: LogLevel;
  logPretty: boolean;
  backend: BackendName | 'auto';
  /** one pubsub service for every domain's chat nodes (default: pubsub.<the recipient's domain>) */
  pubsubService?: string;
  /** the service account's bare JID (--service-jid); absent: no service account */
  serviceJid?: string;
  /** its password (--service-password-file or XEP207_SERVICE_PASSWORD): never logged */
  servicePassword?: string;
  /** the admin HTTP listener (health, readiness, metrics, trace); absent: none */
  adminListen?: Endpoint;
  /** ms a SIGTERM drain may take before the remaining sessions are cut */
  drainTimeout: number;
  /** JIDs (bare: every resource; full: one) whose rewrites are logged (--trace, repeatable) */
  trace: string[];
}

/** A bad value: the CLI prints `error: <flag>: <reason>` and exits 2. */
export class ConfigError extends Error {
  constructor(
    readonly flag: string,
    reason: string,
  ) {
    super(`${flag}: ${reason}`);
    this.name = 'ConfigError';
  }
}

interface OptionSpec {
  key: keyof RawConfig;
  flag: string;
  /** argument name in --help; absent for a boolean switch */
  arg?: string;
  /** the argument may be left out (`--listen-tls` alone): then `default` applies */
  optionalArg?: boolean;
  description: string;
  default?: string | boolean;
  /**
   * A secret read from the environment only: a flag would show in process lists (and in logs of
   * whatever started the process), a JSON key invites checking it in. `flag` then only names the
   * environment variable.
   */
  envOnly?: boolean;
  /** may be given several times (flags), as a list (JSON) or separated by commas or spaces (env) */
  repeatable?: boolean;
}

/** What the three sources give, before validation: strings and booleans. */
export interface RawConfig {
  listen?: string;
  listenTls?: string | boolean;
  listenWs?: string | boolean;
  wsPath?: string;
  wsOrigin?: string;
  proxyProtocol?: boolean;
  upstream?: string;
  upstreamTls?: string;
  upstreamCa?: string;
  upstreamInsecure?: boolean;
  tlsCert?: string;
  tlsKey?: string;
  requireTls?: boolean;
  maxStanzaSize?: string;
  maxDepth?: string;
  negotiationTimeout?: string;
  headerTimeout?: string;
  connectTimeout?: string;
  requestTimeout?: string;
  mucSweepInterval?: string;
  mucHistory?: string;
  mucPrefix?: string;
  logLevel?: string;
  logPretty?: boolean;
  backend?: string;
  pubsubService?: string;
  serviceJid?: string;
  servicePasswordFile?: string;
  servicePassword?: string;
  adminListen?: string;
  drainTimeout?: string;
  trace?: string | string[];
}

export const OPTIONS: OptionSpec[] = [
  { key: 'listen', flag: '--listen', arg: '[host:]port', description: 'where clients connect (c2s, RFC 6120)', default: '5222' },
  { key: 'listenTls', flag: '--listen-tls', arg: '[host:]port', optionalArg: true, description: 'also accept direct TLS from clients here (XEP-0368; needs --tls-cert); the flag alone: port 5223, all interfaces', default: '5223' },
  { key: 'listenWs', flag: '--listen-ws', arg: '[host:]port', optionalArg: true, description: 'also accept XMPP over WebSocket here (RFC 7395; wss:// with --tls-cert, else ws://); the flag alone: port 5280, all interfaces', default: '5280' },
  { key: 'wsPath', flag: '--ws-path', arg: 'path', description: 'the HTTP path of the WebSocket endpoint', default: '/ws' },
  { key: 'wsOrigin', flag: '--ws-origin', arg: 'origins', description: 'comma-separated Origin values allowed in a WebSocket handshake, e.g. https://chat.example (default: any; a handshake without Origin, not from a browser, is always allowed)' },
  { key: 'proxyProtocol', flag: '--proxy-protocol', description: 'connections to --listen and --listen-tls start with a PROXY protocol v1 or v2 header from a load balancer (refused without one); its address is the client\'s in logs', default: false },
  { key: 'upstream', flag: '--upstream', arg: 'url', description: 'the backend: tcp://host:port (STARTTLS), tls://host:port (direct TLS), or ws://host:port/path / wss://… (XMPP over WebSocket, for a backend reachable only that way); required' },
  { key: 'backend', flag: '--backend', arg: 'kind', description: "the backend's kind, for what it does natively: auto (ask its disco#info), ejabberd, prosody or generic", default: 'auto' },
  { key: 'pubsubService', flag: '--pubsub-service', arg: 'jid', description: "the backend's pubsub service for one-to-one chat nodes of every domain (default: pubsub.<the recipient's domain>)" },
  { key: 'upstreamTls', flag: '--upstream-tls', arg: 'mode', description: 'STARTTLS to a tcp:// backend: require, prefer (when offered) or off', default: 'prefer' },
  { key: 'upstreamCa', flag: '--upstream-ca', arg: 'file', description: "PEM file of CA certificates to verify the backend's certificate (default: the system's)" },
  { key: 'upstreamInsecure', flag: '--upstream-insecure', description: "do not verify the backend's certificate (self-signed test backends only)", default: false },
  { key: 'tlsCert', flag: '--tls-cert', arg: 'file', description: 'PEM certificate (chain) the proxy offers clients with STARTTLS; without it the client leg is plaintext' },
  { key: 'tlsKey', flag: '--tls-key', arg: 'file', description: 'PEM private key for --tls-cert' },
  { key: 'requireTls', flag: '--require-tls', description: 'clients must use STARTTLS before anything else (needs --tls-cert)', default: false },
  { key: 'maxStanzaSize', flag: '--max-stanza-size', arg: 'bytes', description: 'largest top-level element a client may send (policy-violation above)', default: '262144' },
  { key: 'maxDepth', flag: '--max-depth', arg: 'n', description: 'deepest element nesting in a client stanza (policy-violation above)', default: '64' },
  { key: 'negotiationTimeout', flag: '--negotiation-timeout', arg: 'seconds', description: 'time from connect to resource binding (connection-timeout after)', default: '60' },
  { key: 'headerTimeout', flag: '--header-timeout', arg: 'seconds', description: 'before binding: time to finish the stream header (after connecting, after each restart) and any element once begun (connection-timeout after)', default: '10' },
  { key: 'connectTimeout', flag: '--connect-timeout', arg: 'seconds', description: 'time to reach the backend and open its stream (remote-connection-failed after)', default: '10' },
  { key: 'requestTimeout', flag: '--request-timeout', arg: 'seconds', description: "time the backend has to answer the proxy's own requests", default: '15' },
  { key: 'mucHistory', flag: '--muc-history', arg: 'n', description: "how many messages a group chat room keeps and gives a joiner (its messages node's max_items; set when the room is made)", default: '20' },
  { key: 'mucPrefix', flag: '--muc-prefix', arg: 'label', description: 'the group chat (MUC) service of each served domain D is <label>.D', default: 'conference' },
  { key: 'mucSweepInterval', flag: '--muc-sweep-interval', arg: 'seconds', description: 'how often one occupant session of each group chat room checks the others for sessions that are gone (a proxy instance that died)', default: '60' },
  { key: 'serviceJid', flag: '--service-jid', arg: 'jid', description: "the proxy's own account (user@domain), which creates and owns nodes on pubsub components (default: none)" },
  { key: 'servicePasswordFile', flag: '--service-password-file', arg: 'file', description: "file holding the service account's password (a final line break is not part of it)" },
  { key: 'servicePassword', flag: '--service-password', arg: 'password', envOnly: true, description: "the service account's password" },
  { key: 'adminListen', flag: '--admin-listen', arg: '[host:]port', description: 'admin HTTP listener: /healthz, /readyz, /metrics, /trace (default: off; a bare port listens on 127.0.0.1)' },
  { key: 'drainTimeout', flag: '--drain-timeout', arg: 'seconds', description: "on SIGTERM: time for publishing every session's unavailability and for the backend requests in flight, before the rest is cut", default: '10' },
  { key: 'trace', flag: '--trace', arg: 'jid', repeatable: true, description: 'log every rewrite of this user (bare JID) or resource (full JID) at info level, both sides (repeatable; also at runtime: POST /trace/<jid> on the admin listener)' },
  { key: 'logLevel', flag: '--log-level', arg: 'level', description: 'fatal, error, warn, info, debug, trace or silent', default: 'info' },
  { key: 'logPretty', flag: '--log-pretty', description: 'human-readable logs instead of JSON lines', default: false },
];

/** XEP207_LISTEN, XEP207_UPSTREAM_TLS, ... */
export function envName(spec: OptionSpec): string {
  return 'XEP207_' + spec.flag.slice(2).replace(/-/g, '_').toUpperCase();
}

const BOOL_TRUE = new Set(['1', 'true', 'yes', 'on']);
const BOOL_FALSE = new Set(['0', 'false', 'no', 'off', '']);

/** Options from the environment (only the XEP207_* variables that are set). */
export function fromEnv(env: NodeJS.ProcessEnv): RawConfig {
  const raw: Record<string, string | boolean> = {};
  for (const spec of OPTIONS) {
    const v = env[envName(spec)];
    if (v === undefined) continue;
    if (spec.repeatable) (raw as Record<string, unknown>)[spec.key] = v.split(/[\s,]+/).filter(Boolean);
    // XEP207_LISTEN_TLS=on is the bare flag; digits are a port (so 1 and 0 are not booleans here)
    else if (spec.optionalArg && /^(true|yes|on|false|no|off)?$/i.test(v)) raw[spec.key] = /^(true|yes|on)$/i.test(v);
    else if (spec.arg) raw[spec.key] = v;
    else {
      const lv = v.toLowerCase();
      if (BOOL_TRUE.has(lv)) raw[spec.key] = true;
      else if (BOOL_FALSE.has(lv)) raw[spec.key] = false;
      else throw new ConfigError(envName(spec), `expected true or false, got '${v}'`);
    }
  }
  return raw as RawConfig;
}

/** Options from a JSON file: keys are the camelCase names (listen, upstream, upstreamTls, ...). */
export function fromFile(path: string): RawConfig {
  let data: unknown;
  try {
    data = JSON.parse(readFileSync(path, 'utf8'));
  } catch (err) {
    throw new ConfigError('--config', `cannot read ${path}: ${(err as Error).message}`);
  }
  if (typeof data !== 'object' || data === null || Array.isArray(data)) throw new ConfigError('--config', `${path} must hold a JSON object`);
  const raw: Record<string, string | boolean | string[]> = {};
  for (const [k, v] of Object.entries(data)) {
    const spec = OPTIONS.find((o) => o.key === k);
    if (!spec) throw new ConfigError('--config', `unknown key '${k}' in ${path}`);
    if (spec.envOnly) throw new ConfigError('--config', `'${k}' is read from ${envName(spec)} only (in a file: servicePasswordFile)`);
    if (spec.repeatable) {
      const list: unknown[] = Array.isArray(v) ? v : [v];
      if (!list.every((x) => typeof x === 'string')) throw new ConfigError('--config', `'${k}' must be a string or a list of strings`);
      raw[k] = list as string[];
    } else if (spec.optionalArg && typeof v === 'boolean') {
      raw[k] = v;
    } else if (spec.arg) {
      if (typeof v !== 'string' && typeof v !== 'number') throw new ConfigError('--config', `'${k}' must be a string or number`);
      raw[k] = String(v);
    } else {
      if (typeof v !== 'boolean') throw new ConfigError('--config', `'${k}' must be true or false`);
      raw[k] = v;
    }
  }
  return raw as RawConfig;
}

function positiveInt(flag: string, v: string, max = 2 ** 31 - 1): number {
  if (!/^[0-9]+$/.test(v.trim())) throw new ConfigError(flag, `expected a positive integer, got '${v}'`);
  const n = Number(v);
  if (n < 1 || n > max) throw new ConfigError(flag, `must be between 1 and ${max}, got ${n}`);
  return n;
}

/** One DNS label (letters, digits, hyphens; not at either end): what goes before a served domain. */
function dnsLabel(flag: string, v: string): string {
  const label = v.trim().toLowerCase();
  if (!/^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/.test(label)) throw new ConfigError(flag, `expected one DNS label (such as 'conference'), got '${v}'`);
  return label;
}

function seconds(flag: string, v: string): number {
  const n = Number(v);
  if (v.trim() === '' || !Number.isFinite(n) || n <= 0 || n > 86400) throw new ConfigError(flag, `expected seconds (0 < s <= 86400), got '${v}'`);
  return Math.round(n * 1000);
}

/** `[host:]port`; a bare port listens on `defaultHost` (every interface for --listen). */
export function parseListen(v: string, flag = '--listen', defaultHost = '::'): Endpoint {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:]+)|([0-9a-fA-F:]+:[0-9a-fA-F:]*)):([0-9]+)$/.exec(v) ?? /^()()()([0-9]+)$/.exec(v);
  if (!m) throw new ConfigError(flag, `expected [host:]port, got '${v}'`);
  const port = Number(m[4]);
  if (port > 65535) throw new ConfigError(flag, `port out of range: ${port}`);
  return { host: m[1] || m[2] || m[3] || defaultHost, port };
}

export function parseUpstream(v: string): Upstream {
  let url: URL;
  try {
    url = new URL(v);
  } catch {
    throw new ConfigError('--upstream', `expected tcp://host:port, tls://host:port or ws(s)://host:port/path, got '${v}'`);
  }
  if (url.protocol === 'ws:' || url.protocol === 'wss:') {
    if (!url.hostname) throw new ConfigError('--upstream', 'missing host');
    const secure = url.protocol === 'wss:';
    const host = url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname;
    return { host, port: url.port ? Number(url.port) : secure ? 443 : 80, tls: secure, ws: url.href };
  }
  if (url.protocol !== 'tcp:' && url.protocol !== 'tls:') throw new ConfigError('--upstream', `unsupported scheme '${url.protocol}' (use tcp://, tls://, ws:// or wss://)`);
  if (!url.hostname) throw new ConfigError('--upstream', 'missing host');
  if (url.pathname && url.pathname !== '/' && url.pathname !== '') throw new ConfigError('--upstream', `unexpected path '${url.pathname}'`);
  const port = url.port ? Number(url.port) : url.protocol === 'tls:' ? 5223 : 5222;
  const host = url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname;
  return { host, port, tls: url.protocol === 'tls:' };
}

const LEVELS = new Set(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']);

/** Merge the sources (flags over env over file over defaults) and validate into a Config. */
export function resolveConfig(...sources: RawConfig[]): Config {
  const merged: RawConfig = {};
  // an optional-argument option's default is the value of the bare flag, not a default setting
  for (const spec of OPTIONS) if (spec.default !== undefined && !spec.optionalArg) (merged as Record<string, unknown>)[spec.key] = spec.default;
  for (const src of sources.slice().reverse()) {
    for (const [k, v] of Object.entries(src)) if (v !== undefined) (merged as Record<string, unknown>)[k] = v;
  }
  if (!merged.upstream) throw new ConfigError('--upstream', 'required (e.g. --upstream tcp://127.0.0.1:5222)');
  const tlsMode = merged.upstreamTls!;
  if (tlsMode !== 'require' && tlsMode !== 'prefer' && tlsMode !== 'off') throw new ConfigError('--upstream-tls', `expected require, prefer or off, got '${tlsMode}'`);
  const logLevel = merged.logLevel!;
  if (!LEVELS.has(logLevel)) throw new ConfigError('--log-level', `expected one of ${[...LEVELS].join(', ')}, got '${logLevel}'`);
  if (Boolean(merged.tlsCert) !== Boolean(merged.tlsKey)) {
    throw new ConfigError(merged.tlsCert ? '--tls-key' : '--tls-cert', '--tls-cert and --tls-key go together');
  }
  if (merged.requireTls && !merged.tlsCert) throw new ConfigError('--require-tls', 'needs --tls-cert and --tls-key');
  for (const [flag, file] of [['--tls-cert', merged.tlsCert], ['--tls-key', merged.tlsKey], ['--upstream-ca', merged.upstreamCa]] as const) {
    if (file === undefined) continue;
    try {
      readFileSync(file);
    } catch (err) {
      throw new ConfigError(flag, `cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
    }
  }
  const upstream = parseUpstream(merged.upstream);
  const backend = merged.backend!;
  if (!['auto', 'ejabberd', 'prosody', 'generic'].includes(backend)) throw new ConfigError('--backend', `expected auto, ejabberd, prosody or generic, got '${backend}'`);
  if (upstream.tls && tlsMode === 'off') throw new ConfigError('--upstream-tls', `'off' contradicts a ${upstream.ws ? 'wss' : 'tls'}:// upstream`);
  if (upstream.ws && !upstream.tls && tlsMode === 'require') throw new ConfigError('--upstream-tls', "'require' contradicts a ws:// upstream (no STARTTLS over WebSocket: use wss://)");
  const listenTls = optionalListen('--listen-tls', merged.listenTls);
  if (listenTls && !merged.tlsCert) throw new ConfigError('--listen-tls', 'needs --tls-cert and --tls-key');
  const wsPath = merged.wsPath!;
  if (!/^\/[!$&'()*+,;=:@%A-Za-z0-9._~\/-]*$/.test(wsPath)) throw new ConfigError('--ws-path', `expected an absolute URL path such as /ws, got '${wsPath}'`);
  const config: Config = {
    listen: parseListen(merged.listen!),
    wsPath,
    proxyProtocol: Boolean(merged.proxyProtocol),
    upstream,
    upstreamTls: tlsMode,
    upstreamInsecure: Boolean(merged.upstreamInsecure),
    requireTls: Boolean(merged.requireTls),
    maxStanzaSize: positiveInt('--max-stanza-size', merged.maxStanzaSize!, 64 * 1024 * 1024),
    maxDepth: positiveInt('--max-depth', merged.maxDepth!, 1000),
    negotiationTimeout: seconds('--negotiation-timeout', merged.negotiationTimeout!),
    headerTimeout: seconds('--header-timeout', merged.headerTimeout!),
    connectTimeout: seconds('--connect-timeout', merged.connectTimeout!),
    requestTimeout: seconds('--request-timeout', merged.requestTimeout!),
    mucSweepInterval: seconds('--muc-sweep-interval', merged.mucSweepInterval!),
    mucHistory: positiveInt('--muc-history', merged.mucHistory!, 1000),
    mucPrefix: dnsLabel('--muc-prefix', merged.mucPrefix!),
    logLevel: logLevel as LogLevel,
    logPretty: Boolean(merged.logPretty),
    backend: backend as BackendName | 'auto',
    drainTimeout: seconds('--drain-timeout', merged.drainTimeout!),
    trace: traceJids(merged.trace),
  };
  // loopback unless an interface is named: the admin listener can switch on tracing of users
  if (merged.adminListen) config.adminListen = parseListen(merged.adminListen, '--admin-listen', '127.0.0.1');
  if (listenTls) config.listenTls = listenTls;
  const listenWs = optionalListen('--listen-ws', merged.listenWs);
  if (listenWs) config.listenWs = listenWs;
  if (merged.wsOrigin !== undefined) config.wsOrigins = origins(merged.wsOrigin);
  if (merged.pubsubService) {
    if (!isDomain(merged.pubsubService)) throw new ConfigError('--pubsub-service', `not a service JID (a domain): '${merged.pubsubService}'`);
    config.pubsubService = merged.pubsubService.toLowerCase();
  }
  const service = serviceAccount(merged);
  if (service) {
    config.serviceJid = service.jid;
    config.servicePassword = service.password;
  }
  if (merged.upstreamCa) config.upstreamCa = merged.upstreamCa;
  if (merged.tlsCert) config.tlsCert = merged.tlsCert;
  if (merged.tlsKey) config.tlsKey = merged.tlsKey;
  return config;
}

/** --trace values: JIDs, bare or full, in their canonical form (what sessions are compared with). */
export function traceJids(v: string | string[] | undefined): string[] {
  const list = v === undefined ? [] : Array.isArray(v) ? v : [v];
  return list.map((s) => {
    const jid = parseJid(s);
    if (!jid || !jid.local) throw new ConfigError('--trace', `expected a JID (user@domain or user@domain/resource), got '${s}'`);
    return jid.toString();
  });
}

/** --listen-tls / --listen-ws: absent or false: off; true (the bare flag): the default port; else [host:]port */
function optionalListen(flag: string, v: string | boolean | undefined): Endpoint | undefined {
  if (v === undefined || v === false) return undefined;
  const spec = OPTIONS.find((o) => o.flag === flag)!;
  return parseListen(v === true ? String(spec.default) : v, flag);
}

/** --ws-origin: a comma-separated list, each an origin as browsers send it (scheme://host[:port]) */
function origins(v: string): string[] {
  const list = v.split(',').map((o) => o.trim()).filter((o) => o !== '');
  if (list.length === 0) throw new ConfigError('--ws-origin', 'expected at least one origin, e.g. https://chat.example');
  for (const o of list) {
    let ok = false;
    try {
      ok = new URL(o).origin === o;
    } catch {
      /* not a URL */
    }
    if (!ok) throw new ConfigError('--ws-origin', `not an origin as a browser sends it (scheme://host[:port], no path, no default port): '${o}'`);
  }
  return list;
}

/**
 * --service-jid and its password, from a file or XEP207_SERVICE_PASSWORD (one of the two). Errors
 * name the JID and the file, never the password.
 */
function serviceAccount(merged: RawConfig): { jid: string; password: string } | undefined {
  const { serviceJid, servicePasswordFile: file, servicePassword } = merged;
  if (file !== undefined && servicePassword !== undefined) {
    throw new ConfigError('--service-password-file', 'the password comes either from this file or from XEP207_SERVICE_PASSWORD, not both');
  }
  if (!serviceJid) {
    if (file !== undefined || servicePassword !== undefined) throw new ConfigError('--service-jid', 'required with a service account password');
    return undefined;
  }
  const jid = parseJid(serviceJid);
  if (!jid || !jid.local || jid.resource) throw new ConfigError('--service-jid', `expected a bare JID with a localpart (user@domain), got '${serviceJid}'`);
  let password = servicePassword;
  if (file !== undefined) {
    try {
      password = readFileSync(file, 'utf8').replace(/\r?\n$/, '');
    } catch (err) {
      throw new ConfigError('--service-password-file', `cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
    }
    if (password === '') throw new ConfigError('--service-password-file', `${file} is empty`);
  }
  if (!password) throw new ConfigError('--service-jid', 'needs a password: --service-password-file file or XEP207_SERVICE_PASSWORD');
  // SASL PLAIN separates its fields with NUL: a password cannot hold one
  if (password.includes('\0')) throw new ConfigError(file !== undefined ? '--service-password-file' : 'XEP207_SERVICE_PASSWORD', 'the password holds a NUL character');
  return { jid: jid.toString(), password };
}

/** A Config for programmatic use (tests, embedding) with defaults filled in. */
export function makeConfig(partial: Partial<Config> & Pick<Config, 'upstream'>): Config {
  const defaults = resolveConfig({ upstream: 'tcp://127.0.0.1:5222' });
  return { ...defaults, ...partial };
}
