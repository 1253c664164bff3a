// Which stream features the proxy re-advertises to its client, and how.
//
// A feature is carried across only if the proxy relays it faithfully: SASL mechanisms (relayed
// byte for byte, minus those that cannot survive a proxy), resource binding, the optional session
// establishment, client state indication (top-level nonzas passed through) and the server's caps.
// Everything else the backend offers is left out, each for a reason:
// - STARTTLS: the proxy terminates the client's TLS itself (and offers its own STARTTLS)
// - *-PLUS and EXTERNAL mechanisms: channel binding and client certificates are bound to a TLS
//   channel, and the client's TLS channel is not the backend's
// - stream management (XEP-0198): acks and resumption would count stanzas the rules rewrite
// - roster versioning and pre-approval: the backend has no roster; the rules emulate it
// - in-band registration, SASL2/FAST, legacy iq-auth, compression: not relayed (yet)
import type { Element } from 'ltx';
import { xml } from '../stream/xml.js';
import { NS_BIND, NS_CAPS, NS_CSI, NS_SASL, NS_SESSION, NS_TLS } from '../xmpp/ns.js';

/** Mechanisms the proxy can relay: a name not ending in -PLUS and not EXTERNAL. */
export function relayableMechanism(name: string): boolean {
  return !name.endsWith('-PLUS') && name !== 'EXTERNAL';
}

/** The SASL mechanisms the backend offers, in its order, minus those that cannot be relayed. */
export function mechanismsOf(features: Element | undefined): string[] {
  const mechs = features?.getChild('mechanisms', NS_SASL);
  if (!mechs) return [];
  return mechs.getChildren('mechanism').map((m) => m.getText().trim()).filter(relayableMechanism);
}

export function hasStartTls(features: Element | undefined): boolean {
  return features?.getChild('starttls', NS_TLS) !== undefined;
}

/** Features offered before authentication. */
export function preAuthFeatures(
  upstream: Element | undefined,
  opts: { offerStartTls: boolean; requireTls: boolean },
): Element {
  const out = xml('stream:features');
  if (opts.offerStartTls) {
    out.cnode(xml('starttls', { xmlns: NS_TLS }, opts.requireTls ? xml('required') : null));
    if (opts.requireTls) return out; // RFC 6120 §5.3.1: nothing else until TLS is negotiated
  }
  const mechs = mechanismsOf(upstream);
  if (mechs.length > 0) out.cnode(xml('mechanisms', { xmlns: NS_SASL }, ...mechs.map((m) => xml('mechanism', null, m))));
  const caps = upstream?.getChild('c', NS_CAPS);
  if (caps) out.cnode(caps);
  return out;
}

/** Features offered after authentication: a copy of what can be carried, plus the rules' own. */
export function postAuthFeatures(upstream: Element | undefined, extra: readonly Element[] = []): Element {
  const out = xml('stream:features');
  for (const child of upstream?.children ?? []) {
    if (typeof child === 'string') continue;
    const ns = child.attrs.xmlns as string | undefined;
    const keep =
      (child.name === 'bind' && ns === NS_BIND) ||
      (child.name === 'session' && ns === NS_SESSION) ||
      (child.name === 'csi' && ns === NS_CSI) ||
      (child.name === 'c' && ns === NS_CAPS);
    if (keep) out.cnode(child);
  }
  for (const e of extra) out.cnode(e);
  return out;
}
