// XEP-0207 §6: one-to-one messages are pubsub. A client's chat/normal/headline message to another
// user the backend serves is published to the sender -> recipient node (chat-nodes.ts); the node's
// notifications become <message/> stanzas again for the recipient's resources, as RFC 6121 §8.5
// delivers them, and XEP-0280 carbons for the user's other resources (carbons.ts). What was published
// while the recipient had no available resource is delivered at its next initial presence, once,
// with a XEP-0203 delay: each user keeps, per incoming node, the key of the last message delivered
// (a private PEP node), so that any proxy instance agrees on what is still to be delivered.
//
// Messages to anyone else (a remote domain, a component, a MUC room, the user's own JID) and
// error/groupchat messages pass through to the backend unchanged.
import type { Element } from 'ltx';
import { randomToken } from '../xmpp/random.js';
import { eventOf, itemsOfResult, type PublishedItem } from '../pubsub/events.js';
import * as ps from '../pubsub/requests.js';
import { xml } from '../stream/xml.js';
import { bareOf, parseJid } from '../xmpp/jid.js';
import { NS_CLIENT } from '../xmpp/ns.js';
import { StanzaError, errorReply } from '../xmpp/stanza-error.js';
import { NODE_INBOX, NODE_PRESENCE, accountOf, hasAccount, type Account } from './account.js';
import { priorityOf } from './presence.js';
import { carbonCopy, carbonEligible, carbonsWanted } from './carbons.js';
import { ANNOUNCE_PREFIX, NODE_CHAT_PREFIX, NODE_DELIVERED, NS_CHAT, announceWaiting, announcedNode, announcement, waitingNode, chatNode, chatService, createChatNode, messagePayload, sendStamp, storedMessage, writtenBy, type StoredMessage } from './chat-nodes.js';
import { isRequestItem, makeInbox, takeRequests } from './inbox-lazy.js';
import { isTransient, retrying } from './retry.js';
import { Answers, askServed } from './served.js';
import type { Stanza } from '../stream/stanza.js';
import type { Rule, RuleContext } from './types.js';

export interface ChatOptions {
  /** one pubsub service for every domain's chat nodes (default: pubsub.<recipient's domain>) */
  pubsubService?: string;
}

const MAPPED_TYPES = new Set([undefined, 'chat', 'normal', 'headline']);
const NS_DELAY = 'urn:xmpp:delay';
const NS_HINTS = 'urn:xmpp:hints';
/** XEP-0249 direct and XEP-0045 §7.8.2 mediated room invitations: kept for later, though bodiless */
const NS_CONFERENCE = 'jabber:x:conference';
const NS_MUC_USER = 'http://jabber.org/protocol/muc#user';

/** Per session: what the chat rule remembers. */
interface ChatState {
  /** per incoming node: the key of the last message delivered to the user (any session) */
  delivered?: Map<string, string>;
  /** the marker writes in flight, those still to write (coalesced per node), the timer that writes them */
  writing?: Promise<void> | undefined;
  pending?: Map<string, string>;
  timer?: NodeJS.Timeout | undefined;
  /** catching up at initial presence: live items delivered meanwhile (ids) */
  live?: Set<string>;
  /** outgoing nodes this session took the user's own subscription away from */
  unsubscribed?: Set<string>;
  /** incoming nodes announced in the user's inbox (chat-nodes.ts); undefined: not read yet */
  announced?: Set<string>;
}

const KEY = 'chat';

function stateOf(ctx: RuleContext): ChatState {
  let s = ctx.state.get(KEY) as ChatState | undefined;
  if (!s) ctx.state.set(KEY, (s = {}));
  return s;
}

/**
 * XEP-0334/XEP-0160: what is worth delivering later (a body, an invitation to a room, or an explicit
 * store hint; not a bare chat state, receipt or marker).
 */
function storable(m: Element): boolean {
  if (m.getChild('no-store', NS_HINTS) || m.getChild('no-permanent-store', NS_HINTS)) return false;
  if (m.getChild('store', NS_HINTS)) return true;
  if (m.attrs.type === 'headline') return false;
  return m.getChild('body') !== undefined || m.getChild('x', NS_CONFERENCE) !== undefined || m.getChild('x', NS_MUC_USER)?.getChild('invite') !== undefined;
}

/**
 * The user's available resources and their priorities (this one included), from the own presence
 * node as this session sees it.
 */
