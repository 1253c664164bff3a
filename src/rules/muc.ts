// XEP-0207 §5: multi-user chat is pubsub. The proxy serves a XEP-0045 service `conference.<D>` for
// every domain D the backend serves; nothing addressed to it, or to one of its rooms, reaches the
// backend. A room is a few nodes on the pubsub service of D (muc-nodes.ts): a join (presence to
// room@service/nick) subscribes the session's full JID and publishes an occupant item; a groupchat
// message is a publish; the nodes' notifications become the presence and messages a MUC room sends,
// for every occupant session (the sender included), in the backend's order.
//
// Private messages (XEP-0045 §7.5) go from the sender's proxy to the target occupant's session as an
// iq of the proxy's own to its bound full JID (see sendPrivate); a nick change (§7.6) publishes the
// new occupant item, naming the old nick, before retracting the old one; occupant items of sessions
// that are gone (their proxy instance died) are found with the alive query (alive.ts) at every join
// (one query per other proxy instance, see dropDeadInstances) and by a periodic sweep (see sweep).
//
// The owner may set a name, a description and a password (muc-config.ts). Not built yet: moderation
// (kick, ban, voice), members-only and temporary rooms, destroying a room, iqs to occupants (README,
// group chat).
import type { Element } from 'ltx';
import { randomToken } from '../xmpp/random.js';
import { eventOf, itemsOfResult, type PubsubEvent } from '../pubsub/events.js';
import * as ps from '../pubsub/requests.js';
import { xml } from '../stream/xml.js';
import { parseJid, bareOf } from '../xmpp/jid.js';
import { NS_DISCO_INFO, NS_DISCO_ITEMS, NS_MUC } from '../xmpp/ns.js';
import { StanzaError, errorReply } from '../xmpp/stanza-error.js';
import { accountOf, hasAccount } from './account.js';
import { NS_ALIVE, isAlive } from './alive.js';
import { chatService, messagePayload, storedMessage, type StoredMessage } from './chat-nodes.js';
import { applyForm, configForm, configPayload, passwordOpens, readConfig, type RoomConfig } from './muc-config.js';
import {
  DEFAULT_HISTORY,
  MUC_SERVICE_PREFIX,
  NODE_MUC_PREFIX,
  createRoom,
  mucDomainOf,
  occupantPayload,
  readOccupant,
  roomNodes,
  roomOfNode,
  vacantPayload,
  type Occupant,
} from './muc-nodes.js';
import { Answers, servedBy } from './served.js';
import type { Rule, RuleContext } from './types.js';

export interface MucOptions {
  /** one pubsub service for every domain's rooms (default: pubsub.<the room's domain>) */
  pubsubService?: string;
  /** how many messages a room keeps for joiners (default 20) */
  history?: number;
  /** ms between two sweeps for occupants whose session is gone (default DEFAULT_SWEEP_MS) */
  sweepInterval?: number;
  /** the MUC service of a served domain D is `<prefix>.<D>` (default 'conference') */
  servicePrefix?: string;
}

/**
 * How often (ms) one occupant session of each room checks the others for sessions that are gone: an
 * occupant of a proxy instance that died stays listed at most this long, plus the checks' time (an
 * answer within ALIVE_TIMEOUT_MS each), for those already in the room; a joiner never sees it (the
 * join checks one occupant of each other proxy instance first, and all of an instance that is gone). A minute keeps the load low: one alive iq per occupant
 * and minute, from one session per room.
 */
export const DEFAULT_SWEEP_MS = 60_000;

/** The iq carrying a private message (XEP-0045 §7.5) from the sender's proxy to the target's. */
export const NS_MUC_PRIVATE = 'urn:xep207-proxy:muc-private:0';

const NS_MUC_USER = 'http://jabber.org/protocol/muc#user';
const NS_MUC_OWNER = 'http://jabber.org/protocol/muc#owner';
const NS_DELAY = 'urn:xmpp:delay';
const ROOM_FEATURES = [NS_MUC, 'muc_open', 'muc_persistent', 'muc_semianonymous', 'muc_unmoderated'];

/** A room the session is in (or joining). */
interface Joined {
  nick: string;
  /** the pubsub service holding the room's nodes */
  service: string;
  /** the room's creator (bare JID), from the meta node */
  owner: string | undefined;
  occupants: Map<string, Occupant>;
  /** notifications that arrived while the join was in progress (delivered after it) */
  pending: PubsubEvent[] | undefined;
  /** the periodic sweep for occupants whose session is gone (from the end of the join) */
  timer?: NodeJS.Timeout;
  sweeping?: boolean;
  /** a nick change in progress */
  changing?: boolean;
}

interface MucState {
  rooms: Map<string, Joined>;
  /** ids of the client's disco#items to its server (the answer gets the MUC service) */
  disco: Set<string>;
}

const KEY = 'muc';

function stateOf(ctx: RuleContext): MucState {
  let s = ctx.state.get(KEY) as MucState | undefined;
  if (!s) ctx.state.set(KEY, (s = { rooms: new Map(), disco: new Set() }));
  return s;
}

function affiliationOf(j: Joined, jid: string): { affiliation: string; role: string } {
  return j.owner !== undefined && bareOf(jid).toLowerCase() === j.owner ? { affiliation: 'owner', role: 'moderator' } : { affiliation: 'none', role: 'participant' };
}

