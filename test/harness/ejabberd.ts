// Starts a private ejabberd (Debian package) for one test file: own run folder under the system temp
// dir, random loopback ports, config from test/backends/ejabberd/, users registered with ejabberdctl.
// See ../shared/research/BACKENDS.md for why each setting is there.
import { spawn, type ChildProcess } from 'node:child_process';
import { chownSync, copyFileSync, mkdirSync, mkdtempSync, chmodSync, rmSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { CERTS, ROOT, ensurePackage, fillTemplate, freePort, run, systemUser, tail, waitForPort, type Backend } from './common.js';

const EJABBERDCTL = '/usr/sbin/ejabberdctl';
const TEMPLATES = join(ROOT, 'test', 'backends', 'ejabberd');

export interface EjabberdOptions {
  /** users to create, as [user, domain, password] */
  users?: Array<[string, string, string]>;
  loglevel?: 'info' | 'warning' | 'debug' | 'error';
  /** the config template in test/backends/ejabberd/ (default ejabberd.yml, the pubsub-only one) */
  template?: string;
}

export async function startEjabberd(opts: EjabberdOptions = {}): Promise<Backend> {
  try {
    return await startOnce(opts);
  } catch (err) {
    // a port picked a moment ago can be taken by another test process before the beam binds it:
    // once more with fresh ports (any other start failure is reported as it is)
    if (!/Overlapping listeners|eaddrinuse/i.test((err as Error).message)) throw err;
    return startOnce(opts);
  }
}

async function startOnce(opts: EjabberdOptions): Promise<Backend> {
  ensurePackage(EJABBERDCTL, ['ejabberd']);
  const dir = mkdtempSync(join(tmpdir(), 'xep207-ejabberd-'));
  chmodSync(dir, 0o755);
  for (const d of ['spool', 'logs', 'run', 'etc', 'modules', 'certs']) mkdirSync(join(dir, d));
  copyFileSync(join(CERTS, 'combined.pem'), join(dir, 'certs', 'combined.pem'));
  copyFileSync('/etc/ejabberd/inetrc', join(dir, 'etc', 'inetrc'));
  const [port, plainPort, tlsPort, distPort, httpPort] = [await freePort(), await freePort(), await freePort(), await freePort(), await freePort()];
  const node = `xep207-${randomBytes(4).toString('hex')}@localhost`;
  const values = {
    DIR: dir,
    C2S_PORT: port,
    PLAIN_PORT: plainPort,
    TLS_PORT: tlsPort,
    HTTP_PORT: httpPort,
    DIST_PORT: distPort,
    NODE: node,
    COOKIE: randomBytes(12).toString('hex'),
    LOGLEVEL: opts.loglevel ?? 'info',
  };
  fillTemplate(join(TEMPLATES, opts.template ?? 'ejabberd.yml'), join(dir, 'ejabberd.yml'), values);
  fillTemplate(join(TEMPLATES, 'ejabberdctl.cfg'), join(dir, 'ejabberdctl.cfg'), values);
  // as root, ejabberdctl starts the beam through `su`, which leaves it the default soft limit of 1024
  // open files (a few hundred sessions; the Erlang VM sizes its tables by it at boot): the cfg's ERL
  // is this wrapper, which raises the soft limit to the hard one first
  writeFileSync(join(dir, 'erl'), '#!/bin/sh\nulimit -n "$(ulimit -Hn)" 2>/dev/null\nexec /usr/bin/erl "$@"\n');
  chmodSync(join(dir, 'erl'), 0o755);
  const ids = systemUser('ejabberd'); // as root, ejabberdctl runs beam as this user
  if (ids) {
    for (const d of ['spool', 'logs', 'run', 'modules', 'certs']) chownSync(join(dir, d), ids.uid, ids.gid);
    chownSync(join(dir, 'certs', 'combined.pem'), ids.uid, ids.gid);
  }
  chmodSync(join(dir, 'certs', 'combined.pem'), 0o640);
  const ctlArgs = ['--config-dir', join(dir, 'etc'), '--ctl-config', join(dir, 'ejabberdctl.cfg'), '--config', join(dir, 'ejabberd.yml'), '--spool', join(dir, 'spool'), '--logs', join(dir, 'logs')];
  const consoleLog = join(dir, 'console.log');
  const out = openSync(consoleLog, 'a');
  const child: ChildProcess = spawn(EJABBERDCTL, [...ctlArgs, 'foreground'], { detached: true, stdio: ['ignore', out, out] });
  let exited = false;
  child.once('exit', () => (exited = true));
  // as root, ejabberdctl runs beam through `su`, which puts it in a process group of its own: the
  // beam's pid (from its pid file) is what has to be signalled
  const pidFile = join(dir, 'run', 'ejabberd.pid');
  const kill = (signal: NodeJS.Signals) => {
    killGroup(child, signal);
    try {
      process.kill(Number(readFileSync(pidFile, 'utf8').trim()), signal);
    } catch {
      /* no pid file yet, or already gone */
    }
  };
  const onExit = () => kill('SIGKILL'); // the test process dies: never leave a backend behind
  process.once('exit', onExit);
  const logFile = join(dir, 'logs', 'ejabberd.log');
  try {
    await waitForPort(port, 60_000, () => !exited);
  } catch (err) {
    kill('SIGKILL');
    throw new Error(`ejabberd did not start: ${(err as Error).message}\n${tail(consoleLog)}\n${tail(logFile)}`);
  }
  const backend: Backend = {
    kind: 'ejabberd',
    host: '127.0.0.1',
    port,
    plainPort,
    tlsPort,
    pid: () => {
      try {
        return Number(readFileSync(pidFile, 'utf8').trim()) || undefined;
      } catch {
        return undefined;
      }
    },
    wsUrl: `ws://127.0.0.1:${httpPort}/ws`,
    dir,
    logFile,
    register: async (user, domain, password) => {
      await run(EJABBERDCTL, [...ctlArgs, 'register', user, domain, password], { cwd: dir });
    },
    registerAll: (users) => registerOverRpc(node, values.COOKIE, distPort, users),
    stop: async () => {
      const beam = (() => {
        try {
          return Number(readFileSync(pidFile, 'utf8').trim());
        } catch {
          return 0;
        }
      })();
      kill('SIGKILL'); // a throwaway instance: no need to wait for a graceful stop
      const deadline = Date.now() + 8000;
      while ((!exited || (beam && alive(beam))) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      process.off('exit', onExit);
      if (!process.env.XEP207_KEEP_BACKEND) rmSync(dir, { recursive: true, force: true });
    },
  };
  await backend.registerAll(opts.users ?? []);
  return backend;
}

/**
 * Register users in one go: `ejabberdctl register` boots two Erlang VMs per user (~0.7 CPU-s), so
 * dozens of users would take half a minute. One hidden node calling ejabberd_auth over the
 * distribution port takes ~0.4 s for 50.
 */
async function registerOverRpc(node: string, cookie: string, distPort: number, users: ReadonlyArray<readonly [string, string, string]>): Promise<void> {
  // one command-line argument holds the list: Linux caps one at 128 KiB, so thousands go in batches
  for (let i = 500; i < users.length; i += 500) await registerOverRpc(node, cookie, distPort, users.slice(i, i + 500));
  users = users.slice(0, 500);
  if (users.length === 0) return;
  const bin = (s: string) => `<<"${s.replace(/[\\"]/g, '\\$&')}"/utf8>>`;
  const list = users.map(([u, d, p]) => `{${bin(u)},${bin(d)},${bin(p)}}`).join(',');
  const expr =
    `Bad = [{U, R} || {U, H, P} <- [${list}], R <- [rpc:call('${node}', ejabberd_auth, try_register, [U, H, P])], R =/= ok],` +
    ` io:format("~p~n", [Bad]), halt(case Bad of [] -> 0; _ -> 1 end).`;
  // the c2s port can accept before the auth tables exist on a loaded machine ({no_exists, passwd,
  // storage_type}): a few retries then
  for (let attempt = 1; ; attempt++) {
    const name = `reg${randomBytes(4).toString('hex')}@localhost`;
    try {
      await run('erl', ['-sname', name, '-hidden', '-noinput', '-setcookie', cookie, '-erl_epmd_port', String(distPort), '-start_epmd', 'false', '-dist_listen', 'false', '-eval', expr]);
      return;
    } catch (err) {
      if (attempt >= 10 || !/no_exists/.test((err as Error).message)) throw err;
      await new Promise((r) => setTimeout(r, 500));
    }
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

function killGroup(child: ChildProcess, signal: NodeJS.Signals = 'SIGKILL'): void {
  try {
    process.kill(-child.pid!, signal);
  } catch {
    /* already gone */
  }
}
