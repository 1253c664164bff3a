// The xep207-proxy command itself (bin/xep207-proxy, built by `npm run build`): flags, environment,
// config file, exit codes, logs, and SIGTERM/SIGINT with clients connected to a real ejabberd.
import t from 'tap';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CERTS, freePort } from './harness/common.js';
import { runSync, start } from './harness/cli.js';
import { startEjabberd } from './harness/ejabberd.js';
import { RawClient, connect, xml } from './harness/xmpp.js';

t.test('--help names every flag and its environment variable', async (t) => {
  const r = runSync(['--help']);
  t.equal(r.code, 0);
  for (const flag of ['--listen', '--upstream', '--upstream-tls', '--upstream-ca', '--upstream-insecure', '--tls-cert', '--tls-key', '--require-tls', '--max-stanza-size', '--max-depth', '--header-timeout', '--muc-history', '--muc-prefix', '--admin-listen', '--drain-timeout', '--trace', '--log-level', '--log-pretty', '--config', '--listen-tls', '--listen-ws', '--ws-path', '--ws-origin', '--proxy-protocol']) {
    t.match(r.stdout, flag, flag);
  }
  t.match(r.stdout, /XEP207_LISTEN/);
  t.match(r.stdout, /XEP207_MAX_STANZA_SIZE/);
  t.match(r.stdout, /default: 262144/);
  t.match(r.stdout, /XEP207_HEADER_TIMEOUT/);
  for (const env of ['XEP207_ADMIN_LISTEN', 'XEP207_DRAIN_TIMEOUT', 'XEP207_TRACE', 'XEP207_CONFIG']) t.match(r.stdout, env, env);
  t.match(r.stdout, /SIGHUP reloads/);
  t.match(r.stdout, /--listen-tls \[\[host:\]port\]/, 'the listeners take an optional argument');
  t.match(r.stdout, /XEP207_LISTEN_WS/);
  t.match(r.stdout, /XEP207_PROXY_PROTOCOL/);
});

