// XEP-0207 §3: presence is pubsub. A client's broadcast presence becomes an item of the user's
// `presence` node (item id = resource, payload the <presence/> with the bound full JID as `from`);
// the node's notifications become <presence/> stanzas for the contacts' clients (and the user's
// other resources). At initial presence the proxy does what a server's probes do: it reads the
// current items of every contact the user is subscribed to, and of the user's own node. When a
// client goes away without saying so, the proxy publishes its unavailability for it.
import { clone, type Element } from 'ltx';
import { eventOf, itemsOfResult, type PublishedItem } from '../pubsub/events.js';
import * as ps from '../pubsub/requests.js';
import { ownString } from '../stream/chars.js';
import { detached, xml } from '../stream/xml.js';
import { bareOf } from '../xmpp/jid.js';
import { NS_CAPS, NS_CLIENT } from '../xmpp/ns.js';
import { StanzaError, errorReply } from '../xmpp/stanza-error.js';
import { NS_ALIVE, isAlive } from './alive.js';
import { NODE_PRESENCE, accountOf, hasAccount, type Account } from './account.js';
import { hasFrom, hasTo, isSubscriptionType } from './subscription-states.js';
import type { Rule, RuleContext } from './types.js';
import type { RosterEntry } from './roster-item.js';

export { NS_ALIVE } from './alive.js';

/** The pubsub payload for a client's broadcast presence: `from` is the bound JID, never the client's. */
export function presencePayload(client: Element, fullJid: string): Element {
  const attrs: Record<string, string> = { ...(client.attrs as Record<string, string>), xmlns: NS_CLIENT, from: fullJid };
  delete attrs.to;
  const p = xml('presence', attrs);
  for (const c of client.children) p.children.push(c);
  return p;
}

/** The legacy presence a client gets for a published (or retracted) item. */
export function presenceFromItem(payload: Element, to: string): Element {
  const attrs: Record<string, string> = { ...(payload.attrs as Record<string, string>), to };
  delete attrs.xmlns;
  const p = xml('presence', attrs);
  p.children = payload.children;
  return p;
}

function unavailableFrom(from: string, to: string): Element {
  return xml('presence', { from, to, type: 'unavailable' });
}

/** Is this an item a contact's node may hold: a <presence/> from that contact, its id the resource? */
function validItem(service: string, item: PublishedItem): Element | undefined {
  const p = item.payload;
  if (!p || p.name !== 'presence' || typeof p.attrs.from !== 'string') return undefined;
  const from = p.attrs.from as string;
  if (bareOf(from).toLowerCase() !== service || from.slice(from.indexOf('/') + 1) !== item.id) return undefined;
  return p;
}

function cachedOf(account: Account, contact: string): Map<string, Element> | undefined {
  return account.contactPresence?.get(contact);
}

function cacheOf(account: Account, contact: string): Map<string, Element> {
  account.contactPresence ??= new Map();
  let m = account.contactPresence.get(contact);
  if (!m) account.contactPresence.set(ownString(contact), (m = new Map())); // kept: own copies (chars.ts)
  return m;
}

/**
 * While probes run, the resources that notifications told about: a probe's answer about them is older
 * than what the notification said (a resource that logged out while the probe checked whether it is
 * alive must not come back as available).
 */
function touch(account: Account, full: string): void {
  if (account.probing > 0) (account.touched ??= new Set()).add(full);
}