function ownResources(account: Account): Map<string, number> {
  const out = new Map<string, number>();
  for (const [r, p] of account.contactPresence?.get(account.bare) ?? []) out.set(r, priorityOf(p));
  if (account.echoPriority !== undefined) out.set(account.ctx.jid.resource, account.echoPriority);
  if (account.available) out.set(account.ctx.jid.resource, account.priority);
  return out;
}

/**
 * RFC 6121 §8.5: which of the user's resources get a message addressed `to`. A full JID that is
 * connected gets it alone, available or not (§8.5.3.1); otherwise (bare JID, or a resource that is
 * gone) every available resource with a non-negative priority (§8.5.2.1.1: "all of them" is one of
 * the allowed choices; a headline goes to every available resource). None: it waits for the next
 * initial presence (§8.5.2.2, offline storage).
 */
function recipients(account: Account, to: string, type: string | undefined): string[] {
  const slash = to.indexOf('/');
  const resource = slash === -1 ? undefined : to.slice(slash + 1);
  if (resource !== undefined && (resource === account.ctx.jid.resource || account.connected?.has(resource))) return [resource];
  return [...ownResources(account)].filter(([, prio]) => type === 'headline' || prio >= 0).map(([r]) => r);
}

/** The message as the client gets it; `delayed`: delivered late, with a XEP-0203 delay of the send time. */
function legacy(account: Account, m: StoredMessage, delayed: boolean): Element {
  const out = xml('message', { ...(m.message.attrs as Record<string, string>) });
  out.children = [...m.message.children];
  if (delayed) out.children.push(xml('delay', { xmlns: NS_DELAY, from: account.ctx.domain, stamp: m.at }, 'Offline storage'));
  return out;
}

/**
 * A live incoming message: delivered to this session's client if RFC 6121 makes it one of the
 * recipients, else a received carbon where XEP-0280 asks for one. Returns whether this session keeps
 * the record of what was delivered (the first of the resources that got it, so that one writes).
 */
function deliverIncoming(account: Account, m: StoredMessage): boolean {
  const ctx = account.ctx;
  const rs = recipients(account, m.to, m.message.attrs.type as string | undefined);
  const me = ctx.jid.resource;
  if (rs.includes(me)) ctx.toClient(legacy(account, m, false));
  else if (rs.length === 1 && carbonsWanted(ctx, m.message)) ctx.toClient(carbonCopy('received', account.bare, account.full, m.message)); // XEP-0280 §7.3
  return [...rs].sort()[0] === me;
}

/**
 * How long delivery markers wait to be written: a conversation's messages then cost one marker write
 * per second and node instead of one each (every write is a publish the backend must process). A
 * session that closes writes its markers first; a proxy that dies loses at most this much of them
 * (those messages are delivered again at the next login).
 */
export const MARKER_DELAY_MS = 1000;
/** the time a marker write takes to reach the backend, on top of MARKER_DELAY_MS */
const MARKER_GRACE_MS = 300;

function markDelivered(account: Account, node: string, key: string): void {
  const st = stateOf(account.ctx);
  const delivered = (st.delivered ??= new Map());
  if ((delivered.get(node) ?? '') >= key) return;
  delivered.set(node, key);
  (st.pending ??= new Map()).set(node, key);
  if (st.timer) return;
  st.timer = setTimeout(() => {
    st.timer = undefined;
    void flushMarkers(account);
  }, MARKER_DELAY_MS);
  st.timer.unref();
}

/** Write the delivery markers, one request at a time (later keys replace earlier ones). */
async function flushMarkers(account: Account): Promise<void> {
  const st = stateOf(account.ctx);
  clearTimeout(st.timer);
  st.timer = undefined;
  if (st.writing) return st.writing;
  st.writing = (async () => {
    while (st.pending && st.pending.size > 0) {
      const [node, key] = st.pending.entries().next().value as [string, string];
      st.pending.delete(node);
      await account
        .made(NODE_DELIVERED)
        .then(() => account.ctx.request(ps.publish(undefined, NODE_DELIVERED, node, xml('delivered', { xmlns: NS_CHAT, key }))))
        .catch((err: unknown) => account.ctx.log.warn({ err: String(err), node }, 'delivery marker not written'));
    }
  })().finally(() => (st.writing = undefined));
  return st.writing;
}