/**
 * An occupant's presence as the room sends it (XEP-0045 §7.2.3); `codes` for the joiner's own;
 * `newNick`: the unavailable presence of a nick change (§7.6, with status 303), the role kept.
 */
function occupantPresence(room: string, j: Joined, o: Occupant, to: string, codes: string[] = [], unavailable = false, newNick?: string): Element {
  const a = affiliationOf(j, o.jid);
  const p = xml('presence', { from: `${room}/${o.nick}`, to, ...(unavailable ? { type: 'unavailable' } : {}) });
  if (!unavailable) p.children.push(...o.presence);
  const item = { affiliation: a.affiliation, role: unavailable && newNick === undefined ? 'none' : a.role, ...(newNick !== undefined ? { nick: newNick } : {}) };
  p.children.push(xml('x', { xmlns: NS_MUC_USER }, xml('item', item), ...codes.map((code) => xml('status', { code }))));
  return p;
}

const sameJid = (a: string | undefined, b: string) => a !== undefined && a.toLowerCase() === b.toLowerCase();

/** Is the session of occupant `o` still in the room under its nick? (alive.ts, answered in fromBackend) */
function occupantAlive(ctx: RuleContext, room: string, o: Occupant): Promise<boolean> {
  return isAlive(ctx, o.jid, { room, nick: o.nick });
}

/** Forget a room (a leave, a failed join): its sweep stops. */
function forget(st: MucState, room: string): void {
  clearInterval(st.rooms.get(room)?.timer);
  st.rooms.delete(room);
}

/** A stored groupchat message as an occupant gets it; `delayed`: history, with a XEP-0203 delay. */
function groupchat(room: string, m: StoredMessage, to: string, delayed: boolean): Element {
  const out = xml('message', { ...(m.message.attrs as Record<string, string>), to });
  out.children = [...m.message.children];
  if (delayed) out.children.push(xml('delay', { xmlns: NS_DELAY, from: room, stamp: m.at }));
  return out;
}

/** XEP-0045 §7.2.15: which of the stored messages a joiner asked for (at most `limit`). */
function historyWanted(messages: StoredMessage[], x: Element | undefined, limit: number): StoredMessage[] {
  const h = x?.getChild('history');
  let out = messages;
  const num = (name: string) => {
    const v = h?.attrs[name] as string | undefined;
    const n = v === undefined ? NaN : Number(v);
    return Number.isFinite(n) && n >= 0 ? n : undefined;
  };
  const seconds = num('seconds');
  if (seconds !== undefined) out = out.filter((m) => Date.parse(m.at) >= Date.now() - seconds * 1000);
  const since = h?.attrs.since as string | undefined;
  if (since && !Number.isNaN(Date.parse(since))) out = out.filter((m) => Date.parse(m.at) >= Date.parse(since));
  const max = Math.min(num('maxstanzas') ?? limit, limit);
  out = max === 0 ? [] : out.slice(-max);
  const maxchars = num('maxchars');
  if (maxchars === 0) return [];
  if (maxchars !== undefined) {
    let total = 0;
    const kept: StoredMessage[] = [];
    for (const m of [...out].reverse()) {
      total += m.message.toString().length;
      if (total > maxchars) break;
      kept.unshift(m);
    }
    out = kept;
  }
  return out;
}

/** What a room's meta node holds: its creator (the owner), its subject, its configuration. */
function readMeta(res: Element): { owner?: string; subject?: StoredMessage; config: RoomConfig } {
  const out: { owner?: string; subject?: StoredMessage; config: RoomConfig } = { config: {} };
  for (const item of itemsOfResult(res)) {
    if (item.id === 'room' && typeof item.payload?.attrs.owner === 'string') out.owner = item.payload.attrs.owner.toLowerCase();
    else if (item.id === 'subject') {
      const m = storedMessage(item.id, item.payload);
      if (m) out.subject = m;
    } else if (item.id === 'config') out.config = readConfig(item.payload);
  }
  return out;
}

function iqResult(s: { attrs: Record<string, string | undefined> }, ctx: RuleContext, ...children: Element[]): Element {
  return xml('iq', { type: 'result', id: s.attrs.id ?? '', from: s.attrs.to ?? '', to: ctx.jid.toString() }, ...children);
}

