// The service account's login on a backend stream that BackendLeg has opened (and secured per
// --upstream-tls): SASL PLAIN, stream restart, resource binding, then a bare <presence/>, because
// both backends deliver notifications to a bare JID only to available sessions (as for user
// sessions, docs/backends.md). PLAIN only: both backends offer it, and over the TLS that BackendLeg
// sets up it is as safe as SCRAM against eavesdroppers; SCRAM (no password on the wire, a backend
// that stores only hashes) is not needed now.
import { randomBytes } from 'node:crypto';
import type { Element } from 'ltx';
import { xml } from '../stream/xml.js';
import type { BackendLeg } from '../session/backend-leg.js';
import { mechanismsOf } from '../session/features.js';
import { parseJid } from '../xmpp/jid.js';
import { NS_BIND, NS_SASL } from '../xmpp/ns.js';
import { StanzaError } from '../xmpp/stanza-error.js';

/** The backend will not let the account in as configured: retrying as is will not help. */
export class LoginRefused extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'LoginRefused';
  }
}

export interface Credentials {
  /** the account's localpart (the SASL authentication identity) */
  local: string;
  password: string;
}

/** SASL PLAIN (RFC 4616): authzid (empty: the same as authcid), NUL, authcid, NUL, password. */
function plainPayload(creds: Credentials): string {
  return Buffer.from(`\0${creds.local}\0${creds.password}`, 'utf8').toString('base64');
}

/** Log in on `leg` (opened, with its pre-authentication `features`); resolves with the bound full JID. */
export async function login(leg: BackendLeg, features: Element, creds: Credentials, resource: string): Promise<string> {
  const mechanisms = mechanismsOf(features);
  if (!mechanisms.includes('PLAIN')) {
    throw new LoginRefused(`the backend does not offer SASL PLAIN (offers: ${mechanisms.join(', ') || 'nothing'}); the service account speaks PLAIN only`);
  }
  const outcome = leg.expect((s) => s.attrs.xmlns === NS_SASL && (s.name === 'success' || s.name === 'failure'));
  // raw, never through a logged path: this element carries the password
  leg.sendRaw(`<auth xmlns='${NS_SASL}' mechanism='PLAIN'>${plainPayload(creds)}</auth>`);
  const sasl = await outcome;
  if (sasl.name === 'failure') {
    const condition = sasl.childName ?? 'failure';
    const message = `authentication failed: ${condition}`;
    // RFC 6120 §6.5.12: the one SASL failure that may pass by itself
    if (condition === 'temporary-auth-failure') throw new Error(message);
    throw new LoginRefused(message);
  }
  const after = await leg.restart();
  if (!after.getChild('bind', NS_BIND)) throw new Error('the backend offers no resource binding after authentication');
  const id = randomBytes(6).toString('base64url');
  const answer = leg.expect((s) => s.name === 'iq' && s.attrs.id === id && (s.attrs.type === 'result' || s.attrs.type === 'error'));
  leg.send(xml('iq', { type: 'set', id }, xml('bind', { xmlns: NS_BIND }, xml('resource', null, resource))));
  const bound = await answer;
  if (bound.attrs.type === 'error') throw new Error(`resource binding failed: ${StanzaError.fromStanza(bound.el).message}`);
  const jid = parseJid(bound.el.getChild('bind', NS_BIND)?.getChildText('jid') ?? undefined);
  if (!jid?.resource) throw new Error('resource binding answered without a full JID');
  leg.send(xml('presence'));
  return jid.toString();
}
