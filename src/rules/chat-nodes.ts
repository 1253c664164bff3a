// XEP-0207 §6 on the backend: where one-to-one messages live, and how a message is stored in an item.
//
// One node per direction, on the pubsub service of the recipient's domain (`pubsub.<domain>`, or the
// one --pubsub-service names for every domain): node `xep207-proxy/chat/<hash of sender and
// recipient>`, whitelist, the sender a publisher, the recipient a member and subscribed with its
// bare JID (the sender is not: its other resources' sent carbons come from its proxy, chat.ts, which
// spares the backend a second notification per message). Listing 18 has one node per pair; one per
// direction keeps every node that can hold messages for a user on a service derived from the user's
// own JID (fixtures/README.md), and only the sender can write into a node whose name names it as
// the sender.
//
// The recipient's proxy learns of a new node from an announcement the sender's proxy leaves in the
// recipient's inbox (item `chat:<node>`), kept until a message of it has been delivered (from then on
// the delivery markers name the node). A recipient without an inbox has never logged in through the
// proxy: the announcement then goes to a node of the chat service named for the recipient
// (`xep207-proxy/waiting/<hash>`, the recipient a member, anybody may publish), which its first login
// reads by name. Not from a subscriptions query: ejabberd answers one by scanning every
// subscription and affiliation it holds (all users' PEP nodes included).
//
// The node is created on first use by the service account (Prosody lets only a component's admins
// create nodes there) or, without one, by the sender's own session (ejabberd lets users create nodes
// on its pubsub service). Names are a deterministic function of the two bare JIDs, so every proxy
// instance finds the same node.
import { createHash } from 'node:crypto';
import type { Element } from 'ltx';
import type { BackendProfile } from '../backends/profile.js';
import type { Fields } from '../pubsub/forms.js';
import * as ps from '../pubsub/requests.js';
import { xml } from '../stream/xml.js';
import { bareOf } from '../xmpp/jid.js';
import { NS_CLIENT } from '../xmpp/ns.js';
import { StanzaError } from '../xmpp/stanza-error.js';
import { retrying } from './retry.js';
import type { RuleContext } from './types.js';

export const NODE_CHAT_PREFIX = 'xep207-proxy/chat/';
export const NODE_WAITING_PREFIX = 'xep207-proxy/waiting/';
/** a user's private PEP node: per incoming chat node, the last message delivered to the user */
export const NODE_DELIVERED = 'xep207-proxy/delivered';
export const NS_CHAT = 'urn:xep207-proxy:chat:0';

/** The inbox item that tells the recipient's proxy of a node (its id, its payload). */
export const ANNOUNCE_PREFIX = 'chat:';

export function announcement(node: string): Element {
  return xml('chat', { xmlns: NS_CHAT, node });
}

/** The chat node an inbox item announces, if it is an announcement. */
export function announcedNode(item: { id: string; payload: Element | undefined }): string | undefined {
  if (!item.id.startsWith(ANNOUNCE_PREFIX)) return undefined;
  const node = item.id.slice(ANNOUNCE_PREFIX.length);
  return node.startsWith(NODE_CHAT_PREFIX) ? node : undefined;
}

/** Where the nodes for a recipient without an inbox are announced (on its chat service). */
export function waitingNode(recipient: string): string {
  return NODE_WAITING_PREFIX + createHash('sha256').update(recipient).digest('base64url').slice(0, 32);
}

/**
 * Announce `node` in the recipient's waiting node, made first where missing (by the service account
 * where there is one, like the chat nodes; a conflict: it exists, the recipient a member already).
 */
export async function announceWaiting(ctx: RuleContext, profile: BackendProfile, service: string, recipient: string, node: string): Promise<void> {
  const waiting = waitingNode(recipient);
  await makeNode(ctx, service, waiting, { ...chatNodeConfig(profile), 'pubsub#publish_model': 'open' }, [[recipient, 'member']]);
  await retrying(ctx.log, 'waiting announcement', () => ctx.request(ps.publish(service, waiting, node, announcement(node))));
}

/**
 * May `item` of a chat node be `sender`'s (a bare JID, lower-case)? Node names can be guessed:
 * anybody with direct access to the backend may create the node named for another sender to a user
 * first, configured without the publisher stamp, and write "from" that sender. So where the proxy's
 * nodes carry the stamp (the profile's node configuration) an item without one is not taken, and a
 * stamp must name the sender.
 */