export function mucRule(opts: MucOptions = {}): Rule {
  const served = new Answers();
  const prefix = opts.servicePrefix !== undefined ? `${opts.servicePrefix.toLowerCase()}.` : MUC_SERVICE_PREFIX;
  /** a JID whose domain may be a MUC service (the prefix at the start of the domain part) */
  const mucHost = new RegExp(`(^|@)${prefix.replace(/[.\-]/g, '\\$&')}`, 'i');
  // This proxy instance, named in its occupants' items: a joiner asks one occupant per other instance
  // whether it is alive (an instance that died took all its sessions with it) instead of every
  // occupant, and answers for this instance's own sessions without asking (`local`).
  const instance = randomToken(9);
  const local = new Map<string, RuleContext>();
  const localAlive = (room: string, o: Occupant): boolean => {
    const ctx = local.get(o.jid);
    return ctx !== undefined && ctx.state.has(KEY) && stateOf(ctx).rooms.get(room)?.nick === o.nick;
  };
  const aliveCheck = (ctx: RuleContext, room: string, o: Occupant): Promise<boolean> =>
    o.instance === instance ? Promise.resolve(localAlive(room, o)) : occupantAlive(ctx, room, o);
  const history = opts.history ?? DEFAULT_HISTORY;
  const serviceFor = (domain: string) => chatService(domain, opts.pubsubService).toLowerCase();

  /** The room's served domain, when `to` is this proxy's MUC service or one of its rooms. */
  async function ours(ctx: RuleContext, host: string): Promise<string | undefined> {
    const domain = mucDomainOf(host, prefix);
    if (!domain || !hasAccount(ctx)) return undefined;
    return (await servedBy(ctx, domain, served)) ? domain : undefined;
  }

  function deliverEvent(ctx: RuleContext, room: string, j: Joined, ev: PubsubEvent, kind: 'messages' | 'occupants', skip?: Set<string>): void {
    const me = ctx.jid.toString();
    if (kind === 'messages') {
      for (const item of ev.items) {
        if (skip?.has(item.id)) continue;
        const m = storedMessage(item.id, item.payload);
        if (!m || bareOf(m.from).toLowerCase() !== room) continue;
        ctx.toClient(groupchat(room, m, me, false));
      }
      return;
    }
    const gone = [...ev.retracts];
    for (const item of ev.items) {
      const o = readOccupant(item.id, item.payload);
      if (!o) {
        gone.push(item.id); // a vacant item: nobody holds the nick
        continue;
      }
      const prev = o.old !== undefined ? j.occupants.get(o.old) : undefined;
      if (prev && prev.jid === o.jid) {
        // XEP-0045 §7.6.3: the old nick goes with 303 and the new nick, then the new one comes
        j.occupants.delete(prev.nick);
        if (o.jid !== me) ctx.toClient(occupantPresence(room, j, prev, me, ['303'], true, o.nick));
      }
      j.occupants.set(o.nick, o);
      if (o.jid !== me) ctx.toClient(occupantPresence(room, j, o, me));
    }
    for (const nick of gone) {
      const o = j.occupants.get(nick);
      if (!o) continue;
      j.occupants.delete(nick);
      if (o.jid !== me) ctx.toClient(occupantPresence(room, j, o, me, [], true));
    }
  }

  /**
   * Take an occupant item away: retracted (by the service account where there is one: Prosody lets
   * only owners and publishers retract), or else, where the backend refuses (ejabberd: only the
   * item's first publisher or the node's owner), overwritten with a vacant item.
   */
  async function removeItem(ctx: RuleContext, room: string, j: Joined, nick: string): Promise<void> {
    const node = roomNodes(room).occupants;
    try {
      await (ctx.service ?? ctx).request(ps.retract(j.service, node, nick));
    } catch (err) {
      if (err instanceof StanzaError && err.condition === 'item-not-found') return;
      await ctx.request(ps.publish(j.service, node, nick, vacantPayload(nick))).catch((e: unknown) => ctx.log.warn({ err: String(e), room, nick }, 'occupant item not removed'));
    }
  }

  /** Unsubscribe, and retract our occupant item unless another session holds the nick (a leave, a dropped session). */
  async function leaveNodes(ctx: RuleContext, room: string, j: Joined, retract: boolean): Promise<void> {
    const nodes = roomNodes(room);
    const me = ctx.jid.toString();
    const holder = j.occupants.get(j.nick);
    await Promise.all([
      retract && (holder === undefined || holder.jid === me) ? removeItem(ctx, room, j, j.nick) : undefined,
      ctx.request(ps.unsubscribe(j.service, nodes.occupants, me)).catch(() => undefined),
      ctx.request(ps.unsubscribe(j.service, nodes.messages, me)).catch(() => undefined),
    ]);
  }

  async function join(ctx: RuleContext, el: Element, room: string, nick: string, domain: string): Promise<void> {
    const st = stateOf(ctx);
    const me = ctx.jid.toString();
    const current = st.rooms.get(room);
    if (current) {
      if (current.pending || current.changing) return; // still joining (or changing): its own presence follows
      if (current.nick !== nick) {
        await changeNick(ctx, el, room, current, nick);
        return;
      }
      // a presence update in the room
      await ctx.request(ps.publish(current.service, roomNodes(room).occupants, nick, occupantPayload(me, nick, el, undefined, instance)));
      current.occupants.set(nick, readOccupant(nick, occupantPayload(me, nick, el, undefined, instance))!);
      return;
    }
    const service = serviceFor(domain);
    const nodes = roomNodes(room);
    const j: Joined = { nick, service, owner: undefined, occupants: new Map(), pending: [] };
    st.rooms.set(room, j);
    local.set(me, ctx);
    // XEP-0045 §7.2.9 ff.: the answer to the join itself (its id, RFC 6120 §8.1.3), with the MUC <x/>
    // (clients such as slixmpp recognise a join error by it)
    const refuse = (e: StanzaError) => {
      const answer = errorReply(xml('presence', { ...(el.attrs as Record<string, string>), to: `${room}/${nick}`, from: me }), e);
      answer.children.unshift(xml('x', { xmlns: NS_MUC }));
      ctx.toClient(answer);
    };
    const fail = (err: unknown) => {
      forget(st, room);
      ctx.log.warn({ err: String(err), room }, 'join failed');
      refuse(err instanceof StanzaError ? err : new StanzaError('internal-server-error'));
    };
    let created: boolean;
    let occupants: Element, meta: Element, messages: Element;
    try {
      created = await createRoom(ctx, accountOf(ctx).profile, service, room, history);
      await Promise.all([ctx.request(ps.subscribe(service, nodes.occupants, me)), ctx.request(ps.subscribe(service, nodes.messages, me))]);
      [occupants, meta, messages] = await Promise.all([ctx.request(ps.items(service, nodes.occupants)), ctx.request(ps.items(service, nodes.meta)), ctx.request(ps.items(service, nodes.messages))]);
    } catch (err) {
      fail(err);
      await leaveNodes(ctx, room, j, false);
      return;
    }
    const info = readMeta(meta);
    j.owner = created ? ctx.bare : info.owner;
    const subject = info.subject;
    if (!passwordOpens(info.config, el.getChild('x', NS_MUC)?.getChildText('password') ?? undefined)) {
      // XEP-0045 §7.2.6
      forget(st, room);
      refuse(new StanzaError('not-authorized', 'this room needs a password', 'auth'));
      await leaveNodes(ctx, room, j, false);
      return;
    }
    for (const item of itemsOfResult(occupants)) {
      const o = readOccupant(item.id, item.payload);
      if (o) j.occupants.set(o.nick, o);
    }
    // a nick change caught between its two steps: the new item stands for the occupant
    for (const o of [...j.occupants.values()]) if (o.old !== undefined && j.occupants.get(o.old)?.jid === o.jid) j.occupants.delete(o.old);
    // occupants whose session is gone (their proxy instance died): never shown, removed for everybody
    await dropDeadInstances(ctx, room, j, [...j.occupants.values()].filter((o) => o.jid !== me));
    const taken = j.occupants.get(nick);
    if (taken && bareOf(taken.jid).toLowerCase() !== ctx.bare) {
      // XEP-0045 §7.2.9: the nick is another user's
      forget(st, room);
      refuse(new StanzaError('conflict', 'that nickname is in use', 'cancel'));
      await leaveNodes(ctx, room, j, false);
      return;
    }
    const mine = readOccupant(nick, occupantPayload(me, nick, el, undefined, instance))!;
    try {
      await ctx.request(ps.publish(service, nodes.occupants, nick, occupantPayload(me, nick, el, undefined, instance)));
    } catch (err) {
      fail(err);
      await leaveNodes(ctx, room, j, true);
      return;
    }
    // XEP-0045 §7.2: the others, then the joiner's own presence, the history, the subject
    for (const o of j.occupants.values()) if (o.nick !== nick && o.jid !== me) ctx.toClient(occupantPresence(room, j, o, me));
    j.occupants.set(nick, mine);
    ctx.toClient(occupantPresence(room, j, mine, me, created ? ['110', '201'] : ['110']));
    const stored = itemsOfResult(messages)
      .map((item) => ({ id: item.id, m: storedMessage(item.id, item.payload) }))
      .filter((x): x is { id: string; m: StoredMessage } => x.m !== undefined && x.m.message.getChild('body') !== undefined && bareOf(x.m.from).toLowerCase() === room)
      .sort((a, b) => (a.m.key < b.m.key ? -1 : 1));
    for (const m of historyWanted(stored.map((x) => x.m), el.getChild('x', NS_MUC), history)) ctx.toClient(groupchat(room, m, me, true));
    const subjectEl = subject?.message.getChild('subject');
    ctx.toClient(xml('message', { type: 'groupchat', from: room, to: me }, subjectEl ?? xml('subject')));
    // what was notified meanwhile (the history's items excepted)
    const seen = new Set(stored.map((x) => x.id));
    const pending = j.pending ?? [];
    j.pending = undefined;
    for (const ev of pending) deliverEvent(ctx, room, j, ev, roomOfNode(ev.node)!.kind === 'messages' ? 'messages' : 'occupants', seen);
    j.timer = setInterval(() => void sweep(ctx, room, j), opts.sweepInterval ?? DEFAULT_SWEEP_MS);
    j.timer.unref();
  }

  /**
   * Check `list` with the alive query; remove the items of the dead (for everybody: the retraction's
   * notification tells every occupant, this session included, unless `now`: then they are taken out of
   * this session's list at once, a joiner never seeing them). Returns whether all were alive.
   */
  async function dropDead(ctx: RuleContext, room: string, j: Joined, list: Occupant[], now = false): Promise<boolean> {
    const alive = await Promise.all(list.map((o) => aliveCheck(ctx, room, o)));
    return dropThese(ctx, room, j, list.filter((_, i) => !alive[i]), now);
  }

  /**
   * What a join checks: this instance's occupants locally, and one occupant of each other instance
   * (all of that instance's occupants when that one is gone); items without an instance one by one.
   * A session that is gone while its instance lives (its leave's retraction failed) is the periodic
   * sweep's to find.
   */
  async function dropDeadInstances(ctx: RuleContext, room: string, j: Joined, list: Occupant[]): Promise<void> {
    const groups = new Map<string, Occupant[]>();
    const single: Occupant[] = [];
    const dead: Occupant[] = [];
    for (const o of list) {
      if (o.instance === instance) {
        if (!localAlive(room, o)) dead.push(o);
      } else if (o.instance === undefined) single.push(o);
      else {
        const g = groups.get(o.instance);
        if (g) g.push(o);
        else groups.set(o.instance, [o]);
      }
    }
    const checks = await Promise.all([
      ...single.map(async (o) => ((await occupantAlive(ctx, room, o)) ? [] : [o])),
      ...[...groups.values()].map(async (g) => {
        if (await occupantAlive(ctx, room, g[0]!)) return [];
        const rest = await Promise.all(g.slice(1).map((o) => occupantAlive(ctx, room, o)));
        return [g[0]!, ...g.slice(1).filter((_, i) => !rest[i])];
      }),
    ]);
    await dropThese(ctx, room, j, [...dead, ...checks.flat()], true);
  }

  async function dropThese(ctx: RuleContext, room: string, j: Joined, dead: Occupant[], now: boolean): Promise<boolean> {
    for (const o of dead) {
      ctx.log.info({ room, nick: o.nick }, 'occupant whose session is gone removed');
      if (now && j.occupants.get(o.nick)?.jid === o.jid) j.occupants.delete(o.nick);
    }
    await Promise.all(dead.map((o) => removeItem(ctx, room, j, o.nick)));
    return dead.length === 0;
  }

  /**
   * The periodic sweep, every sessions' timer: the live occupant with the lowest nick checks all the
   * others. A session checks those ranked before it, one at a time, until one is alive (that one
   * sweeps: usually one alive iq per session and interval); if none is, it is the lowest live one.
   */
  async function sweep(ctx: RuleContext, room: string, j: Joined): Promise<void> {
    if (j.sweeping || j.pending || j.changing || stateOf(ctx).rooms.get(room) !== j) return;
    j.sweeping = true;
    try {
      const me = ctx.jid.toString();
      const others = [...j.occupants.values()].filter((o) => o.jid !== me).sort((a, b) => (a.nick < b.nick ? -1 : a.nick > b.nick ? 1 : 0));
      for (const o of others.filter((o) => o.nick < j.nick)) if (await dropDead(ctx, room, j, [o])) return;
      await dropDead(ctx, room, j, others.filter((o) => o.nick > j.nick));
    } catch (err) {
      ctx.log.warn({ err: String(err), room }, 'occupant sweep failed');
    } finally {
      j.sweeping = false;
    }
  }

  /**
   * XEP-0045 §7.6: the new nick's item (naming the old nick, so that every proxy shows the change as
   * §7.6.3 does), then the old item retracted. A nick another user holds gets `conflict` (unless its
   * session is gone), the old nick staying.
   */
  async function changeNick(ctx: RuleContext, el: Element, room: string, j: Joined, nick: string): Promise<void> {
    const me = ctx.jid.toString();
    const node = roomNodes(room).occupants;
    const old = j.nick;
    const refuse = (e: StanzaError) => ctx.toClient(errorReply(xml('presence', { to: `${room}/${nick}`, from: me }), e));
    j.changing = true;
    try {
      const res = await ctx.request(ps.items(j.service, node));
      const item = itemsOfResult(res).find((i) => i.id === nick);
      const holder = item ? readOccupant(item.id, item.payload) : undefined;
      if (holder && bareOf(holder.jid).toLowerCase() !== ctx.bare && (await dropDead(ctx, room, j, [holder]))) {
        refuse(new StanzaError('conflict', 'that nickname is in use', 'cancel'));
        return;
      }
      const payload = occupantPayload(me, nick, el, old, instance);
      j.nick = nick; // before the publish: an alive query about the new item says yes
      try {
        await ctx.request(ps.publish(j.service, node, nick, payload));
      } catch (err) {
        j.nick = old;
        throw err;
      }
      const mine = readOccupant(nick, payload)!;
      const before = j.occupants.get(old) ?? { nick: old, jid: me, presence: [] };
      j.occupants.delete(old);
      j.occupants.set(nick, mine);
      ctx.toClient(occupantPresence(room, j, before, me, ['303', '110'], true, nick));
      ctx.toClient(occupantPresence(room, j, mine, me, ['110']));
      await removeItem(ctx, room, j, old);
    } catch (err) {
      ctx.log.warn({ err: String(err), room }, 'nick change failed');
      refuse(err instanceof StanzaError ? new StanzaError(err.condition) : new StanzaError('internal-server-error'));
    } finally {
      j.changing = false;
    }
  }

  /**
   * XEP-0045 §7.5, a private message: sent by the sender's proxy to the target occupant's bound full
   * JID (from its item) as an iq of the proxy's own, which the target's proxy answers (receivePrivate).
   * Why so: an iq to a full JID is routed to that one session or bounced by the backend (never
   * stored offline, carbon-copied, archived or given to another resource, as a <message/> to a gone
   * resource may be), the answer says whether it arrived and never reaches the sender's client, and
   * the target's real JID is seen only by the proxies (semi-anonymous rooms). A room node for private
   * messages would be readable by every occupant's session (open access), and one node per pair of
   * occupants would have to be made and subscribed before the first message. A client cannot forge
   * the iq: the backend stamps its real full JID as `from`, and the target's proxy delivers only if
   * the occupants node lists that JID under the nick it names. The lane is not held.
   */
  function sendPrivate(ctx: RuleContext, el: Element, room: string, nick: string): void {
    const j = stateOf(ctx).rooms.get(room);
    const me = ctx.jid.toString();
    const to = `${room}/${nick}`;
    const bounce = (e: StanzaError) => ctx.toClient(errorReply(xml('message', { ...(el.attrs as Record<string, string>), to, from: me }), e));
    if (!j || j.pending) {
      bounce(new StanzaError('not-acceptable', 'only occupants may send private messages'));
      return;
    }
    const target = j.occupants.get(nick);
    if (!target) {
      bounce(new StanzaError('item-not-found', 'no such occupant', 'cancel'));
      return;
    }
    const attrs: Record<string, string> = { xmlns: 'jabber:client' };
    for (const a of ['type', 'id', 'xml:lang']) if (typeof el.attrs[a] === 'string') attrs[a] = el.attrs[a] as string;
    const inner = xml('message', attrs);
    inner.children = [...el.children];
    const iq = xml('iq', { type: 'set', to: target.jid }, xml('private', { xmlns: NS_MUC_PRIVATE, room, from: j.nick, to: nick }, inner));
    ctx.request(iq).catch(async (err: unknown) => {
      const condition = err instanceof StanzaError ? err.condition : 'internal-server-error';
      ctx.log.info({ room, nick, condition }, 'private message not delivered');
      if (condition === 'not-acceptable' || condition === 'remote-server-timeout') {
        bounce(new StanzaError(condition));
        return;
      }
      // not (or no longer) there: the backend's bounce, or the target's proxy saying so
      bounce(new StanzaError('item-not-found', 'no such occupant', 'cancel'));
      await dropDead(ctx, room, j, [target]);
    });
  }

  /** Is `jid` the occupant `nick` of the room? This session's list, else the occupants node (a join not yet notified). */
  async function isOccupant(ctx: RuleContext, room: string, j: Joined, nick: string, jid: string): Promise<boolean> {
    if (sameJid(j.occupants.get(nick)?.jid, jid)) return true;
    const res = await ctx.request(ps.items(j.service, roomNodes(room).occupants)).catch(() => undefined);
    return res !== undefined && itemsOfResult(res).some((i) => i.id === nick && sameJid(readOccupant(i.id, i.payload)?.jid, jid));
  }

  /** The target's side of sendPrivate: `from` is the sender's full JID as the backend stamped it. */
  async function receivePrivate(ctx: RuleContext, el: Element, from: string): Promise<void> {
    const p = el.getChild('private', NS_MUC_PRIVATE)!;
    const room = String(p.attrs.room ?? '').toLowerCase();
    const fromNick = p.attrs.from as string | undefined;
    const inner = p.getChild('message');
    const j = ctx.state.has(KEY) ? stateOf(ctx).rooms.get(room) : undefined;
    const answer = (e?: StanzaError) => ctx.toBackend(e ? errorReply(el, e) : xml('iq', { type: 'result', id: el.attrs.id ?? '', to: from }));
    if (!j || j.pending || j.nick !== p.attrs.to || !fromNick || !inner) return answer(new StanzaError('item-not-found'));
    if (!(await isOccupant(ctx, room, j, fromNick, from))) return answer(new StanzaError('not-acceptable', 'not from that occupant'));
    const attrs: Record<string, string> = { from: `${room}/${fromNick}`, to: ctx.jid.toString() };
    for (const a of ['type', 'id', 'xml:lang']) if (typeof inner.attrs[a] === 'string') attrs[a] = inner.attrs[a] as string;
    const out = xml('message', attrs);
    out.children = [...inner.children];
    if (!out.getChild('x', NS_MUC_USER)) out.children.push(xml('x', { xmlns: NS_MUC_USER })); // §7.5
    ctx.toClient(out);
    answer();
  }

  async function leave(ctx: RuleContext, room: string, tell: boolean): Promise<void> {
    const st = stateOf(ctx);
    const j = st.rooms.get(room);
    if (!j) return;
    forget(st, room);
    const me = ctx.jid.toString();
    if (tell) ctx.toClient(occupantPresence(room, j, j.occupants.get(j.nick) ?? { nick: j.nick, jid: me, presence: [] }, me, ['110'], true));
    await leaveNodes(ctx, room, j, true);
  }

  async function sendGroupchat(ctx: RuleContext, el: Element, room: string): Promise<void> {
    const j = stateOf(ctx).rooms.get(room);
    const me = ctx.jid.toString();
    const bounce = (e: StanzaError) => ctx.toClient(errorReply(xml('message', { ...(el.attrs as Record<string, string>), to: room, from: me }), e));
    if (!j || j.pending) {
      bounce(new StanzaError('not-acceptable', 'only occupants may send messages to the room'));
      return;
    }
    const nodes = roomNodes(room);
    const payload = messagePayload(el, `${room}/${j.nick}`, new Date().toISOString());
    try {
      if (el.getChild('subject')) await ctx.request(ps.publish(j.service, nodes.meta, 'subject', payload));
      await ctx.request(ps.publish(j.service, nodes.messages, randomToken(9), payload));
    } catch (err) {
      ctx.log.warn({ err: String(err), room }, 'groupchat message not published');
      bounce(err instanceof StanzaError ? err : new StanzaError('internal-server-error'));
    }
  }

  async function iqToService(ctx: RuleContext, s: { attrs: Record<string, string | undefined>; el: Element }, host: string, domain: string): Promise<void> {
    const query = s.el.getChild('query');
    if (s.attrs.type === 'get' && query?.attrs.xmlns === NS_DISCO_INFO && !query.attrs.node) {
      ctx.toClient(iqResult(s, ctx, xml('query', { xmlns: NS_DISCO_INFO }, xml('identity', { category: 'conference', type: 'text', name: 'Chatrooms' }), ...[NS_MUC, NS_DISCO_INFO, NS_DISCO_ITEMS].map((v) => xml('feature', { var: v })))));
      return;
    }
    if (s.attrs.type === 'get' && query?.attrs.xmlns === NS_DISCO_ITEMS && !query.attrs.node) {
      const res = await ctx.request(ps.discoItems(serviceFor(domain))).catch(() => undefined);
      const rooms = new Set<string>();
      for (const item of res?.getChild('query')?.getChildren('item') ?? []) {
        const r = roomOfNode((item.attrs.node as string | undefined) ?? '');
        if (r && r.kind === 'messages' && r.room.endsWith(`@${host}`)) rooms.add(r.room);
      }
      ctx.toClient(iqResult(s, ctx, xml('query', { xmlns: NS_DISCO_ITEMS }, ...[...rooms].sort().map((jid) => xml('item', { jid, name: jid.slice(0, jid.indexOf('@')) })))));
      return;
    }
    ctx.toClient(errorReply(s.el, new StanzaError('feature-not-implemented'), host));
  }

  /**
   * XEP-0045 §10: the owner's configuration form (get), its submission or an instant room's empty
   * one (set, §10.1.2), a cancel; only from the room's owner (its creator). Destroying a room is not
   * built.
   */
  async function ownerIq(ctx: RuleContext, el: Element, query: Element, room: string, domain: string): Promise<void> {
    const service = serviceFor(domain);
    const node = roomNodes(room).meta;
    try {
      const info = await ctx.request(ps.items(service, node)).then(readMeta, () => {
        throw new StanzaError('item-not-found');
      });
      if (info.owner !== ctx.bare) throw new StanzaError('forbidden', 'only the room owner configures it', 'auth');
      const x = query.getChild('x', 'jabber:x:data');
      if (el.attrs.type === 'get') {
        ctx.toClient(iqResult({ attrs: el.attrs }, ctx, xml('query', { xmlns: NS_MUC_OWNER }, configForm(info.config))));
        return;
      }
      if (el.attrs.type !== 'set' || query.getChild('destroy')) throw new StanzaError('feature-not-implemented', 'destroying a room is not supported yet');
      if (x?.attrs.type === 'submit') {
        const next = applyForm(info.config, x);
        await (ctx.service ?? ctx).request(ps.publish(service, node, 'config', configPayload(next)));
      } else if (x?.attrs.type !== 'cancel') throw new StanzaError('bad-request', 'a submitted or cancelled jabber:x:data form is expected');
      ctx.toClient(iqResult({ attrs: el.attrs }, ctx));
    } catch (err) {
      if (!(err instanceof StanzaError)) ctx.log.warn({ err: String(err), room }, 'room configuration failed');
      ctx.toClient(errorReply(el, err instanceof StanzaError ? err : new StanzaError('internal-server-error'), room));
    }
  }

  async function iqToRoom(ctx: RuleContext, s: { attrs: Record<string, string | undefined>; el: Element }, room: string, domain: string): Promise<void> {
    const query = s.el.getChild('query');
    const ns = query?.attrs.xmlns as string | undefined;
    if (s.attrs.type === 'get' && ns === NS_DISCO_INFO && !query!.attrs.node) {
      const info = await ctx.request(ps.items(serviceFor(domain), roomNodes(room).meta)).then(readMeta, () => undefined);
      if (!info) {
        ctx.toClient(errorReply(s.el, new StanzaError('item-not-found'), room));
        return;
      }
      const c = info.config;
      const name = c.name ?? room.slice(0, room.indexOf('@'));
      const features = [...ROOM_FEATURES, c.secret ? 'muc_passwordprotected' : 'muc_unsecured'];
      const children = [xml('identity', { category: 'conference', type: 'text', name }), ...features.map((v) => xml('feature', { var: v }))];
      // XEP-0045 §6.4: the extended room information
      if (c.description) {
        children.push(
          xml('x', { xmlns: 'jabber:x:data', type: 'result' }, xml('field', { var: 'FORM_TYPE', type: 'hidden' }, xml('value', null, 'http://jabber.org/protocol/muc#roominfo')), xml('field', { var: 'muc#roominfo_description', label: 'Description' }, xml('value', null, c.description))),
        );
      }
      ctx.toClient(iqResult(s, ctx, xml('query', { xmlns: NS_DISCO_INFO }, ...children)));
      return;
    }
    if (s.attrs.type === 'get' && ns === NS_DISCO_ITEMS) {
      ctx.toClient(iqResult(s, ctx, xml('query', { xmlns: NS_DISCO_ITEMS })));
      return;
    }
    if (ns === NS_MUC_OWNER) {
      await ownerIq(ctx, s.el, query!, room, domain);
      return;
    }
    ctx.toClient(errorReply(s.el, new StanzaError('feature-not-implemented'), room));
  }

  return {
    name: 'muc',
    sees: { client: ['message', 'presence', 'iq'], backend: ['message', 'iq'] },

    fromClient(s, ctx) {
      if (s.name === 'iq' && s.attrs.type === 'get' && s.attrs.id && s.childNs === NS_DISCO_ITEMS && s.attrs.to?.toLowerCase() === ctx.domain && !s.el.getChild('query')?.attrs.node) {
        stateOf(ctx).disco.add(s.attrs.id); // the backend answers; fromBackend adds the MUC service
        return false;
      }
      if (s.name === 'presence' && s.attrs.to === undefined && s.attrs.type === 'unavailable') {
        // broadcast unavailable presence: the user leaves every room (and presence.ts publishes it)
        const rooms = ctx.state.has(KEY) ? [...stateOf(ctx).rooms.keys()] : [];
        if (rooms.length === 0) return false;
        return Promise.all(rooms.map((r) => leave(ctx, r, true))).then(() => false);
      }
      const to = s.attrs.to;
      if (to === undefined || (s.name !== 'presence' && s.name !== 'message' && s.name !== 'iq')) return false;
      // every stanza with a `to` comes here: a look at the text before a parse
      if (!mucHost.test(to)) return false;
      const jid = parseJid(to);
      if (!jid || !jid.domain.toLowerCase().startsWith(prefix)) return false;
      const host = jid.domain.toLowerCase();
      const el = s.el;
      return ours(ctx, host).then(async (domain) => {
        if (!domain) return false; // another server's MUC service: the backend answers
        const type = s.attrs.type;
        if (type === 'error' || (s.name === 'iq' && type === 'result')) return true;
        if (!jid.local) {
          if (s.name === 'iq') await iqToService(ctx, s, host, domain);
          else ctx.toClient(errorReply(el, new StanzaError('service-unavailable'), host));
          return true;
        }
        const room = `${jid.local.toLowerCase()}@${host}`;
        const nick = jid.resource;
        if (s.name === 'presence') {
          if (type === 'unavailable') await leave(ctx, room, true);
          else if (type !== undefined) ctx.toClient(errorReply(el, new StanzaError('bad-request', `presence type '${type}'`), to));
          else if (!nick) ctx.toClient(errorReply(el, new StanzaError('jid-malformed', 'a nickname is needed'), to));
          else await join(ctx, el, room, nick, domain);
          return true;
        }
        if (s.name === 'message' && nick && type !== 'groupchat') {
          sendPrivate(ctx, el, room, nick);
          return true;
        }
        if (s.name === 'iq') {
          if (nick) ctx.toClient(errorReply(el, new StanzaError('feature-not-implemented', 'iqs to occupants are not supported yet'), to));
          else await iqToRoom(ctx, s, room, domain);
          return true;
        }
        if (!nick && type === 'groupchat') await sendGroupchat(ctx, el, room);
        else ctx.toClient(errorReply(el, new StanzaError(nick ? 'bad-request' : 'feature-not-implemented', nick ? 'a groupchat message goes to the room' : undefined), to));
        return true;
      });
    },

    fromBackend(s, ctx) {
      if (s.name === 'iq' && s.attrs.from && s.attrs.type === 'get' && s.childIs('alive', NS_ALIVE)) {
        // the alive query about an occupant item (occupantAlive); without a room presence.ts answers
        const q = s.el.getChild('alive', NS_ALIVE)!;
        if (typeof q.attrs.room !== 'string') return false;
        const j = ctx.state.has(KEY) ? stateOf(ctx).rooms.get(q.attrs.room) : undefined;
        ctx.toBackend(j && j.nick === q.attrs.nick ? xml('iq', { type: 'result', id: s.attrs.id ?? '', to: s.attrs.from }) : errorReply(s.el, 'item-not-found'));
        return true;
      }
      if (s.name === 'iq' && s.attrs.from && s.attrs.type === 'set' && s.childIs('private', NS_MUC_PRIVATE)) {
        const el = s.el;
        const from = s.attrs.from;
        return receivePrivate(ctx, el, from).then(() => true);
      }
      if (s.name === 'iq') {
        if (s.attrs.type !== 'result' || !s.attrs.id || !ctx.state.has(KEY) || !stateOf(ctx).disco.delete(s.attrs.id)) return false;
        const el = s.el;
        const query = el.getChild('query', NS_DISCO_ITEMS);
        if (!query) return false;
        const jid = prefix + ctx.domain;
        if (!query.getChildren('item').some((i) => i.attrs.jid === jid)) query.children.push(xml('item', { jid, name: 'Chatrooms' }));
        ctx.toClient(el);
        return true;
      }
      const ev = eventOf(s);
      if (!ev || !ev.node.startsWith(NODE_MUC_PREFIX)) return false;
      const r = roomOfNode(ev.node);
      const j = r && ctx.state.has(KEY) ? stateOf(ctx).rooms.get(r.room) : undefined;
      if (!r || !j || r.kind === 'meta' || ev.service.toLowerCase() !== j.service) return true; // not (or no longer) ours
      if (j.pending) j.pending.push(ev);
      else deliverEvent(ctx, r.room, j, ev, r.kind);
      return true;
    },

    onClose(ctx) {
      local.delete(ctx.jid.toString());
      if (!ctx.state.has(KEY)) return;
      return Promise.all([...stateOf(ctx).rooms.keys()].map((r) => leave(ctx, r, false))).then(() => undefined);
    },
  };
}