t.test('a bad value exits 2 with one line naming the flag', async (t) => {
  const cases: Array<[string[], Record<string, string>, RegExp]> = [
    [['--listen', 'nope', '--upstream', 'tcp://127.0.0.1:5222'], {}, /--listen/],
    [['--listen', '99999', '--upstream', 'tcp://127.0.0.1:5222'], {}, /--listen: port out of range/],
    [[], {}, /--upstream: required/],
    [['--upstream', 'http://x:1'], {}, /--upstream: unsupported scheme/],
    [['--upstream', 'tcp://127.0.0.1:5222', '--upstream-tls', 'maybe'], {}, /--upstream-tls/],
    [['--upstream', 'tcp://127.0.0.1:5222', '--max-stanza-size', '-5'], {}, /--max-stanza-size/],
    [['--upstream', 'tcp://127.0.0.1:5222', '--max-depth', '0'], {}, /--max-depth/],
    [['--upstream', 'tcp://127.0.0.1:5222', '--tls-cert', '/nonexistent.pem', '--tls-key', '/nonexistent.key'], {}, /--tls-cert: cannot read/],
    [['--upstream', 'tcp://127.0.0.1:5222', '--require-tls'], {}, /--require-tls: needs --tls-cert/],
    [['--upstream', 'tcp://127.0.0.1:5222', '--log-level', 'loud'], {}, /--log-level/],
    [['--upstream', 'tcp://127.0.0.1:5222', '--header-timeout', '0'], {}, /--header-timeout: expected seconds/],
    [['--upstream', 'tcp://127.0.0.1:5222'], { XEP207_HEADER_TIMEOUT: 'soon' }, /--header-timeout/],
    [['--upstream', 'tcp://127.0.0.1:5222', '--muc-history', 'lots'], {}, /--muc-history: expected a positive integer/],
    [['--upstream', 'tcp://127.0.0.1:5222'], { XEP207_MUC_HISTORY: '5000' }, /--muc-history/],
    [['--upstream', 'tcp://127.0.0.1:5222', '--muc-prefix', 'chat.rooms'], {}, /--muc-prefix: expected one DNS label/],
    [['--upstream', 'tcp://127.0.0.1:5222'], { XEP207_MUC_PREFIX: '-x' }, /--muc-prefix/],
    [['--upstream', 'tcp://127.0.0.1:5222'], { XEP207_MAX_DEPTH: 'deep' }, /--max-depth/],
    [['--upstream', 'tcp://127.0.0.1:5222'], { XEP207_LOG_PRETTY: 'perhaps' }, /XEP207_LOG_PRETTY/],
    [['--config', '/nonexistent.json'], {}, /--config: cannot read/],
    [[], { XEP207_CONFIG: '/nonexistent.json' }, /--config: cannot read/],
    [['--upstream', 'tcp://127.0.0.1:5222', '--admin-listen', 'nope'], {}, /--admin-listen: expected \[host:\]port/],
    [['--upstream', 'tcp://127.0.0.1:5222', '--drain-timeout', '0'], {}, /--drain-timeout: expected seconds/],
    [['--upstream', 'tcp://127.0.0.1:5222', '--trace', 'capulet.lit'], {}, /--trace: expected a JID/],
    [['--upstream', 'tcp://127.0.0.1:5222'], { XEP207_TRACE: 'juliet@capulet.lit, not a jid' }, /--trace: expected a JID .*'not'/],
    [['--upstream', 'tcp://127.0.0.1:5222', '--listen-tls'], {}, /--listen-tls: needs --tls-cert/],
    [['--upstream', 'tcp://127.0.0.1:5222', '--listen-ws', '99999'], {}, /--listen-ws: port out of range/],
    [['--upstream', 'tcp://127.0.0.1:5222'], { XEP207_LISTEN_WS: 'here' }, /--listen-ws: expected \[host:\]port/],
    [['--upstream', 'tcp://127.0.0.1:5222', '--ws-path', 'ws'], {}, /--ws-path: expected an absolute URL path/],
    [['--upstream', 'tcp://127.0.0.1:5222', '--ws-origin', 'https://chat.example/app'], {}, /--ws-origin: not an origin/],
    [['--upstream', 'tcp://127.0.0.1:5222', '--ws-origin', ' , '], {}, /--ws-origin: expected at least one origin/],
    [['--upstream', 'tcp://127.0.0.1:5222'], { XEP207_PROXY_PROTOCOL: 'v2' }, /XEP207_PROXY_PROTOCOL/],
    [['--upstream', 'ws://127.0.0.1:5280/ws', '--upstream-tls', 'require'], {}, /--upstream-tls: 'require' contradicts a ws:\/\/ upstream/],
    [['--upstream', 'wss://127.0.0.1/ws', '--upstream-tls', 'off'], {}, /--upstream-tls: 'off' contradicts a wss:\/\/ upstream/],
    [['--nonsense'], {}, /unknown option '--nonsense'/],
  ];
  for (const [args, env, re] of cases) {
    const r = runSync(args, env);
    t.equal(r.code, 2, `exit 2: ${args.join(' ')} ${JSON.stringify(env)}`);
    t.match(r.stderr, re);
    t.equal(r.stderr.trim().split('\n').length, 1, 'one line');
  }
  const port = await freePort();
  const blocker = start(['--listen', `127.0.0.1:${port}`, '--upstream', 'tcp://127.0.0.1:1']);
  await blocker.waitLog((l) => l.msg === 'listening');
  const busy = runSync(['--listen', `127.0.0.1:${port}`, '--upstream', 'tcp://127.0.0.1:1']);
  t.equal(busy.code, 2, 'port in use: exit 2');
  t.match(busy.stderr, /--listen: .*EADDRINUSE/);
  const adminBusy = runSync(['--listen', `127.0.0.1:${await freePort()}`, '--upstream', 'tcp://127.0.0.1:1', '--admin-listen', `127.0.0.1:${port}`]);
  t.equal(adminBusy.code, 2, 'admin port in use: exit 2');
  t.match(adminBusy.stderr, /--admin-listen: .*EADDRINUSE/);
  const busyWs = runSync(['--listen', `127.0.0.1:${await freePort()}`, '--listen-ws', `127.0.0.1:${port}`, '--upstream', 'tcp://127.0.0.1:1']);
  t.equal(busyWs.code, 2, 'the WebSocket port in use: exit 2');
  t.match(busyWs.stderr, /--listen-ws: .*EADDRINUSE/, 'naming that listener');
  blocker.child.kill('SIGTERM');
  t.equal(await blocker.exited, 0);
});