/** A presence item of `service` arrived (notification or probe): remember it, deliver it. */
function seen(account: Account, service: string, payload: Element, probe: boolean): void {
  const full = payload.attrs.from as string;
  if (!probe) touch(account, full);
  else if (account.touched?.has(full)) return;
  const resource = full.slice(service.length + 1);
  const unavailable = payload.attrs.type === 'unavailable';
  if (service === account.bare && resource === account.ctx.jid.resource) {
    // the echo of this session's own presence: only its priority is kept, not the element (an idle
    // session keeps no cache)
    if (unavailable) {
      const known = account.echoPriority !== undefined;
      account.echoPriority = undefined;
      if (probe || !known) return;
    } else {
      account.echoPriority = priorityOf(payload);
    }
  } else if (unavailable) {
    const known = forget(account, service, resource);
    if (probe || !known) return; // nothing to say about a resource nobody saw
  } else {
    cacheOf(account, service).set(ownString(resource), detached(payload)); // not the notification it came in (xml.ts)
  }
  if (account.available) account.ctx.toClient(presenceFromItem(payload, account.full));
}

/** RFC 6121 §4.7.2.3: a presence's priority (0 when absent or not an integer). */
export function priorityOf(p: Element | undefined): number {
  const n = Number(p?.getChildText('priority') ?? 0);
  return Number.isInteger(n) ? n : 0;
}

/** Forget a cached resource; whether it was known. */
function forget(account: Account, service: string, resource: string): boolean {
  if (service === account.bare && resource === account.ctx.jid.resource) {
    const known = account.echoPriority !== undefined;
    account.echoPriority = undefined;
    return known;
  }
  return cachedOf(account, service)?.delete(resource) ?? false;
}

function gone(account: Account, service: string, resource: string): void {
  touch(account, `${service}/${resource}`);
  if (forget(account, service, resource) && account.available) {
    account.ctx.toClient(unavailableFrom(`${service}/${resource}`, account.full));
  }
}

/** What a server's presence probe does: read the contact's current items. */
async function probe(account: Account, service: string, skip?: string): Promise<void> {
  account.probing++;
  try {
    const res = await account.ctx.request(ps.items(service === account.bare ? undefined : service, NODE_PRESENCE)).catch(() => undefined);
    if (!res) return;
    const items = itemsOfResult(res)
      .filter((item) => item.id !== skip)
      .map((item) => validItem(service, item))
      .filter((p): p is Element => p !== undefined && p.attrs.type !== 'unavailable');
    // an item whose session is gone (its proxy died before it could say so) is not presence
    const alive = await Promise.all(items.map((p) => isAlive(account.ctx, p.attrs.from as string)));
    items.forEach((p, i) => {
      if (alive[i]) seen(account, service, p, true);
    });
  } finally {
    if (--account.probing === 0) account.touched = undefined;
  }
}

/** Publish this resource's presence item; true if it took a second publish (after putting the node's configuration back). */
async function publishPresence(account: Account, payload: Element): Promise<boolean> {
  const resource = account.ctx.jid.resource;
  const options = { 'pubsub#access_model': account.profile.presenceAccessModel };
  try {
    await account.ctx.request(ps.publish(undefined, NODE_PRESENCE, resource, payload, options));
    return false;
  } catch (err) {
    // the node's configuration drifted (publish-options precondition): put ours back, try once more
    if (!(err instanceof StanzaError && (err.condition === 'conflict' || err.condition === 'precondition-not-met'))) throw err;
    await account.ctx.request(ps.configureNode(NODE_PRESENCE, account.nodeConfig(NODE_PRESENCE)));
    await account.ctx.request(ps.publish(undefined, NODE_PRESENCE, resource, payload, options));
    return true;
  }
}

/**
 * The backend leg's own presence carries the client's entity capabilities (XEP-0115), and nothing
 * else of the user's: the backend learns each session's +notify interests from them (XEP-0163 §4:
 * the user's own PEP notifications; Prosody sends none without them) and asks the client for the
 * caps node's disco#info, which passes through. `caps` undefined: the client is unavailable.
 */
function upstreamCaps(account: Account, caps: Element | undefined): void {
  const key = caps?.toString();
  if (key === account.upstreamCaps) return;
  account.upstreamCaps = key;
  account.ctx.toBackend(xml('presence', null, caps ? clone(caps) : null));
}

