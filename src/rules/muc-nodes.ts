// XEP-0207 §5 on the backend: where a room lives, and what its items hold.
//
// A room `room@conference.<D>` is three nodes on the pubsub service of D (`pubsub.<D>`, or the one
// --pubsub-service names for every domain), named after the room's JID so that a node name maps back
// to its room (a room JID has no '/'):
//   xep207-proxy/muc/<room>            the messages (listings 13, 15, 16): one item per groupchat
//                                      message, the last `history` of them kept for joiners
//   xep207-proxy/muc/<room>/occupants  one item per occupant, id = nick: <occupant jid nick/> + the
//                                      occupant's last presence children; notify_retract=1 (a leave)
//   xep207-proxy/muc/<room>/meta       item 'room' (who created it: the owner) and item 'subject'
//                                      (the last message with a <subject/>): never evicted by history
// Occupants subscribe their bound full JIDs to the first two (listing 13), so only the joined session
// gets room traffic. Nicks live in the occupants node: subscription options cannot carry them
// (ejabberd rejects `roomnick`, Prosody does not store it).
//
// Access and publish models are `open` on all three. A whitelist would need an owner to add each
// joiner as a member, and on ejabberd without a service account the owner is the creator's session,
// which is not there when the next user joins; `open` works on both backends with or without the
// service account. The proxy is the gate: only a session the proxy verified as an occupant publishes,
// and it writes the verified nick into the payload (clients reach the backend only through it).
// Prosody lets anybody publish to an `open` publish-model node but only publishers and owners retract:
// the service account (the owner, where there is one) retracts occupants; on ejabberd a user may
// retract its own item of an open node.
import type { Element } from 'ltx';
import type { Logger } from 'pino';
import type { BackendProfile } from '../backends/profile.js';
import type { Fields } from '../pubsub/forms.js';
import * as ps from '../pubsub/requests.js';
import { xml } from '../stream/xml.js';
import { NS_MUC } from '../xmpp/ns.js';
import { StanzaError } from '../xmpp/stanza-error.js';
import { retrying } from './retry.js';
import type { RuleContext } from './types.js';

export const NODE_MUC_PREFIX = 'xep207-proxy/muc/';
export const NS_MUC_NODES = 'urn:xep207-proxy:muc:0';
/** the default MUC service of a served domain D: `conference.<D>` (--muc-prefix) */
export const MUC_SERVICE_PREFIX = 'conference.';
export const DEFAULT_HISTORY = 20;

export type RoomNodeKind = 'messages' | 'occupants' | 'meta';

export interface RoomNodes {
  messages: string;
  occupants: string;
  meta: string;
}

export function roomNodes(room: string): RoomNodes {
  const messages = NODE_MUC_PREFIX + room;
  return { messages, occupants: `${messages}/occupants`, meta: `${messages}/meta` };
}

/** The room and kind of one of its nodes; undefined for any other node. */
export function roomOfNode(node: string): { room: string; kind: RoomNodeKind } | undefined {
  if (!node.startsWith(NODE_MUC_PREFIX)) return undefined;
  const rest = node.slice(NODE_MUC_PREFIX.length);
  const slash = rest.indexOf('/');
  if (slash === -1) return rest.includes('@') ? { room: rest, kind: 'messages' } : undefined;
  const kind = rest.slice(slash + 1);
  if (kind !== 'occupants' && kind !== 'meta') return undefined;
  return { room: rest.slice(0, slash), kind };
}

/** The served domain of a MUC service JID (`conference.capulet.lit` -> `capulet.lit`); `prefix` ends with a dot. */
export function mucDomainOf(service: string, prefix = MUC_SERVICE_PREFIX): string | undefined {
  return service.startsWith(prefix) && service.length > prefix.length ? service.slice(prefix.length) : undefined;
}

function baseConfig(profile: BackendProfile, maxItems: string, notifyRetract: boolean): Fields {
  return {
    'pubsub#access_model': 'open',
    'pubsub#publish_model': 'open',
    'pubsub#persist_items': '1',
    'pubsub#max_items': maxItems,
    'pubsub#deliver_payloads': '1',
    'pubsub#notify_retract': notifyRetract ? '1' : '0',
    'pubsub#send_last_published_item': 'never',
    ...profile.extraNodeConfig,
  };
}

