// XEP-0115 entity capabilities as the proxy needs them for XEP-0163 §4: which PEP nodes a session
// wants notifications of (`<node>+notify` features). The backend has no roster, so it never
// notifies a contact's sessions by caps: the proxy does (pep.ts), and for that it learns each
// session's features itself. The client's <c/> names a verification string; the features behind it
// come from a disco#info of `node#ver` asked of the client. A verified answer (the hash matches,
// §5.1) is cached per proxy by its ver string, so that the next session with the same client software
// costs no query; an answer that does not verify serves only the session that gave it (one client
// must not decide what other users' sessions receive).
import { createHash } from 'node:crypto';
import type { Element } from 'ltx';
import { xml } from '../stream/xml.js';
import { NS_CAPS, NS_DATA, NS_DISCO_INFO } from '../xmpp/ns.js';
import type { RuleContext } from './types.js';

/** verified ver strings remembered per proxy (oldest forgotten first); README "Limits" */
export const CAPS_CACHE_SIZE = 1000;
/** how long a client may take to answer the proxy's disco#info */
export const CAPS_QUERY_TIMEOUT_MS = 10_000;

const NOTIFY = '+notify';

/** The XEP-0115 §5.1 verification string of a disco#info <query/>, with `algo` (sha-1, sha-256...). */
export function capsVerOf(query: Element, algo: string): string | undefined {
  const hash = { 'sha-1': 'sha1', 'sha-224': 'sha224', 'sha-256': 'sha256', 'sha-384': 'sha384', 'sha-512': 'sha512' }[algo];
  if (!hash) return undefined;
  const ids = query
    .getChildren('identity')
    .map((i) => [i.attrs.category ?? '', i.attrs.type ?? '', i.attrs['xml:lang'] ?? '', i.attrs.name ?? ''].join('/') + '<')
    .sort();
  const features = query.getChildren('feature').map((f) => `${f.attrs.var ?? ''}<`).sort();
  const forms = query
    .getChildren('x', NS_DATA)
    .map((x) => {
      const fields = x.getChildren('field');
      const type = fields.find((f) => f.attrs.var === 'FORM_TYPE')?.getChildText('value') ?? '';
      const rest = fields
        .filter((f) => f.attrs.var !== 'FORM_TYPE')
        .map((f) => `${f.attrs.var ?? ''}<` + f.getChildren('value').map((v) => `${v.getText()}<`).sort().join(''))
        .sort();
      return { type, text: `${type}<${rest.join('')}` };
    })
    .sort((a, b) => (a.type < b.type ? -1 : a.type > b.type ? 1 : 0))
    .map((f) => f.text);
  return createHash(hash).update([...ids, ...features, ...forms].join('')).digest('base64');
}

/** The nodes a disco#info answer asks notifications of. */
export function notifyNodes(query: Element): Set<string> {
  const out = new Set<string>();
  for (const f of query.getChildren('feature')) {
    const v = f.attrs.var as string | undefined;
    if (v && v.endsWith(NOTIFY) && v.length > NOTIFY.length) out.add(v.slice(0, -NOTIFY.length));
  }
  return out;
}

/** Per rule table: the features of the ver strings seen so far. */
export class CapsCache {
  private readonly known = new Map<string, Set<string>>();

  /**
   * The +notify nodes of a client whose presence carries `c` (undefined: no caps, no interests).
   * Asks the client when the ver string is new; a client that does not answer has no interests.
   */
  async interests(ctx: RuleContext, c: Element | undefined): Promise<Set<string>> {
    const node = c?.attrs.node as string | undefined;
    const ver = c?.attrs.ver as string | undefined;
    if (!c || !node || !ver || !ctx.requestClient) return new Set();
    const algo = c.attrs.hash as string | undefined;
    const key = `${algo ?? ''} ${ver}`;
    const cached = this.known.get(key);
    if (cached) return cached;
    const query = await ctx
      .requestClient(xml('iq', { type: 'get', to: ctx.jid.toString(), from: ctx.domain }, xml('query', { xmlns: NS_DISCO_INFO, node: `${node}#${ver}` })), CAPS_QUERY_TIMEOUT_MS)
      .then((r) => r.getChild('query', NS_DISCO_INFO))
      .catch((err: unknown) => {
        ctx.log.debug({ err: String(err) }, 'no disco#info for the client caps');
        return undefined;
      });
    if (!query) return new Set();
    const nodes = notifyNodes(query);
    // legacy caps (no hash) name no verifiable string: they serve this session only
    if (algo && capsVerOf(query, algo) === ver) {
      this.known.set(key, nodes);
      if (this.known.size > CAPS_CACHE_SIZE) this.known.delete(this.known.keys().next().value!);
    } else {
      ctx.log.info({ ver }, 'client caps do not verify: not cached');
    }
    return nodes;
  }
}

export function capsOf(presence: Element): Element | undefined {
  return presence.getChild('c', NS_CAPS);
}