/** The resource goes unavailable: publish it (with the client's status, if any), then drop the item. */
async function goUnavailable(account: Account, payload: Element): Promise<void> {
  account.available = false;
  upstreamCaps(account, undefined);
  // the retraction goes in the publish's write (the backend answers in order: contacts hear of the
  // unavailable presence first), not one round trip later; a publish that had to put the node's
  // configuration back published again after it, so its item is retracted again
  const retract = () => account.ctx.request(ps.retract(undefined, NODE_PRESENCE, account.ctx.jid.resource)).catch(() => undefined);
  const published = publishPresence(account, payload);
  const retracted = retract();
  if (await published) await retract();
  await retracted;
  account.contactPresence = undefined;
  account.ownKnown = false; // the cache is gone: the next initial presence probes
  account.echoPriority = undefined;
}

async function broadcast(account: Account, client: Element): Promise<void> {
  const payload = presencePayload(client, account.full);
  if (client.attrs.type === 'unavailable') {
    if (account.available) await goUnavailable(account, payload);
    return;
  }
  const initial = !account.available;
  account.available = true; // before publishing: the node's echo is this resource's own presence
  // from here on seen() delivers what notifications say; what they said before is in the cache
  if (initial && account.ownKnown) deliverOwn(account);
  account.priority = priorityOf(client);
  upstreamCaps(account, client.getChild('c', NS_CAPS));
  const published = publishPresence(account, payload);
  if (!initial) {
    await published;
    return;
  }
  // What initial presence starts (the probes, the offline deliveries, the PEP catch-up) reads other
  // nodes and needs nothing from the publish's answer: its requests go out in the publish's write,
  // not one round trip later. The backend answers one session's requests in order (ejabberd runs
  // them in the session's process, Prosody in the session's queue), so what the client gets still
  // follows its own presence's echo.
  account.becameAvailable();
  const contacts = [...account.roster.values()].filter((e) => hasTo(e.subscription)).map((e) => e.jid);
  await Promise.all([published, account.ownKnown ? undefined : probe(account, account.bare, account.ctx.jid.resource), ...contacts.map((c) => probe(account, c))]);
}

/**
 * The login's read of our own presence node: items whose session is gone without a word (its proxy
 * instance died) are dropped, which tells the contacts that those resources are unavailable; the
 * others seed the cache of our own resources, which the node's notifications keep current from then
 * on, so that initial presence needs no probe of the own node (`Account.ownKnown`).
 */
async function dropStaleResources(account: Account): Promise<void> {
  const initials = account.initials;
  try {
    const read = account.takeLoginRead(NODE_PRESENCE);
    // made by this login: empty at its creation
    const res = read === 'none' ? undefined : (read ?? (await account.ctx.request(ps.items(undefined, NODE_PRESENCE)).catch(() => null)));
    if (res === null) return; // not read: initial presence probes
    for (const item of res ? itemsOfResult(res) : []) {
      if (item.id === account.ctx.jid.resource) continue;
      const full = `${account.bare}/${item.id}`;
      if (await isAlive(account.ctx, full)) {
        const p = validItem(account.bare, item);
        if (p && p.attrs.type !== 'unavailable') seen(account, account.bare, p, true);
        continue;
      }
      account.ctx.log.info({ resource: item.id }, 'stale presence item dropped');
      await account.ctx.request(ps.publish(undefined, NODE_PRESENCE, item.id, xml('presence', { xmlns: NS_CLIENT, type: 'unavailable', from: full }))).catch(() => undefined);
      await account.ctx.request(ps.retract(undefined, NODE_PRESENCE, item.id)).catch(() => undefined);
    }
    // the client sent initial presence while the checks ran: that probed the own node (and a later
    // unavailable dropped the cache), so this read says nothing about the cache now
    if (!account.available && account.initials === initials) account.ownKnown = account.ownNotifiedAtLogin;
  } finally {
    account.endLoginProbe();
  }
}

