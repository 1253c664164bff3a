// JIDs (RFC 7622): parsing with @xmpp/jid, plus the checks it leaves out, so that a malformed address
// from a client becomes jid-malformed instead of a surprise further down.
import jidLib from '@xmpp/jid';

export type JID = jidLib.JID;

const FORBIDDEN_LOCAL = /["&'/:<>@\s]/;

/** Parse a JID; returns undefined when it is malformed (empty parts, forbidden characters, too long). */
export function parseJid(s: string | undefined): JID | undefined {
  if (!s) return undefined;
  const slash = s.indexOf('/');
  const bare = slash === -1 ? s : s.slice(0, slash);
  const resource = slash === -1 ? undefined : s.slice(slash + 1);
  const at = bare.indexOf('@');
  const local = at === -1 ? undefined : bare.slice(0, at);
  const domain = at === -1 ? bare : bare.slice(at + 1);
  if (local !== undefined && (local.length === 0 || Buffer.byteLength(local) > 1023 || FORBIDDEN_LOCAL.test(local))) return undefined;
  if (resource !== undefined && (resource.length === 0 || Buffer.byteLength(resource) > 1023)) return undefined;
  if (!isDomain(domain)) return undefined;
  try {
    return new jidLib.JID(local, domain, resource);
  } catch {
    return undefined;
  }
}

/** A domainpart: 1-1023 bytes, labels of letters/digits/hyphens (or non-ASCII), or an IP literal. */
export function isDomain(d: string): boolean {
  if (d.length === 0 || Buffer.byteLength(d) > 1023 || d.endsWith('.')) return false;
  if (/^\[[0-9a-fA-F:.]+\]$/.test(d)) return true;
  return d.split('.').every((label) => label.length > 0 && label.length <= 63 && !/[\s@/:"&'<>]/.test(label));
}

export function bareOf(s: string): string {
  const slash = s.indexOf('/');
  return slash === -1 ? s : s.slice(0, slash);
}
