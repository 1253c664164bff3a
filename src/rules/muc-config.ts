// XEP-0045 §10.2: what a room's owner may configure in this version, and where it lives. The
// configuration is item 'config' of the room's meta node (muc-nodes.ts): a name, a description and
// a password. Rooms are always persistent (their nodes stay; a temporary room would need every
// proxy instance to agree on when the last occupant left) and open to anyone who knows the
// password, if any: members-only rooms, moderation and the other muc#roomconfig fields are not
// built (the README says so), and a form asking for them is refused rather than half-applied.
//
// The meta node is readable by anyone the backend lets read the pubsub service, so the password is
// never stored: only a salted scrypt hash of it.
import type { Element } from 'ltx';
import { randomBytes, scryptSync, timingSafeEqual } from 'node:crypto';
import { formFields } from '../pubsub/forms.js';
import { xml } from '../stream/xml.js';
import { NS_DATA } from '../xmpp/ns.js';
import { StanzaError } from '../xmpp/stanza-error.js';
import { NS_MUC_NODES } from './muc-nodes.js';

export const FORM_ROOMCONFIG = 'http://jabber.org/protocol/muc#roomconfig';
/** a room's name or description longer than this is refused (not-acceptable) */
export const MAX_CONFIG_TEXT = 256;

export interface RoomConfig {
  name?: string;
  description?: string;
  /** scrypt(password, salt), both base64url; absent: no password */
  secret?: { hash: string; salt: string };
}

const F = {
  name: 'muc#roomconfig_roomname',
  description: 'muc#roomconfig_roomdesc',
  persistent: 'muc#roomconfig_persistentroom',
  passwordProtected: 'muc#roomconfig_passwordprotectedroom',
  secret: 'muc#roomconfig_roomsecret',
  membersOnly: 'muc#roomconfig_membersonly',
  moderated: 'muc#roomconfig_moderatedroom',
};

const hashOf = (password: string, salt: string) => scryptSync(password, salt, 32).toString('base64url');

/** The configuration in a meta node item ('config'); an item of another shape counts as none. */
export function readConfig(payload: Element | undefined): RoomConfig {
  if (!payload || payload.name !== 'config' || payload.attrs.xmlns !== NS_MUC_NODES) return {};
  const c: RoomConfig = {};
  const text = (name: string) => payload.getChildText(name) ?? undefined;
  const name = text('name');
  const description = text('description');
  if (name) c.name = name;
  if (description) c.description = description;
  const s = payload.getChild('secret');
  if (s && typeof s.attrs.hash === 'string' && typeof s.attrs.salt === 'string') c.secret = { hash: s.attrs.hash, salt: s.attrs.salt };
  return c;
}

export function configPayload(c: RoomConfig): Element {
  const el = xml('config', { xmlns: NS_MUC_NODES });
  if (c.name) el.children.push(xml('name', null, c.name));
  if (c.description) el.children.push(xml('description', null, c.description));
  if (c.secret) el.children.push(xml('secret', { hash: c.secret.hash, salt: c.secret.salt }));
  return el;
}

/** Does a join's `<password/>` open the room? */
export function passwordOpens(c: RoomConfig, given: string | undefined): boolean {
  if (!c.secret) return true;
  if (given === undefined) return false;
  const want = Buffer.from(c.secret.hash, 'base64url');
  const got = Buffer.from(hashOf(given, c.secret.salt), 'base64url');
  return want.length === got.length && timingSafeEqual(want, got);
}

/** The owner's configuration form (XEP-0045 §10.2), with the current values. */
export function configForm(c: RoomConfig): Element {
  const field = (v: string, type: string, label: string, value?: string) =>
    xml('field', { var: v, type, label }, ...(value !== undefined ? [xml('value', null, value)] : []));
  return xml(
    'x',
    { xmlns: NS_DATA, type: 'form' },
    xml('title', null, 'Room configuration'),
    xml('instructions', null, 'Rooms are persistent; members-only and moderated rooms are not supported.'),
    xml('field', { var: 'FORM_TYPE', type: 'hidden' }, xml('value', null, FORM_ROOMCONFIG)),
    field(F.name, 'text-single', 'Natural-language room name', c.name ?? ''),
    field(F.description, 'text-single', 'Short description of the room', c.description ?? ''),
    field(F.persistent, 'boolean', 'Make room persistent', '1'),
    field(F.passwordProtected, 'boolean', 'Password required to enter', c.secret ? '1' : '0'),
    field(F.secret, 'text-private', 'Password'),
  );
}

const truthy = (v: string | undefined) => v === '1' || v === 'true';

/**
 * The configuration after a submitted form (XEP-0045 §10.2): fields left out keep their value; an
 * empty form (an instant room, §10.1.2) keeps everything. Throws not-acceptable for what this
 * version cannot do (a temporary, members-only or moderated room, a password-protected room
 * without a password).
 */
export function applyForm(current: RoomConfig, x: Element): RoomConfig {
  const fields = formFields(x);
  const one = (name: string) => fields.get(name)?.[0];
  const formType = one('FORM_TYPE');
  if (formType !== undefined && formType !== FORM_ROOMCONFIG) throw new StanzaError('bad-request', `FORM_TYPE ${formType}`);
  const next: RoomConfig = { ...current };
  for (const key of ['name', 'description'] as const) {
    const v = fields.get(F[key])?.join('\n');
    if (v === undefined) continue;
    if (v.length > MAX_CONFIG_TEXT) throw new StanzaError('not-acceptable', `${F[key]}: at most ${MAX_CONFIG_TEXT} characters`);
    if (v) next[key] = v;
    else delete next[key];
  }
  if (fields.has(F.persistent) && !truthy(one(F.persistent))) throw new StanzaError('not-acceptable', 'rooms are always persistent here');
  for (const f of [F.membersOnly, F.moderated]) if (truthy(one(f))) throw new StanzaError('not-acceptable', `${f} is not supported`);
  const secret = one(F.secret);
  const protect = fields.has(F.passwordProtected) ? truthy(one(F.passwordProtected)) : secret ? true : current.secret !== undefined;
  if (!protect) delete next.secret;
  else if (secret) {
    const salt = randomBytes(12).toString('base64url');
    next.secret = { hash: hashOf(secret, salt), salt };
  } else if (!current.secret) throw new StanzaError('not-acceptable', 'a password-protected room needs a password');
  return next;
}