/** A notification of one of the user's chat nodes (incoming or its own outgoing one). */
function notified(account: Account, service: string, node: string, item: PublishedItem, opts: ChatOptions): void {
  const m = storedMessage(item.id, item.payload);
  if (!m) return;
  const from = bareOf(m.from).toLowerCase();
  const to = bareOf(m.to).toLowerCase();
  // the node's name says who may write into it; the backend's publisher stamp, where given, agrees
  if (node !== chatNode(from, to) || service !== chatService(to, opts.pubsubService)) return;
  if (!writtenBy(account.profile, item, from)) return;
  const ctx = account.ctx;
  if (from === account.bare) {
    // §6's "bcc" of our own message, from a node made when the sender was subscribed too (earlier
    // versions): never an incoming message, nor a carbon (sentCarbons sends those); the sending
    // session takes the subscription away, once
    const st = stateOf(ctx);
    if (m.from === account.full && !(st.unsubscribed ??= new Set()).has(node)) {
      st.unsubscribed.add(node);
      void ctx.request(ps.unsubscribe(service, node, account.bare)).catch(() => undefined);
    }
    return;
  }
  if (to !== account.bare) return;
  const st = stateOf(ctx);
  if ((st.delivered?.get(node) ?? '') >= m.key) return;
  st.live?.add(item.id);
  if (deliverIncoming(account, m)) markDelivered(account, node, m.key);
}

/** RFC 6121 §8.5.2.1.1 offline delivery, at initial presence: what no resource got yet, in order. */
async function catchUp(account: Account, opts: ChatOptions): Promise<void> {
  const ctx = account.ctx;
  const st = stateOf(ctx);
  st.live = new Set();
  // no inbox yet (inbox-lazy.ts): the waiting node names the chat nodes that may hold requests, and
  // holds every node announced before the inbox is made, even one made during the wait below
  const noInbox = account.lacks(NODE_INBOX);
  try {
    // Another resource of the user is connected: what it got live in the last MARKER_DELAY_MS may not
    // be marked yet. Its marker is written within that time (its notification updates `delivered`
    // meanwhile); reading before then would deliver those messages a second time, as "offline".
    if (account.connected && [...account.connected].some((r) => r !== ctx.jid.resource)) {
      await new Promise((resolve) => setTimeout(resolve, MARKER_DELAY_MS + MARKER_GRACE_MS));
      if (!account.available) return;
    }
    const service = chatService(account.bare, opts.pubsubService);
    // where messages for the user can be: the nodes it got messages from (the markers), those
    // announced since, and while the user has no inbox those announced in its waiting node. At the
    // first login there are no markers yet: the user's sessions write them, after a login that made
    // the presence node. Without an inbox, an empty waiting node says there are none either: every
    // chat node to a user without an inbox is announced there (a failed announcement aside, which
    // is logged), so the markers are read only when it names a node (the catch-up that finds one
    // makes the inbox): a user nobody has contacted pays one read per login, not two.
    const first = account.createdNode(NODE_PRESENCE);
    const readMarks = () => ctx.request(ps.items(undefined, NODE_DELIVERED)).catch(() => undefined);
    const [marksRead, inbox, waiting] = await Promise.all([
      first || noInbox ? undefined : readMarks(),
      st.announced ? undefined : ctx.request(ps.items(undefined, NODE_INBOX)).catch(() => undefined),
      first || noInbox ? ctx.request(ps.items(service, waitingNode(account.bare))).catch(() => undefined) : undefined,
    ]);
    if (inbox) account.noteExists(NODE_INBOX); // another session made it
    const named = waiting !== undefined && itemsOfResult(waiting).some((item) => item.id.startsWith(NODE_CHAT_PREFIX));
    const marks = !first && noInbox && (inbox !== undefined || named) ? await readMarks() : marksRead;
    const announced = (st.announced ??= announcements(inbox));
    const delivered = (st.delivered ??= new Map());
    for (const item of marks ? itemsOfResult(marks) : []) {
      const key = item.payload?.attrs.key as string | undefined;
      if (key && (delivered.get(item.id) ?? '') < key) delivered.set(item.id, key);
    }
    const nodes = new Set([...delivered.keys(), ...announced].filter((n) => n.startsWith(NODE_CHAT_PREFIX)));
    let contacted = false; // somebody announced a node in the waiting node
    for (const item of waiting ? itemsOfResult(waiting) : []) {
      if (!item.id.startsWith(NODE_CHAT_PREFIX)) continue;
      nodes.add(item.id);
      contacted = true;
    }
    const requests: Array<[string, PublishedItem[]]> = [];
    for (const node of nodes) {
      const res = await ctx.request(ps.items(service, node)).catch(() => undefined);
      if (!res) continue;
      const items = itemsOfResult(res);
      if (noInbox && items.some((item) => isRequestItem(item.id))) requests.push([node, items]);
      const pending = items
        .map((item) => ({ item, m: storedMessage(item.id, item.payload) }))
        .filter((x): x is { item: PublishedItem; m: StoredMessage } => {
          if (!x.m || st.live!.has(x.item.id)) return false;
          const from = bareOf(x.m.from).toLowerCase();
          if (!writtenBy(account.profile, x.item, from)) return false;
          return from !== account.bare && bareOf(x.m.to).toLowerCase() === account.bare && chatNode(from, account.bare) === node && x.m.key > (delivered.get(node) ?? '');
        })
        .sort((a, b) => (a.m.key < b.m.key ? -1 : 1));
      if (pending.length === 0) continue;
      for (const { m } of pending) if (storable(m.message)) ctx.toClient(legacy(account, m, true));
      markDelivered(account, node, pending[pending.length - 1]!.m.key);
    }
    // offline messages are marked at once: a resource logging in right after this one reads the marker
    await flushMarkers(account);
    // subscription requests left while there was no inbox (after the messages: as a server's offline
    // storage, which delivers them at initial presence too)
    for (const [node, items] of requests) await takeRequests(account, service, node, items);
    if (noInbox && contacted) await makeInbox(account);
    // a node with a marker needs its announcement no more
    for (const node of [...announced].filter((n) => delivered.has(n))) {
      announced.delete(node);
      await ctx.request(ps.retract(undefined, NODE_INBOX, ANNOUNCE_PREFIX + node)).catch(() => undefined);
    }
    // nothing kept for an idle session: a later catch-up (after an unavailable) reads the inbox again
    if (announced.size === 0) st.announced = undefined;
  } finally {
    st.live = undefined;
    if (st.delivered?.size === 0) st.delivered = undefined;
    // a session that has had no messages keeps no chat state at all
    if (isEmptyState(st) && ctx.state.get(KEY) === st) ctx.state.delete(KEY);
  }
}

