// A RuleContext that records what the rules send, with a small scripted backend answering their
// requests, so that the fixture tests run the rule code the proxy runs, without a socket.
import type { Element } from 'ltx';
import jidLib from '@xmpp/jid';
import type { Rule, RuleContext } from '../../src/rules/types.js';
import { kindOf, laneRoutes } from '../../src/session/pipeline.js';
import { silentLogger } from '../../src/log.js';
import { parseElement, stripWhitespace, xml, canonicalXml } from '../../src/stream/xml.js';
import { stanzaOf } from '../../src/stream/stanza.js';
import { StanzaError } from '../../src/xmpp/stanza-error.js';
import { NODE_INBOX, NODE_PRESENCE, NODE_ROSTER } from '../../src/rules/account.js';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT } from './common.js';

export type Answer = Element | StanzaError | undefined;

export interface Recorder {
  ctx: RuleContext;
  toClient: Element[];
  toBackend: Element[];
  requests: Element[];
  /** stored items per node of the user's own PEP service, served to items requests */
  nodes: Map<string, Element[]>;
  /** the stream errors a rule ended the session with */
  ended: Array<{ condition: string; text: string | undefined }>;
}

export function recordingContext(jid: string, opts: { identity?: string; answer?: (iq: Element) => Answer } = {}): Recorder {
  const full = jidLib.parse(jid);
  const rec: Recorder = { toClient: [], toBackend: [], requests: [], nodes: new Map(), ended: [], ctx: undefined as unknown as RuleContext };
  // the user's own PEP nodes that exist: these three from an earlier login, then what is created
  const own = new Set([NODE_PRESENCE, NODE_ROSTER, NODE_INBOX]);
  const answer = (iq: Element): Answer => {
    const custom = opts.answer?.(iq);
    if (custom) return custom;
    const create = iq.getChild('pubsub')?.getChild('create');
    if (create && !iq.attrs.to) own.add(create.attrs.node as string);
    const result = xml('iq', { type: 'result', from: (iq.attrs.to as string | undefined) ?? full.bare().toString() });
    const query = iq.getChild('query');
    if (query?.attrs.xmlns === 'http://jabber.org/protocol/disco#info') {
      result.cnode(xml('query', { xmlns: 'http://jabber.org/protocol/disco#info' }, xml('identity', { category: 'server', type: 'im', name: opts.identity ?? 'ejabberd' })));
    } else if (query?.attrs.xmlns === 'http://jabber.org/protocol/disco#items') {
      result.cnode(xml('query', { xmlns: 'http://jabber.org/protocol/disco#items' }, ...[...own].map((node) => xml('item', { jid: full.bare().toString(), node }))));
    }
    const items = iq.getChild('pubsub')?.getChild('items');
    if (items && !iq.attrs.to) {
      const node = items.attrs.node as string;
      if (!own.has(node) && !rec.nodes.has(node)) return new StanzaError('item-not-found');
      const stored = rec.nodes.get(node) ?? [];
      result.cnode(xml('pubsub', { xmlns: 'http://jabber.org/protocol/pubsub' }, xml('items', { node: items.attrs.node as string }, ...stored)));
    }
    return result;
  };
  rec.ctx = {
    jid: full,
    bare: full.bare().toString(),
    domain: full.domain,
    sessionId: 'test',
    log: silentLogger,
    state: new Map(),
    toClient: (el) => rec.toClient.push(el),
    toBackend: (el) => rec.toBackend.push(el),
    request: (iq) => {
      rec.requests.push(iq);
      const a = answer(iq);
      return a instanceof StanzaError ? Promise.reject(a) : Promise.resolve(a!);
    },
    endSession: (condition, text) => rec.ended.push({ condition, text }),
  };
  return rec;
}

/** Run every rule's onBound, in table order, as the session does. */
export async function bind(rules: Rule[], rec: Recorder): Promise<void> {
  for (const r of rules) await r.onBound?.(rec.ctx);
}

/**
 * Offer a stanza to the rules, in order, through the routes a lane uses (laneRoutes: only the hooks
 * that read its kind, Rule.sees); returns whether one claimed it.
 */
export async function offer(rules: Rule[], rec: Recorder, el: Element, from: 'client' | 'backend'): Promise<boolean> {
  const s = stanzaOf(el);
  const routes = laneRoutes(rules, from);
  for (const i of routes.byKind[kindOf(s)]!) {
    const r = routes.rules[i]!;
    if ((await (from === 'client' ? r.fromClient! : r.fromBackend!).call(r, s, rec.ctx)) === true) return true;
  }
  return false;
}

/** A listing of fixtures/xep-0207 by number: its stanzas, whitespace stripped. */
export function listing(n: number): Element[] {
  const dir = join(ROOT, 'fixtures', 'xep-0207');
  const file = readdirSync(dir).find((f) => f.startsWith(String(n).padStart(2, '0') + '-'));
  if (!file) throw new Error(`no fixture for listing ${n}`);
  const root = stripWhitespace(parseElement(readFileSync(join(dir, file), 'utf8')));
  return root.children.filter((c): c is Element => typeof c !== 'string');
}

/** Canonical form for comparisons, without the attributes named (ids differ by design). */
export function canon(el: Element, ignore: string[] = ['id']): string {
  const copy = parseElement(el.toString());
  stripWhitespace(copy);
  for (const a of ignore) delete copy.attrs[a];
  return canonicalXml(copy);
}
