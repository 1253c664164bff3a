// A top-level element as the tokenizer hands it over: its name, its own attributes and its raw bytes
// (a latin1-held UTF-8 string, exactly what arrived), plus the name/namespace of its first child so
// that rules can decide cheaply whether they care. The tree is built only if somebody asks (`el`);
// a stanza no rule claims is forwarded as its original bytes, never re-serialized.
import type { Element } from 'ltx';
import { bytesToText, textToBytes } from './chars.js';
import { parseElement, type Attrs } from './xml.js';

export class Stanza {
  private tree: Element | undefined;

  constructor(
    /** qualified name as written, e.g. 'message', 'stream:features' */
    readonly name: string,
    /** the element's own attributes, decoded */
    readonly attrs: Attrs,
    /** the element's bytes, latin1-held */
    readonly raw: string,
    /** local name of the first child element, if any */
    readonly childName?: string,
    /** xmlns attribute of the first child element, if it has one */
    readonly childNs?: string,
  ) {}

  /** Use an already-built tree (stanzaOf). */
  adopt(el: Element): void {
    this.tree = el;
  }

  /** The parsed element (built on first use, then cached). */
  get el(): Element {
    return (this.tree ??= parseElement(bytesToText(this.raw)));
  }

  /** message, presence or iq (RFC 6120 §8) as opposed to a nonza (features, SASL, TLS, SM, CSI...) */
  get isStanza(): boolean {
    return this.name === 'message' || this.name === 'presence' || this.name === 'iq';
  }
  /** true when the first child element is `name` in namespace `ns` */
  childIs(name: string, ns: string): boolean {
    return this.childName === name && this.childNs === ns;
  }
}

/** A Stanza for an element the proxy built or changed (its raw bytes are the element serialized). */
export function stanzaOf(el: Element): Stanza {
  const child = el.children.find((c): c is Element => typeof c !== 'string');
  const s = new Stanza(el.name, { ...(el.attrs as Attrs) }, textToBytes(el.toString()), child?.getName(), child?.attrs.xmlns as string | undefined);
  s.adopt(el);
  return s;
}