export function roomNodeConfig(profile: BackendProfile, kind: RoomNodeKind, history: number): Fields {
  if (kind === 'messages') return baseConfig(profile, String(history), false);
  return baseConfig(profile, 'max', kind === 'occupants');
}

async function createIfMissing(owner: RuleContext['service'] | RuleContext, service: string, node: string, config: Fields, log: Logger): Promise<boolean> {
  try {
    await retrying(log, `create ${node}`, () => owner!.request(ps.createNode(node, config, service)));
    return true;
  } catch (err) {
    if (err instanceof StanzaError && err.condition === 'conflict') return false; // it exists
    throw err;
  }
}

/**
 * Make the room's nodes where missing, by the service account or else the joiner's session. Returns
 * whether this call created the room (its messages node): the joiner is then its creator and owner.
 */
export async function createRoom(ctx: RuleContext, profile: BackendProfile, service: string, room: string, history: number): Promise<boolean> {
  const owner = ctx.service ?? ctx;
  const nodes = roomNodes(room);
  const created = await createIfMissing(owner, service, nodes.messages, roomNodeConfig(profile, 'messages', history), ctx.log);
  // a joiner racing the creator may find the messages node before the others exist: it makes them
  await Promise.all([
    createIfMissing(owner, service, nodes.occupants, roomNodeConfig(profile, 'occupants', history), ctx.log),
    createIfMissing(owner, service, nodes.meta, roomNodeConfig(profile, 'meta', history), ctx.log),
  ]);
  if (created) await retrying(ctx.log, 'room meta', () => owner.request(ps.publish(service, nodes.meta, 'room', xml('room', { xmlns: NS_MUC_NODES, owner: ctx.bare, created: new Date().toISOString() }))));
  return created;
}

export interface Occupant {
  nick: string;
  /** the occupant's bound full JID */
  jid: string;
  /** the presence children the occupant sent (no MUC payload) */
  presence: Element[];
  /** a nick change (XEP-0045 §7.6): the nick this item replaces (retracted right after it) */
  old?: string;
  /** the proxy instance serving the occupant's session (a join checks one occupant per instance) */
  instance?: string;
}

/**
 * The occupants node item payload for a join, a presence update or (`old`) a nick change;
 * `instance`: the proxy instance that serves the session.
 */
export function occupantPayload(fullJid: string, nick: string, presence: Element, old?: string, instance?: string): Element {
  const el = xml('occupant', { xmlns: NS_MUC_NODES, jid: fullJid, nick, ...(old !== undefined ? { old } : {}), ...(instance !== undefined ? { instance } : {}) });
  for (const c of presence.children) if (typeof c !== 'string' && !(c.name === 'x' && c.attrs.xmlns === NS_MUC)) el.children.push(c);
  return el;
}

export function readOccupant(id: string, payload: Element | undefined): Occupant | undefined {
  if (!payload || payload.name !== 'occupant' || payload.attrs.xmlns !== NS_MUC_NODES || typeof payload.attrs.jid !== 'string') return undefined;
  const o: Occupant = { nick: id, jid: payload.attrs.jid, presence: payload.children.filter((c): c is Element => typeof c !== 'string') };
  if (typeof payload.attrs.old === 'string' && payload.attrs.old !== id) o.old = payload.attrs.old;
  if (typeof payload.attrs.instance === 'string') o.instance = payload.attrs.instance;
  return o;
}

/**
 * What takes the place of an occupant item that cannot be retracted: ejabberd lets only the item's
 * first publisher (by bare JID) or the node's owner retract, so without a service account another
 * occupant removing a dead one, or a user leaving a nick another user held before, publishes this
 * instead. Any occupants item that is not an <occupant jid/> counts as no occupant.
 */
export function vacantPayload(nick: string): Element {
  return xml('vacant', { xmlns: NS_MUC_NODES, nick, at: new Date().toISOString() });
}
