// Issue 9 point 4: a real browser. Debian's chromium, driven by playwright-core, loads a page served
// here on loopback with @xmpp/client's browser bundle; two users (two browser contexts) log in over
// WebSocket through the proxy, subscribe to each other and see each other's presence, chat both
// ways and join a room together, on ejabberd and on Prosody. The proxy checks the page's Origin.
import t from 'tap';
import http from 'node:http';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import type { Element } from 'ltx';
import { chromium, type Browser, type Page } from 'playwright-core';
import { ROOT, ensurePackage } from './harness/common.js';
import { parseElement } from '../src/stream/xml.js';
import { startEjabberd } from './harness/ejabberd.js';
import { startProsody } from './harness/prosody.js';
import { SERVICE_CONFIG, SERVICE_USER, startTestProxy } from './harness/proxy.js';

const CHROMIUM = '/usr/bin/chromium';
const USERS: Array<[string, string, string]> = [
  ['juliet', 'capulet.lit', 'secret'],
  ['romeo', 'montague.lit', 'secret'],
];
const JULIET = 'juliet@capulet.lit';
const ROMEO = 'romeo@montague.lit';
const ROOM = 'tomb@conference.capulet.lit';
const MUC_USER = 'http://jabber.org/protocol/muc#user';

/** The page and the files it loads, from loopback. */
async function servePage(): Promise<{ origin: string; close(): Promise<void> }> {
  const files: Record<string, [string, string]> = {
    '/': ['text/html', '<!doctype html><meta charset="utf-8"><title>xep207-proxy browser test</title><script src="/xmpp.min.js"></script><script src="/page.js"></script>'],
    '/xmpp.min.js': ['text/javascript', readFileSync(join(ROOT, 'node_modules', '@xmpp', 'client', 'dist', 'xmpp.min.js'), 'utf8')],
    '/page.js': ['text/javascript', readFileSync(join(ROOT, 'test', 'browser', 'page.js'), 'utf8')],
  };
  const server = http.createServer((req, res) => {
    const f = files[req.url ?? ''];
    res.writeHead(f ? 200 : 404, { 'Content-Type': f?.[0] ?? 'text/plain' });
    res.end(f?.[1] ?? 'not found');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return { origin: `http://127.0.0.1:${port}`, close: () => new Promise((resolve) => server.close(() => resolve())) };
}

/** What the page's client received, parsed. */
async function received(page: Page): Promise<Element[]> {
  const texts = await page.evaluate(() => (globalThis as unknown as { received: string[] }).received);
  return texts.filter((s) => s.startsWith('<')).map((s) => parseElement(s));
}

/** Wait until the page's client received a stanza matching `pred`. */
async function waitIn(page: Page, pred: (s: Element) => boolean, what: string, timeoutMs = 20_000): Promise<Element> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const found = (await received(page)).find(pred);
    if (found) return found;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; got: ${(await received(page)).map(String).slice(-5).join(' | ')}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

const presenceFrom = (from: string, type?: string) => (s: Element) => s.name === 'presence' && s.attrs.from === from && s.attrs.type === type;
const chatFrom = (from: string, body: string) => (s: Element) => s.name === 'message' && s.attrs.from === from && s.getChildText('body') === body;

t.test('a browser client over WebSocket', async (t) => {
  ensurePackage(CHROMIUM, ['chromium']); // .ci/setup installs it; as root a bare machine gets it here
  const page = await servePage();
  t.teardown(() => page.close());
  const browser: Browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'], headless: true });
  t.teardown(() => browser.close());

  for (const kind of ['ejabberd', 'prosody'] as const) {
    t.test(`on ${kind}: presence, chat both ways, a room together`, async (t) => {
      const backend = kind === 'ejabberd' ? await startEjabberd({ users: USERS }) : await startProsody({ users: [...USERS, SERVICE_USER] });
      t.teardown(() => backend.stop());
      const proxy = await startTestProxy(backend, {
        tlsCert: undefined,
        tlsKey: undefined,
        listenWs: { host: '127.0.0.1', port: 0 },
        wsOrigins: [page.origin],
        ...(kind === 'prosody' ? SERVICE_CONFIG : {}),
      });
      t.teardown(() => proxy.stop());
      const service = `ws://127.0.0.1:${proxy.proxy.addresses!.ws!.port}/ws`;

      const open = async () => {
        const ctx = await browser.newContext();
        t.teardown(() => ctx.close());
        const p = await ctx.newPage();
        await p.goto(page.origin + '/');
        return p;
      };
      const [juliet, romeo] = await Promise.all([open(), open()]);
      const login = (p: Page, user: string, domain: string) =>
        p.evaluate(([s, d, u]) => (globalThis as unknown as { login(...a: string[]): Promise<string> }).login(s!, d!, u!, 'secret', 'web'), [service, domain, user]);
      t.equal(await login(juliet, 'juliet', 'capulet.lit'), `${JULIET}/web`, 'juliet logged in from the browser');
      t.equal(await login(romeo, 'romeo', 'montague.lit'), `${ROMEO}/web`, 'romeo logged in from the browser');
      type W = {
        rosterGet(): Promise<string>;
        presence(attrs: Record<string, string>, status?: string): Promise<void>;
        chat(to: string, body: string): Promise<void>;
        join(roomNick: string): Promise<void>;
        instantRoom(room: string): Promise<string>;
        groupchat(room: string, body: string): Promise<void>;
      };
      const w = (p: Page) => ({
        online: () => p.evaluate(async () => {
          await (globalThis as unknown as W).rosterGet();
          await (globalThis as unknown as W).presence({});
        }),
        presence: (attrs: Record<string, string>, status?: string) => p.evaluate(([a, s]) => (globalThis as unknown as W).presence(a as Record<string, string>, s as string | undefined), [attrs, status] as const),
        chat: (to: string, body: string) => p.evaluate(([to, body]) => (globalThis as unknown as W).chat(to!, body!), [to, body]),
        join: (roomNick: string) => p.evaluate((rn) => (globalThis as unknown as W).join(rn), roomNick),
        instantRoom: (room: string) => p.evaluate((r) => (globalThis as unknown as W).instantRoom(r), room),
        groupchat: (room: string, body: string) => p.evaluate(([r, b]) => (globalThis as unknown as W).groupchat(r!, b!), [room, body]),
      });
      const J = w(juliet);
      const R = w(romeo);
      await Promise.all([J.online(), R.online()]);

      // a mutual subscription, then each one's presence reaches the other
      await J.presence({ to: ROMEO, type: 'subscribe' });
      await waitIn(romeo, presenceFrom(JULIET, 'subscribe'), "juliet's request");
      await R.presence({ to: JULIET, type: 'subscribed' });
      await R.presence({ to: JULIET, type: 'subscribe' });
      await waitIn(juliet, presenceFrom(ROMEO, 'subscribe'), "romeo's request");
      await J.presence({ to: ROMEO, type: 'subscribed' });
      await J.presence({}, 'at the balcony');
      await R.presence({}, 'in the orchard');
      const jp = await waitIn(romeo, (s) => presenceFrom(`${JULIET}/web`)(s) && s.getChildText('status') === 'at the balcony', "juliet's presence");
      t.ok(jp, "romeo's browser sees juliet's presence");
      await waitIn(juliet, (s) => presenceFrom(`${ROMEO}/web`)(s) && s.getChildText('status') === 'in the orchard', "romeo's presence");
      t.pass("juliet's browser sees romeo's presence");

      // chat both ways
      await J.chat(`${ROMEO}/web`, 'Wherefore art thou?');
      await waitIn(romeo, chatFrom(`${JULIET}/web`, 'Wherefore art thou?'), "juliet's message");
      await R.chat(`${JULIET}/web`, 'Here, below.');
      await waitIn(juliet, chatFrom(`${ROMEO}/web`, 'Here, below.'), "romeo's answer");
      t.pass('chat both ways');

      // a room together
      await J.join(`${ROOM}/Juliet`);
      const self = await waitIn(juliet, (s) => presenceFrom(`${ROOM}/Juliet`)(s) && s.getChild('x', MUC_USER) !== undefined, 'juliet in the room');
      if ((self.getChild('x', MUC_USER)?.getChildren('status') ?? []).some((c: Element) => c.attrs.code === '201')) {
        t.equal(await J.instantRoom(ROOM), 'result', 'juliet made it an instant room');
      }
      await R.join(`${ROOM}/Romeo`);
      await waitIn(romeo, presenceFrom(`${ROOM}/Juliet`), 'juliet seen in the room by romeo');
      await waitIn(juliet, presenceFrom(`${ROOM}/Romeo`), 'romeo seen in the room by juliet');
      await R.groupchat(ROOM, 'Thus with a kiss');
      await waitIn(juliet, (s) => s.name === 'message' && s.attrs.type === 'groupchat' && s.attrs.from === `${ROOM}/Romeo` && s.getChildText('body') === 'Thus with a kiss', "romeo's groupchat");
      await waitIn(romeo, (s) => s.name === 'message' && s.attrs.type === 'groupchat' && s.attrs.from === `${ROOM}/Romeo`, 'the echo');
      t.pass('both in the room, a groupchat message seen by both');

      await Promise.all([juliet, romeo].map((p) => p.evaluate(() => (globalThis as unknown as { logout(): Promise<void> }).logout())));
    });
  }
});