/** Our own other resources as the cache has them (never this session's own: echoPriority), for the client's initial presence. */
function deliverOwn(account: Account): void {
  for (const p of cachedOf(account, account.bare)?.values() ?? []) account.ctx.toClient(presenceFromItem(p, account.full));
}

/** Roster changes: a contact we now follow is probed, one we no longer follow goes unavailable. */
export function presenceOnChange(account: Account, prev: RosterEntry | undefined, next: RosterEntry | undefined): void {
  const had = prev !== undefined && hasTo(prev.subscription);
  const has = next !== undefined && hasTo(next.subscription);
  const contact = (next ?? prev)!.jid;
  if (has && !had && account.available) void probe(account, contact);
  if (had && !has) for (const r of [...(cachedOf(account, contact)?.keys() ?? [])]) gone(account, contact, r);
}

export const presenceRule: Rule = {
  name: 'presence',
  sees: { client: ['presence'], backend: ['message', 'iq'] },

  onBound(ctx) {
    if (!hasAccount(ctx)) return;
    void dropStaleResources(accountOf(ctx));
  },

  fromClient(s, ctx) {
    if (s.name !== 'presence') return false;
    const type = s.attrs.type;
    if (isSubscriptionType(type)) return false;
    if (type === 'error') return true; // an error about a presence the proxy delivered: nothing to do
    // what is not for the user's own JID is directed presence (directed-presence.ts, earlier in the table)
    if (type !== undefined && type !== 'unavailable') {
      ctx.toClient(errorReply(s.el, new StanzaError('bad-request', `presence type '${type}'`), ctx.domain));
      return true;
    }
    if (!hasAccount(ctx) || !accountOf(ctx).rosterLoaded) {
      ctx.toClient(errorReply(s.el, new StanzaError('internal-server-error', 'presence is unavailable'), ctx.domain));
      return true;
    }
    const account = accountOf(ctx);
    const el = s.el;
    return broadcast(account, el).then(
      () => true,
      (err: unknown) => {
        ctx.log.warn({ err: String(err) }, 'presence publish failed');
        ctx.toClient(errorReply(el, err instanceof StanzaError ? err : new StanzaError('internal-server-error'), ctx.domain));
        return true;
      },
    );
  },

  fromBackend(s, ctx) {
    // "are you still there?" (isAlive): answered for our own account and for contacts that may see
    // our presence; anybody else learns nothing (the answer a gone session would get)
    if (s.name === 'iq' && s.attrs.type === 'get' && s.childIs('alive', NS_ALIVE) && s.attrs.from) {
      const asker = bareOf(s.attrs.from).toLowerCase();
      const entry = hasAccount(ctx) ? accountOf(ctx).entry(asker) : undefined;
      const allowed = asker === ctx.bare || (entry !== undefined && hasFrom(entry.subscription));
      ctx.toBackend(allowed ? xml('iq', { type: 'result', id: s.attrs.id ?? '', to: s.attrs.from }) : errorReply(s.el, 'service-unavailable'));
      return true;
    }
    if (!hasAccount(ctx)) return false;
    const ev = eventOf(s);
    if (!ev || ev.node !== NODE_PRESENCE) return false;
    const account = accountOf(ctx);
    const service = ev.service.toLowerCase();
    // contacts' presence counts only where the roster says we are subscribed (the backend agrees,
    // unless a change is still on its way): anything else is dropped
    const entry = account.entry(service);
    if (service !== account.bare && !(entry && hasTo(entry.subscription))) return true;
    for (const item of ev.items) {
      const p = validItem(service, item);
      if (p) seen(account, service, p, false);
    }
    for (const id of ev.retracts) gone(account, service, id);
    return true;
  },

  async onClose(ctx: RuleContext) {
    if (!hasAccount(ctx)) return;
    const account = accountOf(ctx);
    // RFC 6121 §4.5.3.2: a dropped client's contacts see it go unavailable
    if (account.available) await goUnavailable(account, presencePayload(xml('presence', { type: 'unavailable' }), account.full));
  },
};
