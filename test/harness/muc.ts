// What the group chat tests share: the users they log in, and reading XEP-0045 presence.
import type { Element } from 'ltx';

// the same cast as the roster tests
export { PASSWORD, USERS as MUC_USERS } from './roster.js';
export const MUC = 'http://jabber.org/protocol/muc';
export const MUC_USER = 'http://jabber.org/protocol/muc#user';

/** the status codes of a room presence, sorted */
export const codes = (p: Element) => (p.getChild('x', MUC_USER)?.getChildren('status') ?? []).map((s: Element) => s.attrs.code as string).sort();
export const itemOf = (p: Element) => p.getChild('x', MUC_USER)?.getChild('item');
/** a presence from room/nick of that type (undefined: available) */
export const presenceFrom = (room: string) => (nick: string, type?: string) => (s: Element) => s.name === 'presence' && s.attrs.from === `${room}/${nick}` && s.attrs.type === type;