function isEmptyState(st: ChatState): boolean {
  for (const k in st) if (st[k as keyof ChatState] !== undefined) return false;
  return true;
}

/**
 * Conditions of a node creation that mean "this service will not hold chat nodes for us" (no such
 * service, or no right to create there: Prosody without a service account among the component's
 * admins). Messages then pass through to the backend's own routing, as before §6.
 */
const UNMAPPABLE = new Set(['forbidden', 'not-allowed', 'service-unavailable', 'feature-not-implemented', 'remote-server-not-found', 'item-not-found', 'not-authorized']);

/**
 * Make the sender -> recipient node (once per proxy): false if the service cannot hold it. Created
 * before the first publish (a conflict says it exists): ejabberd would auto-create the node at a
 * publish, open and without the recipient.
 */
function askNode(account: Account, service: string, node: string, recipient: string): Promise<boolean> {
  return createChatNode(account.ctx, account.profile, service, node, recipient).then(
    () => announce(account, service, node, recipient).then(() => true),
    (err: unknown) => {
      if (err instanceof StanzaError && UNMAPPABLE.has(err.condition)) {
        // remembered: asking again for every message would not change the answer
        account.ctx.log.warn({ service, condition: err.condition }, 'cannot create chat nodes there: messages pass through (a service account may be missing)');
        return false;
      }
      throw err; // a transient failure: the next message tries again
    },
  );
}

/**
 * Tell the recipient's proxy of the node (once per proxy and node, made now or before: the same item
 * again changes nothing). A recipient without an inbox (ejabberd: item-not-found, Prosody:
 * forbidden) has never logged in through the proxy: the node goes to its waiting node, which its
 * first login reads. A transient failure fails the message: the next one asks again.
 */
