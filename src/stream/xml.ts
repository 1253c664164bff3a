// Building ltx Elements from text the tokenizer has already validated, and the small helpers every
// layer uses to make elements. The tokenizer only scans (cheap); a tree is built on demand, when a
// rule or the session needs to look inside a stanza (see Stanza.el).
import { Element } from 'ltx';
import * as chars from './chars.js';

// Local copies, as in tokenizer.ts: an imported binding is a module cell that optimized code reloads
// and checks at every use (here per character of every tree built).
const { BANG, GT, QUESTION, SLASH, isWhitespace, ownString, unescapeXml } = chars;

export { Element };

export type Attrs = Record<string, string>;

/** ltx-style element factory: xml('iq', {type: 'get'}, xml('ping', {xmlns: NS_PING})). */
export function xml(name: string, attrs?: Attrs | null, ...children: Array<Element | string | null | undefined | false>): Element {
  const el = new Element(name, attrs ? { ...attrs } : {});
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    if (typeof child === 'string') el.t(child);
    else el.cnode(child);
  }
  return el;
}

/**
 * Parse one element (the first in `s`) from well-formed XML text. The input is trusted: it is a
 * slice the tokenizer has checked, a fixture, or a string the proxy wrote itself, so this only
 * builds the tree. Whitespace-only text between elements is kept as text nodes, as XML says.
 */
export function parseElement(s: string): Element {
  const stack: Element[] = [];
  let root: Element | undefined;
  let pos = 0;
  const len = s.length;
  while (pos < len) {
    const lt = s.indexOf('<', pos);
    const textEnd = lt === -1 ? len : lt;
    if (textEnd > pos && stack.length > 0) stack[stack.length - 1]!.t(unescapeXml(s.slice(pos, textEnd)));
    if (lt === -1) break;
    const c = s.charCodeAt(lt + 1);
    if (c === SLASH) {
      pos = s.indexOf('>', lt) + 1;
      stack.pop();
      if (stack.length === 0 && root) return root;
      continue;
    }
    if (c === BANG) {
      if (s.startsWith('<![CDATA[', lt)) {
        const end = s.indexOf(']]>', lt + 9);
        if (stack.length > 0) stack[stack.length - 1]!.t(s.slice(lt + 9, end));
        pos = end + 3;
      } else {
        const end = s.indexOf('-->', lt); // comments in fixtures
        pos = end === -1 ? len : end + 3;
      }
      continue;
    }
    if (c === QUESTION) {
      pos = s.indexOf('?>', lt) + 2;
      continue;
    }
    // start tag
    let i = lt + 1;
    while (i < len && !isWhitespace(s.charCodeAt(i)) && s.charCodeAt(i) !== SLASH && s.charCodeAt(i) !== GT) i++;
    const name = s.slice(lt + 1, i);
    const attrs: Attrs = {};
    let selfClosing = false;
    for (;;) {
      while (isWhitespace(s.charCodeAt(i))) i++;
      const ch = s.charCodeAt(i);
      if (ch === GT) { i++; break; }
      if (ch === SLASH) { selfClosing = true; i += 2; break; }
      const eq = s.indexOf('=', i);
      const attrName = s.slice(i, eq).trimEnd();
      let q = eq + 1;
      while (isWhitespace(s.charCodeAt(q))) q++;
      const quote = s[q]!;
      const close = s.indexOf(quote, q + 1);
      attrs[attrName] = unescapeXml(s.slice(q + 1, close));
      i = close + 1;
    }
    const el = new Element(name, attrs);
    if (stack.length > 0) stack[stack.length - 1]!.cnode(el);
    else root = el;
    if (selfClosing) {
      if (stack.length === 0) return el;
    } else {
      stack.push(el);
    }
    pos = i;
  }
  if (!root) throw new Error('no element in input');
  return root;
}

/**
 * A deep copy of `el` to keep beyond the stanza it came from: no `parent` (ltx links a child to its
 * parent, so a payload kept from a pubsub notification keeps the whole message > event > items >
 * item tree) and no string sliced from the input (ownString). For caches that live as long as the
 * session, e.g. the last presence of each contact's resources.
 */
export function detached(el: Element): Element {
  const attrs: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(el.attrs)) attrs[k] = typeof v === 'string' ? ownString(v) : v;
  const copy = new Element(ownString(el.name), attrs);
  for (const c of el.children) {
    if (typeof c === 'string') copy.t(ownString(c));
    else copy.cnode(detached(c));
  }
  return copy;
}

/** Remove whitespace-only text nodes, recursively (fixture comparison, pretty-printed listings). */
export function stripWhitespace(el: Element): Element {
  el.children = el.children.filter((c) => typeof c !== 'string' || c.trim() !== '');
  for (const c of el.children) if (typeof c !== 'string') stripWhitespace(c);
  return el;
}

/**
 * A serialization that does not depend on attribute order (servers re-serialize payloads with their
 * own order), for comparing elements.
 */
export function canonicalXml(el: Element): string {
  const attrs = Object.keys(el.attrs)
    .filter((k) => el.attrs[k] !== undefined && el.attrs[k] !== null)
    .sort()
    .map((k) => ` ${k}="${escapeAttr(String(el.attrs[k]))}"`)
    .join('');
  let inner = '';
  for (const c of el.children) inner += typeof c === 'string' ? escapeText(c) : canonicalXml(c);
  return `<${el.name}${attrs}>${inner}</${el.name}>`;
}

function escapeAttr(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/"/g, '&quot;');
}

function escapeText(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}