t.test('--listen-tls, --listen-ws, --proxy-protocol from flags and the environment: the listening line', async (t) => {
  const [p1, p2, p3] = [await freePort(), await freePort(), await freePort()];
  const tlsFiles = ['--tls-cert', join(CERTS, 'cert.pem'), '--tls-key', join(CERTS, 'key.pem')];
  const proc = start(['--listen', `127.0.0.1:${p1}`, '--listen-tls', `127.0.0.1:${p2}`, '--upstream', 'tcp://127.0.0.1:1', ...tlsFiles], { XEP207_LISTEN_WS: `127.0.0.1:${p3}`, XEP207_WS_PATH: '/xmpp', XEP207_PROXY_PROTOCOL: 'on' });
  t.teardown(() => proc.child.kill('SIGKILL'));
  const l = await proc.waitLog((l) => l.msg === 'listening');
  t.equal(l.listen, `127.0.0.1:${p1}`);
  t.equal(l.listenTls, `127.0.0.1:${p2}`);
  t.equal(l.listenWs, `wss://127.0.0.1:${p3}/xmpp`, 'wss: the certificate is the WebSocket listener\'s too');
  t.equal(l.proxyProtocol, true);
  proc.child.kill('SIGTERM');
  t.equal(await proc.exited, 0);
});

t.test('--header-timeout: a client stalling in its stream header is cut off after that time', async (t) => {
  const port = await freePort();
  const proc = start(['--listen', `127.0.0.1:${port}`, '--upstream', 'tcp://127.0.0.1:1', '--header-timeout', '0.5']);
  t.teardown(() => proc.child.kill('SIGKILL'));
  await proc.waitLog((l) => l.msg === 'listening');
  const raw = await RawClient.connect(port);
  const started = Date.now();
  raw.send("<?xml version='1.0'?><stream:stream to='capulet.lit' xmlns='jabber:cl");
  await raw.expect(/<stream:stream [^>]*>.*<stream:error><connection-timeout /s, 5000);
  await raw.waitClosed();
  const after = Date.now() - started;
  t.ok(after >= 400 && after < 3000, `closed after ${after} ms (the negotiation time-out is 60 s)`);
  proc.child.kill('SIGTERM');
  t.equal(await proc.exited, 0);
});

t.test('--admin-listen: a bare port is loopback; --trace repeated, XEP207_TRACE a list, flags win', async (t) => {
  const [port, adminPort] = [await freePort(), await freePort()];
  const base = ['--listen', `127.0.0.1:${port}`, '--upstream', 'tcp://127.0.0.1:1', '--admin-listen', String(adminPort)];
  const traced = async (args: string[], env: Record<string, string>) => {
    const r = start([...base, ...args], env);
    const l = await r.waitLog((l) => l.msg === 'admin listening');
    t.equal(l.admin, `127.0.0.1:${adminPort}`, 'on loopback');
    const list = ((await (await fetch(`http://127.0.0.1:${adminPort}/trace`)).json()) as { trace: string[] }).trace;
    r.child.kill('SIGTERM');
    t.equal(await r.exited, 0);
    return list;
  };
  t.same(await traced(['--trace', 'Juliet@Capulet.lit', '--trace', 'romeo@montague.lit/orchard'], {}), ['juliet@capulet.lit', 'romeo@montague.lit/orchard'], 'both flags, canonical');
  t.same(await traced([], { XEP207_TRACE: 'juliet@capulet.lit, nurse@capulet.lit romeo@montague.lit' }), ['juliet@capulet.lit', 'nurse@capulet.lit', 'romeo@montague.lit'], 'a list from the environment');
  t.same(await traced(['--trace', 'nurse@capulet.lit'], { XEP207_TRACE: 'juliet@capulet.lit' }), ['nurse@capulet.lit'], 'flags win');
});

