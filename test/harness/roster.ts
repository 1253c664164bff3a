// What the roster and presence tests share: @xmpp/client sessions that log in through a proxy and
// are stopped at the end of the test, roster reads, and matchers for presence and roster pushes.
import type { Test } from 'tap';
import type { Element } from 'ltx';
import { connect, waitFor, xml, type XmppClient } from './xmpp.js';

export type Client = XmppClient & { received: Element[] };

export const NS_ROSTER = 'jabber:iq:roster';

/** The cast of the roster and presence tests, each with this password. */
export const PASSWORD = 'secret';
export const USERS: Array<[string, string, string]> = [
  ['juliet', 'capulet.lit', PASSWORD],
  ['nurse', 'capulet.lit', PASSWORD],
  ['romeo', 'montague.lit', PASSWORD],
  ['benvolio', 'montague.lit', PASSWORD],
];

export async function rosterOf(c: Client): Promise<Map<string, Element>> {
  const res = await c.iqCaller.request(xml('iq', { type: 'get' }, xml('query', { xmlns: NS_ROSTER })));
  const query = res.getChild('query', NS_ROSTER)!;
  return new Map(query.getChildren('item').map((i: Element) => [i.attrs.jid as string, i] as const));
}

export const isPresence = (from: string, type?: string) => (s: Element) =>
  s.name === 'presence' && s.attrs.from === from && (type === undefined ? s.attrs.type === undefined : s.attrs.type === type);

export const isPush = (jid: string, attrs: Record<string, string | undefined>) => (s: Element) => {
  if (s.name !== 'iq' || s.attrs.type !== 'set') return false;
  const item = s.getChild('query', NS_ROSTER)?.getChild('item');
  if (!item || item.attrs.jid !== jid) return false;
  return Object.entries(attrs).every(([k, v]) => item.attrs[k] === v);
};

/**
 * login(): a session through `proxy()` (or another instance), stopped when the test ends;
 * online(): fetch the roster (an interested resource, as real clients are), then initial presence.
 */
export function sessions(t: Test, password: string, proxy: () => { port: number }) {
  const clients: Client[] = [];
  t.teardown(() => Promise.all(clients.map((c) => c.stop().catch(() => undefined))));
  const login = async (user: string, domain: string, resource: string, px: { port: number } = proxy()) => {
    const c = (await connect({ port: px.port, domain, username: user, password, resource })) as Client;
    clients.push(c);
    return c;
  };
  const online = async (c: Client, ...children: Element[]) => {
    await rosterOf(c);
    await c.send(xml('presence', {}, ...children));
  };
  return { login, online };
}

/** `from` gets `to`'s presence: from subscribes, to approves. */
export async function subscribe(from: Client, to: Client): Promise<void> {
  const fromBare = from.jid!.bare().toString();
  const toBare = to.jid!.bare().toString();
  await from.send(xml('presence', { to: toBare, type: 'subscribe' }));
  await waitFor(to, isPresence(fromBare, 'subscribe'));
  await to.send(xml('presence', { to: fromBare, type: 'subscribed' }));
  await waitFor(from, (s: Element) => isPush(toBare, { subscription: 'to' })(s) || isPush(toBare, { subscription: 'both' })(s));
}

/**
 * Two online sessions, `a` of user `aJid` and `b` of `bJid`, make their users share presence both
 * ways (a request each, each approved), and wait for both rosters to say `both`.
 */
async function subscribeBothWays(a: Client, aJid: string, b: Client, bJid: string): Promise<void> {
  await b.send(xml('presence', { to: aJid, type: 'subscribe' }));
  await waitFor(a, isPresence(bJid, 'subscribe'));
  await a.send(xml('presence', { to: bJid, type: 'subscribed' }));
  await a.send(xml('presence', { to: bJid, type: 'subscribe' }));
  await waitFor(b, isPresence(aJid, 'subscribe'));
  await b.send(xml('presence', { to: aJid, type: 'subscribed' }));
  await waitFor(a, isPush(bJid, { subscription: 'both' }));
  await waitFor(b, isPush(aJid, { subscription: 'both' }));
}

/**
 * Every one of `users` logs in once (their nodes exist after a first login), then juliet@capulet.lit
 * and romeo@montague.lit (through `romeoProxy` if given) share presence both ways.
 */
export async function enrolAndPair(s: ReturnType<typeof sessions>, users: ReadonlyArray<readonly [string, string, string]>, romeoProxy?: { port: number }): Promise<void> {
  for (const [u, d] of users) await (await s.login(u, d, 'first')).stop();
  const juliet = await s.login('juliet', 'capulet.lit', 'setup');
  const romeo = await s.login('romeo', 'montague.lit', 'setup', romeoProxy);
  await Promise.all([s.online(juliet), s.online(romeo)]);
  await subscribeBothWays(juliet, 'juliet@capulet.lit', romeo, 'romeo@montague.lit');
  await Promise.all([juliet.stop(), romeo.stop()]);
}