async function announce(account: Account, service: string, node: string, recipient: string): Promise<void> {
  const ctx = account.ctx;
  const inbox = await retrying(ctx.log, 'chat announcement', () => ctx.request(ps.publish(recipient, NODE_INBOX, ANNOUNCE_PREFIX + node, announcement(node)))).then(
    () => true,
    (err: unknown) => {
      if (isTransient(err)) throw err;
      return false;
    },
  );
  if (inbox) return;
  await announceWaiting(ctx, account.profile, service, recipient, node).catch((err: unknown) => {
    if (isTransient(err)) throw err;
    ctx.log.warn({ err: String(err), to: recipient }, "chat node not announced: the recipient's first login will not find its messages");
  });
}

/** The chat nodes announced in the user's inbox (its items). */
function announcements(res: Element | undefined): Set<string> {
  const out = new Set<string>();
  for (const item of res ? itemsOfResult(res) : []) {
    const node = announcedNode(item);
    if (node) out.add(node);
  }
  return out;
}

/**
 * Publish the client's message, then send the user's other connected resources their XEP-0280 §7.4
 * sent carbon. Why from the sender's proxy, not from a notification: the node would need the
 * sender's bare JID subscribed, a second notification per message for every available resource of
 * the sender (the sending one included), where this costs nothing for a user with one resource.
 */
function publishMessage(account: Account, el: Element, service: string, node: string): Promise<void> {
  const at = sendStamp();
  return account.ctx.request(ps.publish(service, node, randomToken(9), messagePayload(el, account.full, at))).then(() => sentCarbons(account, el));
}

/**
 * The copy goes to each other connected resource's full JID through the backend's routing, as a
 * headline (RFC 6121 §8.5.3.2.1: to a resource that is gone, dropped, never redirected or stored),
 * wrapped in an element of the proxy's own; that resource's proxy makes the carbon if its client
 * enabled carbons (`fromBackend`). Only the user's own resources can send one: the backend stamps
 * `from`.
 */
function sentCarbons(account: Account, el: Element): void {
  const others = account.connected;
  if (!others || others.size === 0 || !carbonEligible(el)) return;
  const me = account.ctx.jid.resource;
  for (const r of others) {
    if (r === me) continue;
    const inner = xml('message', { ...(el.attrs as Record<string, string>), xmlns: NS_CLIENT, from: account.full });
    inner.children = el.children;
    account.ctx.toBackend(xml('message', { to: `${account.bare}/${r}`, type: 'headline' }, xml('carbon', { xmlns: NS_CHAT }, inner)));
  }
}

/** A sent carbon from another resource of the user (sentCarbons), if it is one. */
function sentCarbon(s: Stanza, ctx: RuleContext): boolean {
  const from = s.attrs.from;
  if (s.attrs.type !== 'headline' || !from || !s.childIs('carbon', NS_CHAT) || !hasAccount(ctx) || !isOwn(from, ctx.bare)) return false;
  const account = accountOf(ctx);
  const inner = s.el.getChild('carbon', NS_CHAT)?.getChild('message');
  if (inner && inner.attrs.from === from && account.available && carbonsWanted(ctx, inner)) {
    const m = xml('message', { ...(inner.attrs as Record<string, string>) });
    delete m.attrs.xmlns;
    m.children = inner.children;
    ctx.toClient(carbonCopy('sent', account.bare, account.full, m));
  }
  return true;
}

/**
 * Is `jid` the user's own bare JID or one of its full JIDs? (`bare` is lower-case) Compared in place,
 * ASCII case folded, with no string made: every message a client sends passes here.
 */
function isOwn(jid: string, bare: string): boolean {
  const n = bare.length;
  if (jid.length < n || (jid.length > n && jid.charCodeAt(n) !== 0x2f /* / */)) return false;
  for (let k = 0; k < n; k++) {
    let c = jid.charCodeAt(k);
    if (c >= 0x80) return jid.slice(0, n).toLowerCase() === bare; // beyond ASCII: as toLowerCase folds it
    if (c >= 0x41 && c <= 0x5a) c |= 0x20;
    if (c !== bare.charCodeAt(k)) return false;
  }
  return true;
}