t.test('flags win over the environment, which wins over --config', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'xep207-cli-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const [p1, p2, p3] = [await freePort(), await freePort(), await freePort()];
  const file = join(dir, 'config.json');
  writeFileSync(file, JSON.stringify({ listen: `127.0.0.1:${p1}`, upstream: 'tcp://127.0.0.1:1', maxStanzaSize: 1000, logLevel: 'debug' }));
  const check = async (args: string[], env: Record<string, string>, port: number) => {
    const r = start(['--config', file, ...args], env);
    const l = await r.waitLog((l) => l.msg === 'listening');
    t.equal(l.listen, `127.0.0.1:${port}`);
    r.child.kill('SIGTERM');
    t.equal(await r.exited, 0);
  };
  await check([], {}, p1);
  await check([], { XEP207_LISTEN: `127.0.0.1:${p2}` }, p2);
  await check(['--listen', `127.0.0.1:${p3}`], { XEP207_LISTEN: `127.0.0.1:${p2}` }, p3);
  // XEP207_CONFIG names the file as --config does (a container mounting its settings)
  const viaEnv = start([], { XEP207_CONFIG: file });
  t.equal((await viaEnv.waitLog((l) => l.msg === 'listening')).listen, `127.0.0.1:${p1}`, 'XEP207_CONFIG');
  viaEnv.child.kill('SIGTERM');
  t.equal(await viaEnv.exited, 0);
  writeFileSync(file, JSON.stringify({ listen: 5222, bogus: 1 }));
  const bad = runSync(['--config', file]);
  t.equal(bad.code, 2);
  t.match(bad.stderr, /unknown key 'bogus'/);
});

