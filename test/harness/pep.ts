// What the PEP tests share: a client that advertises XEP-0115 caps (and answers their disco#info),
// pubsub requests as a client writes them, and a matcher for PEP notifications.
import { createHash } from 'node:crypto';
import type { Element } from 'ltx';
import { xml } from './xmpp.js';
import type { Client } from './roster.js';

export const NS_DISCO_INFO = 'http://jabber.org/protocol/disco#info';
export const NS_CAPS = 'http://jabber.org/protocol/caps';
export const NS_PUBSUB = 'http://jabber.org/protocol/pubsub';
export const NS_PUBSUB_EVENT = 'http://jabber.org/protocol/pubsub#event';
const CAPS_NODE = 'https://xep207-proxy.example/test';

/** XEP-0115 verification string of a client with one identity and these features. */
export function capsVer(features: string[]): string {
  const s = `client/pc//xep207-test<${[...features].sort().map((f) => `${f}<`).join('')}`;
  return createHash('sha1').update(s).digest('base64');
}

const advertised = new WeakMap<Client, string[]>();

/**
 * Make a client answer disco#info for its caps node with these features (a later call changes them)
 * and return the <c/> to put in its presence.
 */
export function advertise(c: Client, features: string[]): Element {
  const all = [NS_DISCO_INFO, ...features];
  if (!advertised.has(c)) {
    c.iqCallee.get(NS_DISCO_INFO, 'query', (ctx: { element: Element }) => {
      const node = ctx.element.attrs.node as string | undefined;
      return xml('query', { xmlns: NS_DISCO_INFO, ...(node ? { node } : {}) }, xml('identity', { category: 'client', type: 'pc', name: 'xep207-test' }), ...advertised.get(c)!.map((v) => xml('feature', { var: v })));
    });
  }
  advertised.set(c, all);
  return xml('c', { xmlns: NS_CAPS, hash: 'sha-1', node: CAPS_NODE, ver: capsVer(all) });
}

/** A PEP notification (or last item) of `node`, from `from` if given. */
export const isEvent = (node: string, from?: string) => (s: Element) =>
  s.name === 'message' && (from === undefined || s.attrs.from === from) && s.getChild('event', NS_PUBSUB_EVENT)?.getChild('items')?.attrs.node === node;

/** The first item of a notification. */
export function eventItem(s: Element): Element | undefined {
  return s.getChild('event', NS_PUBSUB_EVENT)?.getChild('items')?.getChild('item');
}

/** A publish to the client's own PEP service, with publish-options when `access` is given. */
export function publishIq(node: string, id: string, payload: Element, access?: string): Element {
  const options = access
    ? xml('publish-options', {}, xml('x', { xmlns: 'jabber:x:data', type: 'submit' }, xml('field', { var: 'FORM_TYPE', type: 'hidden' }, xml('value', {}, 'http://jabber.org/protocol/pubsub#publish-options')), xml('field', { var: 'pubsub#access_model' }, xml('value', {}, access))))
    : null;
  return xml('iq', { type: 'set' }, xml('pubsub', { xmlns: NS_PUBSUB }, xml('publish', { node }, xml('item', { id }, payload)), ...(options ? [options] : [])));
}

/** Read items of `node` at `service` (one by id if given): the items, or the error condition. */
export async function readItems(c: Client, service: string, node: string, id?: string): Promise<Element[] | string> {
  try {
    const res = await c.iqCaller.request(xml('iq', { type: 'get', to: service }, xml('pubsub', { xmlns: NS_PUBSUB }, xml('items', { node }, ...(id ? [xml('item', { id })] : [])))));
    return res.getChild('pubsub')?.getChild('items')?.getChildren('item') ?? [];
  } catch (e) {
    return (e as { condition?: string }).condition ?? String(e);
  }
}
