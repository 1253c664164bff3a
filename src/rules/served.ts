// Answers the proxy asks the backend once per proxy (its sessions share them): which domains the
// backend serves (a domain whose disco#info identity is a server: §6 maps messages only to users of
// such a domain, and §5 serves `conference.<domain>` only for such a domain), which nodes exist.
import * as ps from '../pubsub/requests.js';
import { StanzaError } from '../xmpp/stanza-error.js';
import type { RuleContext } from './types.js';

/**
 * Answers the proxy asks the backend once (is a domain served, does a node exist): the promise while
 * the question is open, the value once it is known, so that the common case decides at once.
 */
export class Answers {
  private readonly open = new Map<string, Promise<boolean>>();
  private readonly known = new Map<string, boolean>();

  now(key: string): boolean | undefined {
    return this.known.get(key);
  }

  /** `ask` rejecting (a transient failure) leaves the question open for the next time. */
  get(key: string, ask: () => Promise<boolean>): Promise<boolean> {
    const v = this.known.get(key);
    if (v !== undefined) return Promise.resolve(v);
    let p = this.open.get(key);
    if (!p) {
      p = ask().then(
        (value) => {
          this.known.set(key, value);
          this.open.delete(key);
          return value;
        },
        (err: unknown) => {
          this.open.delete(key);
          throw err;
        },
      );
      this.open.set(key, p);
    }
    return p;
  }
}

/** Is `domain` served by the backend (so that its users have chat nodes)? One disco#info per domain. */
export function askServed(ctx: RuleContext, domain: string): Promise<boolean> {
  return ctx.request(ps.discoInfo(domain)).then(
    (res) => res.getChild('query')?.getChildren('identity').some((i) => i.attrs.category === 'server') ?? false,
    (err: unknown) => {
      if (!(err instanceof StanzaError) || err.condition === 'remote-server-timeout') throw err; // ask again later
      return false;
    },
  );
}

/** Is `domain` served by the backend? The session's own domain always is; a failure to ask: no (for now). */
export function servedBy(ctx: RuleContext, domain: string, cache: Answers): Promise<boolean> {
  if (domain === ctx.domain) return Promise.resolve(true);
  return cache.get(domain, () => askServed(ctx, domain)).catch(() => false);
}