export function writtenBy(profile: BackendProfile, item: { publisher?: string }, sender: string): boolean {
  if (!item.publisher) return profile.extraNodeConfig['pubsub#itemreply'] !== 'publisher';
  return bareOf(item.publisher).toLowerCase() === sender;
}

export function chatNode(sender: string, recipient: string): string {
  return NODE_CHAT_PREFIX + createHash('sha256').update(`${sender}\n${recipient}`).digest('base64url').slice(0, 32);
}

export function chatService(recipient: string, override?: string): string {
  return override ?? `pubsub.${recipient.slice(recipient.indexOf('@') + 1)}`;
}

export function chatNodeConfig(profile: BackendProfile): Fields {
  return {
    'pubsub#access_model': 'whitelist',
    'pubsub#publish_model': 'publishers',
    'pubsub#persist_items': '1',
    'pubsub#max_items': 'max',
    'pubsub#deliver_payloads': '1',
    'pubsub#notify_retract': '0',
    'pubsub#send_last_published_item': 'never',
    ...profile.extraNodeConfig,
  };
}

/**
 * Create the sender -> recipient node and let both in. The service account owns it where there is
 * one; otherwise the sender's session does (and is then already more than a publisher).
 */
export async function createChatNode(ctx: RuleContext, profile: BackendProfile, service: string, node: string, recipient: string): Promise<void> {
  const affiliations: Array<[string, string]> = [[recipient, 'member']];
  if (ctx.service) affiliations.push([ctx.bare, 'publisher']);
  if (!(await makeNode(ctx, service, node, chatNodeConfig(profile), affiliations))) return;
  await retrying(ctx.log, 'chat subscriptions', () => (ctx.service ?? ctx).request(ps.setSubscriptions(node, [[recipient, 'subscribed']], service)));
}

/**
 * Create a node on the chat service and set its affiliations, owned by the service account where
 * there is one, else by the session: true if made now, false if it existed (a conflict: another
 * session made it, and set them). Each step is retried on transient errors (ejabberd aborts
 * concurrent node creations, retry.ts).
 */
async function makeNode(ctx: RuleContext, service: string, node: string, config: Fields, affiliations: Array<[string, string]>): Promise<boolean> {
  const owner = ctx.service ?? ctx;
  try {
    await retrying(ctx.log, `create ${node}`, () => owner.request(ps.createNode(node, config, service)));
  } catch (err) {
    if (err instanceof StanzaError && err.condition === 'conflict') return false;
    throw err;
  }
  await retrying(ctx.log, `affiliations of ${node}`, () => owner.request(ps.setAffiliations(node, affiliations, service)));
  return true;
}

let lastStamp = 0;

/**
 * The send time of a message, strictly increasing within the process: items are ordered by it, and
 * messages a client sends in the same millisecond must keep their order.
 */
export function sendStamp(now = Date.now()): string {
  lastStamp = Math.max(now, lastStamp + 1);
  return new Date(lastStamp).toISOString();
}

/** The item payload for a client's message: `from` is the bound JID, the send time is kept. */
export function messagePayload(client: Element, fullJid: string, at: string): Element {
  const attrs: Record<string, string> = { ...(client.attrs as Record<string, string>), xmlns: NS_CLIENT, from: fullJid };
  const m = xml('message', attrs);
  for (const c of client.children) m.children.push(c);
  m.children.push(xml('sent', { xmlns: NS_CHAT, at }));
  return m;
}

export interface StoredMessage {
  /** ordering key: send time, then item id */
  key: string;
  at: string;
  from: string;
  to: string;
  /** the message as the client sent it (our stamp removed, `from` the sender's bound JID) */
  message: Element;
}

/** Read a stored message back; undefined if the item is not one. */
export function storedMessage(id: string, payload: Element | undefined): StoredMessage | undefined {
  if (!payload || payload.name !== 'message' || typeof payload.attrs.from !== 'string' || typeof payload.attrs.to !== 'string') return undefined;
  const stamp = payload.getChild('sent', NS_CHAT);
  const at = (stamp?.attrs.at as string | undefined) ?? '';
  const attrs: Record<string, string> = { ...(payload.attrs as Record<string, string>) };
  delete attrs.xmlns;
  const message = xml('message', attrs);
  message.children = payload.children.filter((c) => c !== stamp);
  return { key: `${at} ${id}`, at, from: attrs.from!, to: attrs.to!, message };
}
