// Issue 9 point 6 on both backends, with the xep207-proxy command itself: SIGTERM drains (a contact
// on another proxy sees the leaving user go unavailable before that user's stream is shut down, and
// a backend that stops answering does not hold the exit beyond --drain-timeout), SIGHUP reloads the
// TLS certificate (a new connection gets the new one, over STARTTLS, direct TLS and wss, while an old
// session stays up).
import t, { type Test } from 'tap';
import { execFileSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { copyFileSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import tls from 'node:tls';
import type { Element } from 'ltx';
import { startEjabberd } from './harness/ejabberd.js';
import { startProsody } from './harness/prosody.js';
import { startTestProxy } from './harness/proxy.js';
import { startCapture } from './harness/capture.js';
import { CERTS, freePort, type Backend } from './harness/common.js';
import { start, type Running } from './harness/cli.js';
import { HEADER, RawClient, waitFor } from './harness/xmpp.js';
import { PASSWORD, USERS, isPresence, sessions, subscribe } from './harness/roster.js';

const SHUTDOWN = /<stream:error><system-shutdown xmlns=["']urn:ietf:params:xml:ns:xmpp-streams["']/;

/** A raw session made available: roster read (an interested resource), then initial presence. */
async function available(port: number, resource: string): Promise<RawClient> {
  const c = await RawClient.login(port, 'capulet.lit', 'juliet', PASSWORD, resource);
  c.send("<iq type='get' id='roster1'><query xmlns='jabber:iq:roster'/></iq>");
  await c.expect(/id=["']roster1["']/);
  c.send('<presence/>');
  return c;
}

/** The SHA-256 fingerprint of the certificate a new STARTTLS connection to `port` is offered. */
async function offeredCertificate(port: number): Promise<string> {
  const raw = await RawClient.connect(port);
  raw.send(HEADER('capulet.lit'));
  await raw.expect(/<\/stream:features>/);
  raw.send("<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>");
  await raw.expect(/<proceed/);
  raw.socket.removeAllListeners('data');
  const secure = tls.connect({ socket: raw.socket, servername: 'capulet.lit', rejectUnauthorized: false });
  await new Promise<void>((resolve, reject) => secure.once('secureConnect', resolve).once('error', reject));
  const fp = secure.getPeerCertificate().fingerprint256;
  secure.destroy();
  return fp;
}

/** The certificate a TLS listener (direct TLS, wss) offers from the first byte. */
async function directCertificate(port: number): Promise<string> {
  const secure = tls.connect({ host: '127.0.0.1', port, servername: 'capulet.lit', rejectUnauthorized: false, ALPNProtocols: ['xmpp-client', 'http/1.1'] });
  await new Promise<void>((resolve, reject) => secure.once('secureConnect', resolve).once('error', reject));
  const fp = secure.getPeerCertificate().fingerprint256;
  secure.destroy();
  return fp;
}

/** The command on a free loopback port with these options, killed at the end of the test. */
async function proxyProcess(t: Test, args: string[]): Promise<{ proc: Running; port: number }> {
  const port = await freePort();
  const proc = start(['--listen', `127.0.0.1:${port}`, ...args]);
  t.teardown(() => proc.child.kill('SIGKILL'));
  await proc.waitLog((l) => l.msg === 'listening');
  return { proc, port };
}

const fingerprint = (pem: string) => new X509Certificate(pem).fingerprint256;

for (const kind of ['ejabberd', 'prosody'] as const) {
  t.test(`signals on ${kind}`, async (t) => {
    const backend: Backend = kind === 'ejabberd' ? await startEjabberd({ users: USERS }) : await startProsody({ users: USERS });
    t.teardown(() => backend.stop());
    // romeo watches through an in-process proxy; juliet uses the proxy process under test
    const watcher = await startTestProxy(backend);
    t.teardown(() => watcher.stop());
    const { login, online } = sessions(t, PASSWORD, () => watcher);
    {
      const juliet = await login('juliet', 'capulet.lit', 'setup');
      const romeo = await login('romeo', 'montague.lit', 'setup');
      await Promise.all([online(juliet), online(romeo)]);
      await subscribe(romeo, juliet);
      await Promise.all([juliet.stop(), romeo.stop()]);
    }
    const tlsArgs = ['--tls-cert', join(CERTS, 'cert.pem'), '--tls-key', join(CERTS, 'key.pem')];

    t.test('SIGTERM: contacts see the user leave before <system-shutdown/>, exit 0', async (t) => {
      // the backend leg through a recorder: when the backend acknowledged the unavailability
      const cap = await startCapture(backend.host, backend.port);
      t.teardown(() => cap.stop());
      const { proc, port } = await proxyProcess(t, ['--upstream', `tcp://127.0.0.1:${cap.port}`, '--upstream-tls', 'off', ...tlsArgs, '--drain-timeout', '8']);
      const romeo = await login('romeo', 'montague.lit', 'watching');
      await online(romeo);
      const juliet = await available(port, 'leaving');
      await waitFor(romeo, isPresence('juliet@capulet.lit/leaving'));
      let sawGone = 0;
      romeo.on('stanza', (s: Element) => {
        if (!sawGone && isPresence('juliet@capulet.lit/leaving', 'unavailable')(s)) sawGone = performance.now();
      });
      proc.child.kill('SIGTERM');
      await juliet.expect(SHUTDOWN, 10_000);
      const shutdownAt = performance.now();
      await juliet.waitClosed();
      await waitFor(romeo, isPresence('juliet@capulet.lit/leaving', 'unavailable'));
      t.equal(await proc.exited, 0, 'exit 0');
      t.ok(sawGone > 0 && sawGone < shutdownAt, `romeo saw juliet go unavailable (${sawGone.toFixed(1)}) before her stream was shut down (${shutdownAt.toFixed(1)})`);
      // causal, whatever the timing: the backend's answer to the unavailability had reached the proxy
      const timeline = cap.timeline();
      const up = timeline.filter((c) => c.toBackend);
      const publish = up.find((c) => /<publish node=["']presence["']>.*type=["']unavailable["']/s.test(c.text));
      t.ok(publish, 'the proxy published the unavailability');
      const id = /<iq[^>]* id=["']([^"']+)["'][^>]*>(?:(?!<iq).)*type=["']unavailable["']/s.exec(publish!.text)?.[1];
      t.ok(id, 'its request id');
      const ack = timeline.find((c) => !c.toBackend && c.at >= publish!.at && new RegExp(`id=["']${id}["']`).test(c.text));
      t.ok(ack, 'the backend answered it');
      t.ok(ack!.at < shutdownAt, 'that answer reached the proxy before juliet got <system-shutdown/>');
      t.ok(proc.lines.some((l) => l.msg === 'shutting down' && l.signal === 'SIGTERM' && l.drainTimeoutMs === 8000), 'logged with the drain time-out');
      t.ok(proc.lines.some((l) => l.msg === 'drained'), 'drained');
      await romeo.stop();
    });

    t.test('SIGTERM with a backend that stopped answering: exit 0 within --drain-timeout', async (t) => {
      const cap = await startCapture(backend.host, backend.port);
      t.teardown(() => cap.stop());
      const { proc, port } = await proxyProcess(t, ['--upstream', `tcp://127.0.0.1:${cap.port}`, '--upstream-tls', 'off', ...tlsArgs, '--drain-timeout', '2']);
      const juliet = await available(port, 'stuck');
      await juliet.expect(/<presence[^>]*from=["']juliet@capulet.lit\/stuck["']/, 10_000); // her own presence: published
      cap.freeze(); // the unavailability publish will get no answer
      const started = Date.now();
      proc.child.kill('SIGTERM');
      await juliet.expect(SHUTDOWN, 10_000);
      t.equal(await proc.exited, 0, 'exit 0');
      const took = Date.now() - started;
      t.ok(took >= 1800 && took < 5000, `exited after ${took} ms (--drain-timeout 2)`);
    });

    t.test('SIGHUP: new connections get the new certificate, sessions stay; a bad one is refused', async (t) => {
      const dir = mkdtempSync(join(tmpdir(), 'xep207-hup-'));
      t.teardown(() => rmSync(dir, { recursive: true, force: true }));
      const cert = join(dir, 'cert.pem');
      const key = join(dir, 'key.pem');
      copyFileSync(join(CERTS, 'cert.pem'), cert);
      copyFileSync(join(CERTS, 'key.pem'), key);
      const [tlsPort, wsPort] = [await freePort(), await freePort()];
      const { proc, port } = await proxyProcess(t, ['--upstream', `tcp://127.0.0.1:${backend.port}`, '--upstream-ca', join(CERTS, 'ca.pem'), '--tls-cert', cert, '--tls-key', key, '--listen-tls', `127.0.0.1:${tlsPort}`, '--listen-ws', `127.0.0.1:${wsPort}`]);
      const oldFp = fingerprint(readFileSync(cert, 'utf8'));
      t.equal(await directCertificate(tlsPort), oldFp, 'direct TLS: the old certificate before the reload');
      t.equal(await directCertificate(wsPort), oldFp, 'wss: the old certificate before the reload');
      const old = await RawClient.login(port, 'capulet.lit', 'juliet', PASSWORD, 'before-hup');
      t.equal((old.socket as tls.TLSSocket).getPeerCertificate().fingerprint256, oldFp, 'the old session has the old certificate');

      // a renewal: a new key and certificate written next to the old ones, moved into place
      execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '2', '-subj', '/CN=capulet.lit', '-addext', 'subjectAltName=DNS:capulet.lit', '-keyout', join(dir, 'new-key.pem'), '-out', join(dir, 'new-cert.pem')], { stdio: 'ignore' });
      renameSync(join(dir, 'new-key.pem'), key);
      renameSync(join(dir, 'new-cert.pem'), cert);
      const newFp = fingerprint(readFileSync(cert, 'utf8'));
      t.not(newFp, oldFp);
      proc.child.kill('SIGHUP');
      await proc.waitLog((l) => l.msg === 'TLS certificate reloaded');
      t.equal(await offeredCertificate(port), newFp, 'a new connection gets the new certificate');
      t.equal(await directCertificate(tlsPort), newFp, 'and over direct TLS (XEP-0368)');
      t.equal(await directCertificate(wsPort), newFp, 'and over wss');
      old.send("<iq type='get' id='still-there' to='capulet.lit'><ping xmlns='urn:xmpp:ping'/></iq>");
      await old.expect(/<iq[^>]*id=["']still-there["'][^>]*type=["']result["']|<iq[^>]*type=["']result["'][^>]*id=["']still-there["']/);
      t.pass('the old session is still up');

      writeFileSync(key, 'not a key\n');
      proc.child.kill('SIGHUP');
      await proc.waitLog((l) => l.msg === 'SIGHUP: TLS certificate not reloaded, the old one stays');
      t.equal(await offeredCertificate(port), newFp, 'a broken key: the certificate loaded last stays');
      const later = await RawClient.login(port, 'capulet.lit', 'juliet', PASSWORD, 'after-bad-hup', false);
      later.close();
      t.notOk(proc.lines.some((l) => 'stderr' in l), 'nothing on stderr');
      proc.child.kill('SIGTERM');
      t.equal(await proc.exited, 0);
      old.close();
    });
  });
}
