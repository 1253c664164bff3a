// Reading XEP-0060 notifications (§7.1.2.1 items, §7.2.2.1 retract, §8.8.4 subscription state) and
// the §8.6 subscription authorization form a service sends to a node owner.
import type { Element } from 'ltx';
import type { Stanza } from '../stream/stanza.js';
import { NS_DATA, NS_PUBSUB, NS_PUBSUB_EVENT } from '../xmpp/ns.js';
import { FORM_SUBSCRIBE_AUTHORIZATION, formFields } from './forms.js';

export interface PublishedItem {
  id: string;
  /** the publisher the service stamped (ejabberd: a full JID, Prosody: a bare JID), if it did */
  publisher?: string;
  payload: Element | undefined;
}

export interface PubsubEvent {
  /** the service that sent it (for PEP: the node owner's bare JID) */
  service: string;
  node: string;
  items: PublishedItem[];
  retracts: string[];
}

function payloadOf(item: Element): Element | undefined {
  return item.children.find((c): c is Element => typeof c !== 'string');
}

/** An items/retract notification, or undefined if `message` is not one. */
export function parseItemsEvent(message: Element): PubsubEvent | undefined {
  const event = message.getChild('event', NS_PUBSUB_EVENT);
  const items = event?.getChild('items');
  if (!event || !items) return undefined;
  const node = items.attrs.node as string | undefined;
  if (!node) return undefined;
  const out: PubsubEvent = { service: (message.attrs.from as string | undefined) ?? '', node, items: [], retracts: [] };
  for (const c of items.children) {
    if (typeof c === 'string') continue;
    if (c.name === 'item') {
      const it: PublishedItem = { id: (c.attrs.id as string | undefined) ?? '', payload: payloadOf(c) };
      if (c.attrs.publisher) it.publisher = c.attrs.publisher as string;
      out.items.push(it);
    } else if (c.name === 'retract' && c.attrs.id) {
      out.retracts.push(c.attrs.id as string);
    }
  }
  return out;
}

const parsed = new WeakMap<Stanza, PubsubEvent | null>();

/**
 * What the last stanza looked at mentions: bit 1 the pubsub namespaces (their common prefix, which
 * also starts every pubsub form type), bit 2 pubsub#event. The rules of the backend lane ask one
 * after the other about the same stanza (six of them, for every message the backend routes), so one
 * look at its bytes does for all. One stanza held per process.
 */
let looked: Stanza | undefined;
let mentions = 0;

function mentionsOf(s: Stanza): number {
  if (s !== looked) {
    const at = s.raw.indexOf(NS_PUBSUB);
    mentions = at === -1 ? 0 : s.raw.includes(NS_PUBSUB_EVENT, at) ? 3 : 1;
    looked = s;
  }
  return mentions;
}

/** The stanza's bytes name a pubsub namespace or form type somewhere (a cheap look before a parse). */
export function mentionsPubsub(s: Stanza): boolean {
  return (mentionsOf(s) & 1) !== 0;
}

/** The stanza's bytes name pubsub#event somewhere. */
export function mentionsPubsubEvent(s: Stanza): boolean {
  return (mentionsOf(s) & 2) !== 0;
}

/**
 * The items/retract notification a stanza from the backend carries, if any. Parsed once per stanza
 * (several rules look at the same notification); a cheap look at the bytes first, because most
 * messages are not pubsub events and need no tree.
 */
export function eventOf(s: Stanza): PubsubEvent | undefined {
  if (s.name !== 'message' || !mentionsPubsubEvent(s)) return undefined;
  let ev = parsed.get(s);
  if (ev === undefined) {
    ev = parseItemsEvent(s.el) ?? null;
    parsed.set(s, ev);
  }
  return ev ?? undefined;
}

/** Items of an items-retrieval result (§6.5). */
export function itemsOfResult(result: Element): PublishedItem[] {
  const items = result.getChild('pubsub')?.getChild('items');
  if (!items) return [];
  return items.getChildren('item').map((c) => {
    const it: PublishedItem = { id: (c.attrs.id as string | undefined) ?? '', payload: payloadOf(c) };
    if (c.attrs.publisher) it.publisher = c.attrs.publisher as string;
    return it;
  });
}

/** §8.6: a subscription authorization form for `node`? (ejabberd sends one for authorize nodes) */
export function isAuthorizationRequest(message: Element, node: string): boolean {
  const x = message.getChild('x', NS_DATA);
  if (!x) return false;
  const f = formFields(x);
  return f.get('FORM_TYPE')?.[0] === FORM_SUBSCRIBE_AUTHORIZATION && f.get('pubsub#node')?.[0] === node;
}
