// Which domains the backend serves: a domain whose disco#info identity is a server. §6 maps messages
// only to users of such a domain, and §5 serves `conference.<domain>` only for such a domain. One
// disco#info per domain and proxy (the cache is the caller's, shared by its sessions).
import * as ps from '../pubsub/requests.js';
import { StanzaError } from '../xmpp/stanza-error.js';
import type { RuleContext } from './types.js';

/** Is `domain` served by the backend? The session's own domain always is. */
export function servedBy(ctx: RuleContext, domain: string, cache: Map<string, Promise<boolean>>): Promise<boolean> {
  if (domain === ctx.domain) return Promise.resolve(true);
  let p = cache.get(domain);
  if (!p) {
    p = ctx.request(ps.discoInfo(domain)).then(
      (res) => res.getChild('query')?.getChildren('identity').some((i) => i.attrs.category === 'server') ?? false,
      (err: unknown) => {
        if (!(err instanceof StanzaError) || err.condition === 'remote-server-timeout') cache.delete(domain); // ask again later
        return false;
      },
    );
    cache.set(domain, p);
  }
  return p;
}