export function chatRule(opts: ChatOptions = {}): Rule {
  // shared by the proxy's sessions: domains the backend serves, nodes known to exist
  const served = new Answers();
  const nodes = new Answers();
  return {
    name: 'chat',
    sees: { client: ['message'], backend: ['message'] },

    fromClient(s, ctx) {
      if (s.name !== 'message' || !MAPPED_TYPES.has(s.attrs.type) || !hasAccount(ctx)) return false;
      // a look at the text before a parse: no localpart (a domain, a service) or the user's own JID
      const toAttr = s.attrs.to;
      if (!toAttr || !toAttr.includes('@') || isOwn(toAttr, ctx.bare)) return false;
      const to = parseJid(toAttr);
      if (!to || !to.local) return false;
      const recipient = to.bare().toString().toLowerCase();
      const domain = to.domain.toLowerCase();
      const account = accountOf(ctx);
      const el = s.el;
      const service = chatService(recipient, opts.pubsubService);
      const node = chatNode(account.bare, recipient);
      const where = `${service} ${node}`;
      const failed = (err: unknown) => {
        const e = err instanceof StanzaError ? err : new StanzaError('internal-server-error');
        ctx.log.warn({ err: String(err), to: recipient }, 'message not published');
        // a legacy server's answer: the error comes from the recipient, with the message's id
        ctx.toClient(errorReply(xml('message', { ...(el.attrs as Record<string, string>), from: account.full }), e, recipient));
      };
      const isServed = domain === ctx.domain || served.now(domain);
      if (isServed === false || nodes.now(where) === false) return false;
      if (isServed && nodes.now(where)) {
        // the common case decides at once: the lane does not wait for the publish (requests go out
        // in order, so order is kept); a refusal comes back as an error later
        publishMessage(account, el, service, node).catch(failed);
        return true;
      }
      return (async () => {
        try {
          if (!(domain === ctx.domain || (await served.get(domain, () => askServed(ctx, domain))))) return false;
          if (!(await nodes.get(where, () => askNode(account, service, node, recipient)))) return false;
          await publishMessage(account, el, service, node);
        } catch (err) {
          if (served.now(domain) === undefined && domain !== ctx.domain) return false; // cannot tell: as before §6
          failed(err);
        }
        return true;
      })();
    },

    onBound(ctx) {
      if (!hasAccount(ctx)) return;
      // the inbox as the login read it (the subscription rule, later in the table, takes it)
      const read = accountOf(ctx).peekLoginRead(NODE_INBOX);
      if (read) stateOf(ctx).announced = read === 'none' ? new Set() : announcements(read);
    },

    async onClose(ctx) {
      if (hasAccount(ctx) && ctx.state.has(KEY)) await flushMarkers(accountOf(ctx));
    },

    fromBackend(s, ctx) {
      if (s.name === 'message' && s.attrs.type === 'headline' && sentCarbon(s, ctx)) return true;
      const ev = eventOf(s);
      if (!ev || !hasAccount(ctx)) return false;
      const account = accountOf(ctx);
      if (ev.node === NODE_DELIVERED && ev.service.toLowerCase() === account.bare) {
        // another session of the user delivered something: remember how far it got
        const st = stateOf(ctx);
        for (const item of ev.items) {
          const key = item.payload?.attrs.key as string | undefined;
          if (key && (st.delivered?.get(item.id) ?? '') < key) (st.delivered ??= new Map()).set(item.id, key);
        }
        return true;
      }
      if (ev.node === NODE_INBOX && ev.service.toLowerCase() === account.bare) {
        // a new node announced while the session is connected (the subscription rule sees the rest)
        const st = stateOf(ctx);
        for (const item of ev.items) {
          const node = announcedNode(item);
          if (node && st.announced) st.announced.add(node);
        }
        return false;
      }
      if (!ev.node.startsWith(NODE_CHAT_PREFIX)) return false;
      const service = ev.service.toLowerCase();
      for (const item of ev.items) notified(account, service, ev.node, item, opts);
      // a subscription request left while the user had no inbox (inbox-lazy.ts): applied in order
      if (ev.items.some((item) => isRequestItem(item.id))) {
        return takeRequests(account, service, ev.node, ev.items).then(async (took) => {
          if (took) await makeInbox(account);
          return true;
        });
      }
      return true;
    },
  };
}

/** At initial presence: deliver what arrived while the user had no available resource. */
export function chatOnAvailable(opts: ChatOptions): (account: Account) => void {
  return (account) => {
    void catchUp(account, opts).catch((err: unknown) => account.ctx.log.warn({ err: String(err) }, 'offline messages not delivered'));
  };
}