t.test('with a real backend: logs, and SIGTERM/SIGINT shut every client down', async (t) => {
  const backend = await startEjabberd({ users: [['juliet', 'capulet.lit', 'secret'], ['romeo', 'montague.lit', 'secret']] });
  t.teardown(() => backend.stop());
  const common = ['--upstream', `tcp://127.0.0.1:${backend.port}`, '--upstream-ca', join(CERTS, 'ca.pem'), '--tls-cert', join(CERTS, 'cert.pem'), '--tls-key', join(CERTS, 'key.pem')];

  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    t.test(`${signal}: <system-shutdown/> to every client, exit 0`, async (t) => {
      const port = await freePort();
      const proc = start(['--listen', `127.0.0.1:${port}`, ...common, '--log-level', 'debug']);
      t.teardown(() => proc.child.kill('SIGKILL'));
      await proc.waitLog((l) => l.msg === 'listening');
      const a = await RawClient.login(port, 'capulet.lit', 'juliet', 'secret', 'a');
      const b = await RawClient.login(port, 'montague.lit', 'romeo', 'secret', 'b');
      const c = await connect({ port, domain: 'capulet.lit', username: 'juliet', password: 'secret', resource: 'lib' });
      const libError = new Promise<string>((resolve) => c.on('error', (e: { condition?: string }) => resolve(e.condition ?? String(e))));
      proc.child.kill(signal);
      for (const raw of [a, b]) {
        await raw.expect(/<stream:error><system-shutdown xmlns=["']urn:ietf:params:xml:ns:xmpp-streams["']/);
        await raw.waitClosed();
      }
      t.equal(await libError, 'system-shutdown', '@xmpp/client sees system-shutdown');
      t.equal(await proc.exited, 0, 'exit code 0');
      t.ok(proc.lines.some((l) => l.msg === 'shutting down' && l.signal === signal), 'logged');
    });
  }

  t.test('logs at the default level: three lines per session (connected, bound, closed), the steps between at debug', async (t) => {
    const port = await freePort();
    const proc = start(['--listen', `127.0.0.1:${port}`, ...common]);
    t.teardown(() => proc.child.kill('SIGKILL'));
    await proc.waitLog((l) => l.msg === 'listening');
    const c = await connect({ port, domain: 'capulet.lit', username: 'juliet', password: 'secret', resource: 'terse', mechanism: 'PLAIN' });
    await c.stop();
    const closed = await proc.waitLog((l) => l.msg === 'session closed' && l.jid === 'juliet@capulet.lit/terse');
    const mine = proc.lines.filter((l) => l.sid === closed.sid);
    t.same(
      mine.map((l) => l.msg).filter((m) => m !== 'created nodes'), // juliet's first login through this backend, if it is one
      ['client connected', 'bound', 'session closed'],
      'connected, bound, closed',
    );
    t.equal(mine.find((l) => l.msg === 'bound')?.mechanism, 'PLAIN', 'the bound line names the mechanism');
    t.equal(closed.end, 'client closed its stream', 'the closed line says what ended it');
    t.ok(mine.filter((l) => l.msg === 'created nodes').length <= 1, 'at most one line for the nodes a login made');
    proc.child.kill('SIGTERM');
    t.equal(await proc.exited, 0);
  });

  t.test('logs: a JSON line per connection event with the session id, the JID once bound, never SASL data', async (t) => {
    const port = await freePort();
    const proc = start(['--listen', `127.0.0.1:${port}`, ...common, '--log-level', 'debug']);
    t.teardown(() => proc.child.kill('SIGKILL'));
    await proc.waitLog((l) => l.msg === 'listening');
    const password = 'secret';
    const c = await connect({ port, domain: 'capulet.lit', username: 'juliet', password, resource: 'logged', mechanism: 'PLAIN' });
    await c.iqCaller.request(xml('iq', { type: 'get', to: 'capulet.lit' }, xml('ping', { xmlns: 'urn:xmpp:ping' })));
    await c.stop();
    const closed = await proc.waitLog((l) => l.msg === 'session closed');
    const sid = closed.sid as string;
    t.ok(sid, 'session id');
    const mine = proc.lines.filter((l) => l.sid === sid);
    const msgs = mine.map((l) => l.msg);
    for (const m of ['client connected', 'backend stream open', 'authenticated', 'bound', 'client closed its stream', 'session closed']) t.ok(msgs.includes(m), `logged: ${m}`);
    const bound = mine.find((l) => l.msg === 'bound')!;
    t.equal(bound.jid, 'juliet@capulet.lit/logged', 'JID on the bound line');
    t.ok(mine.filter((l) => msgs.indexOf('bound') <= mine.indexOf(l)).every((l) => l.jid === 'juliet@capulet.lit/logged'), 'every later line carries the JID');
    const all = proc.lines.map((l) => JSON.stringify(l)).join('\n');
    const plain = Buffer.from(`\0juliet\0${password}`).toString('base64');
    t.notOk(all.includes(plain), 'no SASL PLAIN payload');
    t.notOk(all.includes(password), 'no password');
    t.notMatch(all, /<auth|<challenge|<response|<success/, 'no SASL elements');
    t.ok(proc.lines.every((l) => !('stderr' in l)), 'nothing on stderr');
    proc.child.kill('SIGTERM');
    t.equal(await proc.exited, 0);
  });
});
