// Character tables and entity handling shared by the tokenizer (which scans bytes held in a latin1
// string: one char per byte) and the element builder (which reads decoded Unicode text).
// Every XML syntax character is ASCII and UTF-8 never puts an ASCII byte inside a multibyte
// sequence, so the same tables work on both; bytes >= 0x80 are accepted as name characters
// (the stream layer has already checked that they form valid UTF-8).

export const LT = 0x3c; // <
export const GT = 0x3e; // >
export const SLASH = 0x2f; // /
export const BANG = 0x21; // !
export const QUESTION = 0x3f; // ?
export const EQ = 0x3d; // =
export const DQUOTE = 0x22; // "
export const SQUOTE = 0x27; // '
export const COLON = 0x3a; // :

// Not exported, on purpose: a module's exported (and imported) bindings live in cells that optimized
// code loads and checks for initialization at every use, here once per character scanned; a private
// constant is folded into the code. Modules that scan (tokenizer.ts) take local copies of what they
// import from here for the same reason.
const NAME_START = 1;
const NAME_CHAR = 2;
const WHITESPACE = 4;

/** Per-code-unit class bits for code units < 256 (latin1 view of UTF-8 bytes, or ASCII text). */
const CLASS = new Uint8Array(256);
for (let c = 0; c < 256; c++) {
  const letter = (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a);
  if (letter || c === 0x5f /* _ */ || c === COLON || c >= 0x80) CLASS[c] |= NAME_START | NAME_CHAR;
  if ((c >= 0x30 && c <= 0x39) || c === 0x2d /* - */ || c === 0x2e /* . */) CLASS[c] |= NAME_CHAR;
}
for (const c of [0x20, 0x09, 0x0a, 0x0d]) CLASS[c] |= WHITESPACE;

export function isNameStart(c: number): boolean {
  return c >= 256 || (CLASS[c] & NAME_START) !== 0;
}
export function isNameChar(c: number): boolean {
  return c >= 256 || (CLASS[c] & NAME_CHAR) !== 0;
}
export function isWhitespace(c: number): boolean {
  return c < 256 && (CLASS[c] & WHITESPACE) !== 0;
}

/** Characters XML 1.0 forbids anywhere in a document (C0 controls other than TAB, LF, CR). */
export const FORBIDDEN_CONTROL = /[\x00-\x08\x0b\x0c\x0e-\x1f]/;

/** Bytes >= 0x80 in a latin1-held byte string: UTF-8 sequences that need decoding. */
const HIGH_BYTE = /[\x80-\xff]/;

/** Turn a latin1-held UTF-8 byte string into the Unicode string it encodes. */
export function bytesToText(bytes: string): string {
  return HIGH_BYTE.test(bytes) ? Buffer.from(bytes, 'latin1').toString('utf8') : bytes;
}

const NON_ASCII = /[^\x00-\x7f]/;

/** Turn a Unicode string into the latin1-held string of its UTF-8 bytes (for the byte writer). */
export function textToBytes(text: string): string {
  return NON_ASCII.test(text) ? Buffer.from(text, 'utf8').toString('latin1') : text;
}

export function isXmlChar(cp: number): boolean {
  return (
    cp === 0x9 || cp === 0xa || cp === 0xd ||
    (cp >= 0x20 && cp <= 0xd7ff) || (cp >= 0xe000 && cp <= 0xfffd) || (cp >= 0x10000 && cp <= 0x10ffff)
  );
}

const PREDEFINED: Record<string, string> = { lt: '<', gt: '>', amp: '&', quot: '"', apos: "'" };

export type EntityVerdict = 'ok' | 'malformed' | 'restricted';

/** Classify the text between '&' and ';' (RFC 6120 §11.1: only predefined and character references). */
export function classifyEntity(name: string): EntityVerdict {
  if (name.length === 0) return 'malformed';
  if (name.charCodeAt(0) === 0x23 /* # */) {
    const hex = name.charCodeAt(1) === 0x78; /* x */
    const digits = name.slice(hex ? 2 : 1);
    if (digits.length === 0 || digits.length > 8 || !(hex ? /^[0-9a-fA-F]+$/ : /^[0-9]+$/).test(digits)) {
      return 'malformed';
    }
    return isXmlChar(parseInt(digits, hex ? 16 : 10)) ? 'ok' : 'malformed';
  }
  if (name in PREDEFINED) return 'ok';
  for (let i = 0; i < name.length; i++) {
    const c = name.charCodeAt(i);
    if (i === 0 ? !isNameStart(c) : !isNameChar(c)) return 'malformed';
  }
  return 'restricted';
}

const ENTITY = /&(#x[0-9a-fA-F]+|#[0-9]+|lt|gt|amp|quot|apos);/g;

/** Replace predefined and character references (input already validated). */
export function unescapeXml(s: string): string {
  if (s.indexOf('&') === -1) return s;
  return s.replace(ENTITY, (_m, name: string) => {
    if (name.charCodeAt(0) === 0x23) {
      const cp = name.charCodeAt(1) === 0x78 ? parseInt(name.slice(2), 16) : parseInt(name.slice(1), 10);
      return String.fromCodePoint(cp);
    }
    return PREDEFINED[name]!;
  });
}

/**
 * A copy of `s` that holds nothing else. A slice of 13 characters or more (V8's SlicedString) keeps
 * the whole string it was cut from alive: an attribute value kept for the session's lifetime would
 * keep the input chunk it arrived in (a whole stanza, often several). Shorter slices are copies
 * already. For what is kept per session, never on the per-stanza path.
 */
export function ownString(s: string): string {
  return s.length < 13 ? s : Buffer.from(s, 'utf8').toString('utf8');
}

const shared = new Map<string, string>();
const SHARED_MAX = 256;

/**
 * One string for each of the few values that every session keeps (its domain, its xml:lang), instead
 * of a copy per session. Bounded: a peer inventing values fills the table only up to its limit, and
 * later values are plain own copies.
 */
export function sharedString(s: string): string {
  const have = shared.get(s);
  if (have !== undefined) return have;
  const own = ownString(s);
  if (shared.size < SHARED_MAX) shared.set(own, own);
  return own;
}
