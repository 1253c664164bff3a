// The restricted-XML stream tokenizer: bytes in, stream header / top-level elements / stream end out.
//
// Why our own and not ltx's tokenizer or sax (measured in bench/parsers.ts, see docs/parser.md):
// ltx's is fast but accepts malformed XML, silently swallows a DOCTYPE and everything after it, drops
// comments and processing instructions, throws from write() on an unknown entity and cannot say where
// an element starts and ends in the input; sax is strict but ~4x slower, below the benchmark target,
// and builds every node. This one works like ltx's (indexOf fast-forwarding) but is strict where
// RFC 6120 needs it and reports each top-level element's exact bytes, so that a stanza no rule claims
// is forwarded as it came, without building or serializing a tree.
//
// Input is bytes held in a latin1 string (one char per byte). XML syntax is all ASCII and UTF-8 never
// uses ASCII bytes inside a multibyte sequence, so scanning bytes is exact, sizes are byte counts, and
// a slice of the input is exactly the bytes to forward. The caller checks UTF-8 validity per chunk.
//
// Checks (each a StreamError; the session turns it into a stream error for that peer only):
// - not-well-formed: bad names, unquoted or unterminated attributes, mismatched end tags, duplicate
//   attributes, '<' in attribute values, malformed references, ']]>' in text
// - restricted-xml (RFC 6120 §11.1): DOCTYPE and other markup declarations, comments, processing
//   instructions (the XML declaration before a stream header is allowed), entity references other
//   than the five predefined ones and character references
// - policy-violation: a top-level element (or stream header) larger than maxSize bytes, or nested
//   deeper than maxDepth elements
// - bad-namespace-prefix: an element or attribute prefix that is not declared
// - bad-format: character data other than whitespace between stanzas
import { StreamError } from './errors.js';
import { Stanza } from './stanza.js';
import type { Attrs } from './xml.js';
import * as chars from './chars.js';

// Local copies of what the scan uses from chars.ts: an imported binding is a module cell, which
// optimized code loads and checks for initialization at every use (for the character tests, once
// per character scanned: about a third of a tag's instructions, counted under callgrind); a
// module-private constant is folded into the code and its function inlined as a known target.
const { BANG, COLON, DQUOTE, EQ, GT, LT, QUESTION, SLASH, SQUOTE } = chars;
const { bytesToText, classifyEntity, isNameChar, isNameStart, isWhitespace, unescapeXml } = chars;

export const NS_STREAM = 'http://etherx.jabber.org/streams';

export interface TokenizerLimits {
  /** bytes of one top-level element (also of a stream header) */
  maxSize: number;
  /** elements nested inside one top-level element, the top-level element being depth 1 */
  maxDepth: number;
}

export interface TokenizerHandler {
  /** `<stream:stream ...>`: qualified name and decoded attributes (namespace declarations included) */
  onStreamStart(name: string, attrs: Attrs): void;
  /** a complete top-level element */
  onElement(stanza: Stanza): void;
  /** `</stream:stream>` */
  onStreamEnd(): void;
  /** whitespace between top-level elements (keepalives) */
  onWhitespace?(): void;
}

const INCOMPLETE = -1;
const UNKNOWN = -2;

// What the input must bring before scanning can get further (Tokenizer.wait): a chunk that cannot
// finish the unfinished construct is only appended.
/** anything: scan every chunk */
const WAIT_NONE = 0;
/** a start tag: a '>' outside quoted values (the quote left open so far is carried) */
const WAIT_TAG = 1;
/**
 * what ends the construct: '<' for text inside an element, '>' for an end tag (nothing in one can
 * hide it), ']]>' for CDATA, '?>' for the XML declaration (how much of it the input ends with is
 * carried)
 */
const WAIT_TERM = 2;
/** quoteState: the bytes hold a '>' outside quoted values */
const TAG_ENDS = -1;

/** The length of the longest start of `term` (shorter than it) that s[from..] ends with. */
function partialEnd(s: string, from: number, term: string): number {
  for (let k = Math.min(term.length - 1, s.length - from); k > 0; k--) if (s.endsWith(term.slice(0, k))) return k;
  return 0;
}

/**
 * Where the bytes s[from..] of a start tag leave its quoting, starting with `quote` open (0: none):
 * TAG_ENDS if they hold a '>' outside quoted values (the tag can end there), else the quote still
 * open (its code) or 0. A '>' inside a value does not end a tag; a quote outside one is an error the
 * full read reports once the tag can end.
 */
function quoteState(s: string, from: number, quote: number): number {
  const len = s.length;
  let i = from;
  while (i < len) {
    if (quote !== 0) {
      const close = s.indexOf(quote === DQUOTE ? '"' : "'", i);
      if (close === -1) return quote;
      quote = 0;
      i = close + 1;
      continue;
    }
    const c = s.charCodeAt(i++);
    if (c === GT) return TAG_ENDS;
    if (c === SQUOTE || c === DQUOTE) quote = c;
  }
  return quote;
}
const HIGH_BYTES = /[\x80-\xff]/g;
/** no prefixes declared: one shared, frozen empty list, so a stream that declares none holds no array */
const NO_NAMES: string[] = [];
Object.freeze(NO_NAMES);
/**
 * The names of the open elements of the element being read, indexed by depth: one array for every
 * tokenizer, as SEEN, instead of an array per stanza (an allocation and its backing store for
 * each). A handler runs only between top-level elements (depth 0), so a tokenizer that a handler
 * makes scan finds none of another's names in it. An element still open when a scan ends keeps a
 * copy of its names (Tokenizer.held); `openUsed` is how far the array was written since it was last
 * cleared (its names are slices of the input: kept, they would keep the chunk).
 */
const OPEN: string[] = [];
let openUsed = 0;

/** what nearly every stream header declares: shared, not an array per stream */
const STREAM_ONLY: readonly string[] = Object.freeze(['stream']);
/** between top-level elements: nothing kept of the last one (each stanza gets its own object) */
const NO_ATTRS: Attrs = Object.freeze({}) as Attrs;
const WS_ONLY = /^[ \t\r\n]*$/;
/**
 * Attribute names of the tag being read, for the duplicate check: one array for every tokenizer (a
 * tag is read in one synchronous call) and a count, instead of an array per tag. Not emptied by
 * setting its length: that is a runtime call in V8, and cost more than the rest of a short tag.
 * Past SEEN_LINEAR names a Set takes over: a linear check is quadratic, and a tag of 256 KiB holds
 * 29,000 attributes (seconds of CPU per stanza, a peer's cheap way to stall the proxy).
 */
const SEEN: string[] = [];
const SEEN_LINEAR = 16;
let seenCount = 0;
let seenSet: Set<string> | undefined;

function seenBefore(name: string): boolean {
  if (seenCount < SEEN_LINEAR) {
    for (let k = 0; k < seenCount; k++) if (SEEN[k] === name) return true;
    if (seenCount === SEEN.length) SEEN.push(name);
    else SEEN[seenCount] = name;
    seenCount++;
    return false;
  }
  seenSet ??= new Set(SEEN);
  if (seenSet.has(name)) return true;
  seenSet.add(name);
  seenCount++;
  return false;
}

/** Forget the tag's names (they are slices of the input: keeping them would keep the chunk). */
function forgetSeen(): void {
  for (let k = 0; k < seenCount && k < SEEN_LINEAR; k++) SEEN[k] = '';
  seenCount = 0;
  seenSet = undefined;
}

/**
 * The attribute names nearly every stanza carries, recognised by position and used as constants: a
 * key sliced from the input would be copied, then hashed and looked up in V8's string table on every
 * store (about 70 ns per attribute); their duplicates are found with a bit each.
 */
const COMMON_ATTRS = ['to', 'from', 'id', 'type', 'xmlns', 'xml:lang'] as const;
const XMLNS = 4;

/**
 * Index in COMMON_ATTRS of the name buf[from, to), or -1. Compared code by code against constants:
 * `at()` with a string argument was not inlined into startTag (too large a caller), and its calls
 * were a tenth of the tokenizer's time (a CPU profile of backend messages).
 */
function commonAttr(buf: string, from: number, to: number): number {
  const c0 = buf.charCodeAt(from);
  switch (to - from) {
    case 2: {
      const c1 = buf.charCodeAt(from + 1);
      if (c0 === 0x74 && c1 === 0x6f) return 0; // to
      if (c0 === 0x69 && c1 === 0x64) return 2; // id
      return -1;
    }
    case 4:
      if (c0 === 0x66) return buf.charCodeAt(from + 1) === 0x72 && buf.charCodeAt(from + 2) === 0x6f && buf.charCodeAt(from + 3) === 0x6d ? 1 : -1; // from
      if (c0 === 0x74) return buf.charCodeAt(from + 1) === 0x79 && buf.charCodeAt(from + 2) === 0x70 && buf.charCodeAt(from + 3) === 0x65 ? 3 : -1; // type
      return -1;
    case 5:
      return isXmlns(buf, from) ? XMLNS : -1;
    case 8:
      return c0 === 0x78 && buf.charCodeAt(from + 1) === 0x6d && buf.charCodeAt(from + 2) === 0x6c && buf.charCodeAt(from + 3) === COLON &&
        buf.charCodeAt(from + 4) === 0x6c && buf.charCodeAt(from + 5) === 0x61 && buf.charCodeAt(from + 6) === 0x6e && buf.charCodeAt(from + 7) === 0x67
        ? 5 : -1; // xml:lang
    default:
      return -1;
  }
}

/** buf[from..] starts with `xmlns` */
function isXmlns(buf: string, from: number): boolean {
  return buf.charCodeAt(from) === 0x78 && buf.charCodeAt(from + 1) === 0x6d && buf.charCodeAt(from + 2) === 0x6c &&
    buf.charCodeAt(from + 3) === 0x6e && buf.charCodeAt(from + 4) === 0x73;
}

/**
 * A top-level tag's attributes as one object: the common ones (bits of `common`, COMMON_ATTRS order)
 * stored by name, then the others in the order they came.
 */
function attrsOf(
  common: number, to: string | undefined, from: string | undefined, id: string | undefined,
  type: string | undefined, xmlns: string | undefined, lang: string | undefined, rest: Attrs | undefined,
): Attrs {
  const a: Attrs = {};
  if (common !== 0) {
    if (to !== undefined) a.to = to;
    if (from !== undefined) a.from = from;
    if (id !== undefined) a.id = id;
    if (type !== undefined) a.type = type;
    if (xmlns !== undefined) a.xmlns = xmlns;
    if (lang !== undefined) a['xml:lang'] = lang;
  }
  if (rest !== undefined) for (const k in rest) a[k] = rest[k]!;
  return a;
}

/** message, presence or iq at buf[from, to), as a constant (compared by identity downstream). */
function stanzaName(buf: string, from: number, to: number): string | undefined {
  switch (to - from) {
    case 2: return buf.charCodeAt(from) === 0x69 && buf.charCodeAt(from + 1) === 0x71 ? 'iq' : undefined;
    case 7: // message
      return buf.charCodeAt(from) === 0x6d && buf.charCodeAt(from + 1) === 0x65 && buf.charCodeAt(from + 2) === 0x73 && buf.charCodeAt(from + 3) === 0x73 &&
        buf.charCodeAt(from + 4) === 0x61 && buf.charCodeAt(from + 5) === 0x67 && buf.charCodeAt(from + 6) === 0x65 ? 'message' : undefined;
    case 8: // presence
      return buf.charCodeAt(from) === 0x70 && buf.charCodeAt(from + 1) === 0x72 && buf.charCodeAt(from + 2) === 0x65 && buf.charCodeAt(from + 3) === 0x73 &&
        buf.charCodeAt(from + 4) === 0x65 && buf.charCodeAt(from + 5) === 0x6e && buf.charCodeAt(from + 6) === 0x63 && buf.charCodeAt(from + 7) === 0x65 ? 'presence' : undefined;
    default: return undefined;
  }
}

/**
 * `s` is at buf[from] (no slice made to compare). A loop, not startsWith: the names compared are a
 * few characters long, and the builtin's call cost more than the comparison.
 */
function at(buf: string, from: number, s: string): boolean {
  for (let k = 0; k < s.length; k++) if (buf.charCodeAt(from + k) !== s.charCodeAt(k)) return false;
  return true;
}

/** Where the first `needle` at or after `from` is, given where one was found before (`at`). */
function nextAt(buf: string, needle: string, at: number, from: number): number {
  return at === UNKNOWN || (at !== -1 && at < from) ? buf.indexOf(needle, from) : at;
}

/** A position nextAt found lies before `to`. */
function within(at: number, to: number): boolean {
  return at !== -1 && at < to;
}

/**
 * Namespace prefixes in scope: an array, or a Set where a tag declares more than a few (a linear
 * look-up per prefixed name would make a stanza of thousands of them cost seconds).
 */
type Prefixes = readonly string[] | ReadonlySet<string>;

function lookup(prefixes: readonly string[]): Prefixes {
  return prefixes.length > SEEN_LINEAR ? new Set(prefixes) : prefixes;
}

function declares(prefixes: Prefixes, prefix: string): boolean {
  return Array.isArray(prefixes) ? prefixes.includes(prefix) : (prefixes as ReadonlySet<string>).has(prefix);
}

/** buf[from, to) is exactly `name`. */
function sameName(buf: string, from: number, to: number, name: string): boolean {
  return to - from === name.length && at(buf, from, name);
}

/**
 * What follows `<?xml` up to `?>` (XML 1.0 §2.8 XMLDecl): version, then optionally encoding (its
 * name captured, in either quotes) and standalone, in that order, nothing else.
 */
const XML_DECL =
  /^[ \t\r\n]+version[ \t\r\n]*=[ \t\r\n]*(?:"1\.[0-9]+"|'1\.[0-9]+')(?:[ \t\r\n]+encoding[ \t\r\n]*=[ \t\r\n]*(?:"([A-Za-z][A-Za-z0-9._-]*)"|'([A-Za-z][A-Za-z0-9._-]*)'))?(?:[ \t\r\n]+standalone[ \t\r\n]*=[ \t\r\n]*(?:"(?:yes|no)"|'(?:yes|no)'))?[ \t\r\n]*$/;

function nwf(text: string): StreamError {
  return new StreamError('not-well-formed', text);
}

export class Tokenizer {
  private buf = '';
  private pos = 0;
  /** 0: before the stream header; 1: inside the stream */
  private level = 0;
  /** open elements inside the current top-level element (0: between top-level elements) */
  private depth = 0;
  private start = -1;
  /** the names of the open elements (depth of them) between scans, while an element spans writes */
  private held: readonly string[] | undefined;
  /** namespace prefixes declared by open elements, with the depth of the element declaring them */
  private scopes: Array<{ depth: number; prefixes: Prefixes }> | undefined;
  private topName = '';
  private topAttrs: Attrs = NO_ATTRS;
  private childName: string | undefined;
  private childNs: string | undefined;
  private streamName = '';
  private streamPrefixes: Prefixes = NO_NAMES;
  /** nothing but whitespace (and an XML declaration) seen since the last reset */
  private pristine = true;
  /** the buffered bytes are all ASCII (the caller said so of each chunk in it) */
  private ascii = false;
  /**
   * Where the next '&' / ']]>' / '<' of the buffer is, at or after the last place asked (-1: none
   * left; UNKNOWN: not looked for in this buffer). They are asked in the order of the input (text
   * nodes and attribute values as they come), so each is searched for once per occurrence instead
   * of once per text node or attribute value (most stanzas hold no reference at all). Reset whenever
   * the buffer is replaced (forget()).
   */
  private ampAt = UNKNOWN;
  private cdEndAt = UNKNOWN;
  private ltAt = UNKNOWN;
  /**
   * The same for a byte >= 0x80 (a slice before it is already the text it encodes), searched from
   * highFrom: names are decoded after their tag's attributes, so this one is asked out of order.
   */
  private highAt = UNKNOWN;
  private highFrom = 0;
  /**
   * What input must bring before scanning can get further (WAIT_*), looked for in each new chunk
   * alone: a chunk that cannot finish the unfinished construct is only appended. Without this, a
   * start tag, an end tag, text or CDATA trickled in byte by byte was read again from its start, and
   * the buffer copied whole, for every byte: quadratic, a peer's cheap way to make the proxy spin.
   * A start tag waits for a '>' outside quoted values, so a '>' inside a value in every chunk does
   * not make it be read again either.
   */
  private wait = WAIT_NONE;
  /** WAIT_TAG: the quote the tag's bytes so far leave open (its code), 0 if none */
  private waitQuote = 0;
  /** WAIT_TERM: the terminator, and the length of its start the bytes so far end with */
  private waitTerm = '';
  private waitPartial = 0;
  /** times the buffer was scanned (tests: a trickled element is read once it can end, not per byte) */
  scans = 0;
  private epoch = 0;
  private closed = false;

  /**
   * `framed`: top-level elements with no stream around them (RFC 7395: each WebSocket message holds
   * one; the framing maps <open/> and <close/>): never a stream header, never a stream end tag.
   */
  constructor(
    private readonly handler: TokenizerHandler,
    private readonly limits: TokenizerLimits,
    private readonly framed = false,
  ) {
    if (framed) this.level = 1;
  }

  /**
   * Feed bytes (latin1-held). Throws StreamError on a violation; the tokenizer is then closed.
   * `ascii`: the caller knows the chunk holds no byte >= 0x80 (framings ask Buffer's isAscii, which
   * they need for the UTF-8 check anyway), so names and values need no UTF-8 decoding.
   */
  write(chunk: string, ascii = false): void {
    if (this.closed) return;
    if (this.buf.length === 0) {
      this.buf = chunk;
      this.ascii = ascii;
    } else {
      this.buf += chunk; // compact() leaves only what is unfinished
      this.ascii &&= ascii;
    }
    this.forget();
    try {
      if (this.wait !== WAIT_NONE && !this.mayFinish(chunk)) this.checkPending(); // nothing to scan yet
      else this.scan();
    } catch (err) {
      this.closed = true;
      this.buf = '';
      this.held = undefined;
      throw err;
    }
  }

  /**
   * Start a new stream (after STARTTLS or SASL success). With `keep`, bytes already received after the
   * current element are parsed as the new stream's start; otherwise they are dropped (RFC 6120 §5.4.3.3:
   * nothing sent before the TLS handshake counts).
   */
  reset(keep: boolean): void {
    this.epoch++;
    if (!keep) {
      this.buf = '';
      this.pos = 0;
      this.forget();
    }
    this.level = this.framed ? 1 : 0;
    this.depth = 0;
    this.start = -1;
    this.held = undefined;
    this.scopes = undefined;
    this.pristine = true;
    this.wait = WAIT_NONE;
    this.closed = false;
  }

  /**
   * Bytes of an unfinished stream header or top-level element are held (after a write: compact()
   * keeps only those; whitespace between elements is consumed at once).
   */
  get partial(): boolean {
    return this.depth > 0 || this.pos < this.buf.length;
  }

  /** Stop parsing for good (stream closed). */
  close(): void {
    this.closed = true;
    this.buf = '';
    this.pos = 0;
  }

  /** The buffer was replaced: what was found in the last one says nothing about it. */
  private forget(): void {
    this.ampAt = this.cdEndAt = this.ltAt = UNKNOWN;
    this.highAt = this.ascii ? -1 : UNKNOWN;
    this.highFrom = 0;
  }

  /** Whether buf[from, to) holds an '&'. */
  private hasAmp(buf: string, from: number, to: number): boolean {
    return within((this.ampAt = nextAt(buf, '&', this.ampAt, from)), to);
  }

  /** Whether buf[from, to) holds a '<'. */
  private hasLt(buf: string, from: number, to: number): boolean {
    return within((this.ltAt = nextAt(buf, '<', this.ltAt, from)), to);
  }

  /** Whether ']]>' starts in buf[from, to). */
  private hasCdataEnd(buf: string, from: number, to: number): boolean {
    return within((this.cdEndAt = nextAt(buf, ']]>', this.cdEndAt, from)), to);
  }

  /** The text buf[from, to) encodes (UTF-8 decoded only where it holds a byte >= 0x80). */
  private text(buf: string, from: number, to: number): string {
    let at = this.highAt;
    if (at === UNKNOWN || (at !== -1 && at < from) || from < this.highFrom) {
      HIGH_BYTES.lastIndex = from;
      this.highAt = at = HIGH_BYTES.exec(buf)?.index ?? -1;
      this.highFrom = from;
    }
    const bytes = buf.slice(from, to);
    return at !== -1 && at < to ? Buffer.from(bytes, 'latin1').toString('utf8') : bytes;
  }

  /** Can `chunk`, appended, finish what the input waits for (this.wait)? Carries the wait's state. */
  private mayFinish(chunk: string): boolean {
    switch (this.wait) {
      case WAIT_TAG: {
        const q = quoteState(chunk, 0, this.waitQuote);
        if (q === TAG_ENDS) return true;
        this.waitQuote = q;
        return false;
      }
      case WAIT_TERM: {
        const term = this.waitTerm;
        // what the input ended with, and the chunk: a terminator split across chunks is found too
        const s = this.waitPartial > 0 ? term.slice(0, this.waitPartial) + chunk : chunk;
        if (s.indexOf(term) !== -1) return true;
        this.waitPartial = partialEnd(s, 0, term);
        return false;
      }
      default:
        return true;
    }
  }

  /** Wait for `term` to end the construct whose content starts at buf[from]. */
  private waitFor(term: string, buf: string, from: number): void {
    this.wait = WAIT_TERM;
    this.waitTerm = term;
    this.waitPartial = partialEnd(buf, from, term);
  }

  private scan(): void {
    this.scans++;
    this.wait = WAIT_NONE;
    const held = this.held;
    if (held !== undefined) {
      for (let k = 0; k < held.length; k++) OPEN[k] = held[k]!;
      if (held.length > openUsed) openUsed = held.length;
      this.held = undefined;
    }
    try {
      this.scanBuffer();
    } finally {
      this.hold();
    }
  }

  /** The scan is over: an element still open keeps its names; the shared array keeps none. */
  private hold(): void {
    if (this.depth > 0 && !this.closed) this.held = OPEN.slice(0, this.depth);
    for (let k = 0; k < openUsed; k++) OPEN[k] = '';
    openUsed = 0;
  }

  private scanBuffer(): void {
    let epoch = this.epoch;
    while (!this.closed) {
      const buf = this.buf;
      const len = buf.length;
      let pos = this.pos;
      if (pos >= len) break;
      // most constructs follow one another directly ('><body>', '</body></message>'): no search
      const lt = buf.charCodeAt(pos) === LT ? pos : buf.indexOf('<', pos);
      if (lt !== pos) {
        const end = lt === -1 ? len : lt;
        if (this.depth === 0) {
          this.topText(buf, pos, end);
          pos = end;
        } else if (lt === -1) {
          this.waitFor('<', buf, len);
          break; // text inside an element runs past this chunk: checked once complete
        } else {
          this.innerText(buf, pos, end);
          pos = end;
        }
        this.pos = pos;
        if (lt === -1) break;
      }
      if (pos + 1 >= len) break;
      const c = buf.charCodeAt(pos + 1);
      let next: number;
      if (c === SLASH) {
        next = this.endTag(buf, pos);
        if (next === INCOMPLETE) this.waitFor('>', buf, len);
      } else if (c === BANG) next = this.markup(buf, pos);
      else if (c === QUESTION) next = this.instruction(buf, pos);
      else {
        next = this.startTag(buf, pos);
        if (next === INCOMPLETE) {
          // once per unfinished tag: the next look resumes where this one stops
          const q = quoteState(buf, pos + 1, 0);
          if (q !== TAG_ENDS) {
            this.wait = WAIT_TAG;
            this.waitQuote = q;
          }
          break;
        }
      }
      if (next === INCOMPLETE) break;
      if (this.epoch !== epoch) {
        // a handler restarted the stream: reset() already placed pos (after the element, or at 0 with
        // the buffer dropped), so carry on from there under the new stream's state
        epoch = this.epoch;
        continue;
      }
      this.pos = next;
    }
    if (this.closed) return;
    this.checkPending();
    this.compact();
  }

  /** Bytes of an unfinished top-level element (or header) must stay under the limit. */
  private checkPending(): void {
    const from = this.start >= 0 ? this.start : this.pos;
    if (this.buf.length - from > this.limits.maxSize) {
      throw new StreamError('policy-violation', `element larger than ${this.limits.maxSize} bytes`);
    }
  }

  private compact(): void {
    const keep = this.start >= 0 ? this.start : this.pos;
    if (keep === 0) return;
    this.buf = keep >= this.buf.length ? '' : this.buf.slice(keep);
    this.forget();
    this.pos -= keep;
    if (this.start >= 0) this.start -= keep;
  }

  /** Character data outside any top-level element: whitespace only. */
  private topText(buf: string, from: number, to: number): void {
    let text = buf.slice(from, to);
    if (this.level === 0 && this.pristine && from === 0 && text.startsWith('\xef\xbb\xbf')) text = text.slice(3); // UTF-8 BOM
    if (!WS_ONLY.test(text)) {
      if (this.level === 0) throw nwf('text before the stream header');
      throw new StreamError('bad-format', 'character data between stanzas');
    }
    if (this.level === 1) this.handler.onWhitespace?.();
  }

  /** Character data inside an element: references and ']]>' checked. */
  private innerText(buf: string, from: number, to: number): void {
    if (this.hasAmp(buf, from, to)) this.checkReferences(buf.slice(from, to));
    if (this.hasCdataEnd(buf, from, to)) throw nwf("']]>' in character data");
  }

  private checkReferences(text: string): void {
    let amp = text.indexOf('&');
    while (amp !== -1) {
      const semi = text.indexOf(';', amp + 1);
      if (semi === -1) throw nwf("'&' that starts no reference");
      const verdict = classifyEntity(text.slice(amp + 1, semi));
      if (verdict === 'malformed') throw nwf("'&' that starts no valid reference");
      if (verdict === 'restricted') throw new StreamError('restricted-xml', 'entity reference');
      amp = text.indexOf('&', semi + 1);
    }
  }

  /** `<!`: CDATA inside an element; anything else (DOCTYPE, comment, declarations) is restricted. */
  private markup(buf: string, lt: number): number {
    const avail = buf.length - lt;
    const cdata = '<![CDATA[';
    if (avail < cdata.length && cdata.startsWith(buf.slice(lt))) return INCOMPLETE;
    if (buf.startsWith(cdata, lt)) {
      if (this.depth === 0) throw new StreamError('bad-format', 'CDATA between stanzas');
      const end = buf.indexOf(']]>', lt + cdata.length);
      if (end !== -1) return end + 3;
      this.waitFor(']]>', buf, lt + cdata.length);
      return INCOMPLETE;
    }
    if (avail < 4 && '<!--'.startsWith(buf.slice(lt))) return INCOMPLETE;
    if (buf.startsWith('<!--', lt)) throw new StreamError('restricted-xml', 'comment');
    throw new StreamError('restricted-xml', 'DTD or markup declaration');
  }

  /** `<?`: only the XML declaration, only before a stream header. */
  private instruction(buf: string, lt: number): number {
    const end = buf.indexOf('?>', lt + 2);
    const head = buf.slice(lt, Math.min(buf.length, lt + 6));
    const isDecl = head.length === 6 ? /^<\?xml[ \t\r\n]$/.test(head) : '<?xml '.startsWith(head);
    if (!(this.level === 0 && this.pristine && isDecl)) {
      throw new StreamError('restricted-xml', 'processing instruction');
    }
    if (end === -1) {
      if (head.length === 6) this.waitFor('?>', buf, lt + 2); // known to be the declaration
      return INCOMPLETE;
    }
    const decl = XML_DECL.exec(buf.slice(lt + 5, end));
    if (!decl) throw nwf('bad XML declaration');
    const enc = decl[1] ?? decl[2];
    if (enc !== undefined && enc.toLowerCase() !== 'utf-8') throw new StreamError('unsupported-encoding', enc);
    return end + 2;
  }

  private endTag(buf: string, lt: number): number {
    // the usual case in one pass: the open element's name, optional whitespace, '>' (no search for
    // the '>' and no walk back over whitespace, then the comparison, as below)
    if (this.depth > 0) {
      const open = OPEN[this.depth - 1]!;
      const len = buf.length;
      let i = lt + 2;
      if (i + open.length < len && at(buf, i, open)) {
        i += open.length;
        while (i < len && isWhitespace(buf.charCodeAt(i))) i++;
        if (i < len && buf.charCodeAt(i) === GT) return this.closeElement(buf, i + 1);
      }
    }
    const gt = buf.indexOf('>', lt + 2);
    if (gt === -1) return INCOMPLETE;
    let nameEnd = gt;
    while (nameEnd > lt + 2 && isWhitespace(buf.charCodeAt(nameEnd - 1))) nameEnd--;
    if (this.depth === 0) {
      if (this.level === 1 && !this.framed && sameName(buf, lt + 2, nameEnd, this.streamName)) {
        this.level = 0;
        this.closed = true;
        this.handler.onStreamEnd();
        return gt + 1;
      }
      throw nwf(`unexpected end tag </${buf.slice(lt + 2, nameEnd)}>`);
    }
    const open = OPEN[this.depth - 1]!;
    if (!sameName(buf, lt + 2, nameEnd, open)) throw nwf(`end tag </${buf.slice(lt + 2, nameEnd)}> does not match <${open}>`);
    return this.closeElement(buf, gt + 1);
  }

  /** The open element's end tag ends before buf[end]. */
  private closeElement(buf: string, end: number): number {
    if (this.scopes !== undefined && this.scopes[this.scopes.length - 1]!.depth === this.depth) {
      this.scopes.pop();
      if (this.scopes.length === 0) this.scopes = undefined;
    }
    this.depth--;
    if (this.depth === 0) this.emit(buf, end);
    return end;
  }

  private emit(buf: string, end: number): void {
    if (end - this.start > this.limits.maxSize) {
      throw new StreamError('policy-violation', `element larger than ${this.limits.maxSize} bytes`);
    }
    const stanza = new Stanza(this.topName, this.topAttrs, buf.slice(this.start, end), this.childName, this.childNs);
    this.start = -1;
    this.topName = '';
    this.topAttrs = NO_ATTRS;
    this.childName = undefined;
    this.childNs = undefined;
    this.pos = end; // before the handler runs: a reset(true) inside it resumes after this element
    this.handler.onElement(stanza);
  }

  private startTag(buf: string, lt: number): number {
    const len = buf.length;
    let i = lt + 1;
    if (!isNameStart(buf.charCodeAt(i))) throw nwf('bad element name');
    let colon = -1; // the name's first ':' (its prefix ends there)
    for (; i < len; i++) {
      const c = buf.charCodeAt(i);
      if (!isNameChar(c)) break;
      if (c === COLON && colon === -1) colon = i;
    }
    if (i >= len) return INCOMPLETE;
    const nameEnd = i;
    const top = this.depth === 0; // a stream header or a top-level element: attributes are kept
    const wantChildNs = this.depth === 1 && this.childName === undefined;
    // a top-level tag's attributes: the common ones held in locals and stored by name once the tag
    // is read (attrsOf), the rest in `rest`; stored one by one under a computed key, each went
    // through one keyed store that saw every shape of attributes object (a generic, slow store)
    let aTo: string | undefined, aFrom: string | undefined, aId: string | undefined;
    let aType: string | undefined, aXmlns: string | undefined, aLang: string | undefined;
    let rest: Attrs | undefined;
    let declaring: string[] | undefined; // prefixes this tag declares
    let prefixed: string[] | undefined; // prefixed attribute names
    let childNs: string | undefined;
    let selfClosing = false;
    let common = 0; // the common attribute names this tag has (bits), for the duplicate check
    if (seenCount !== 0) forgetSeen(); // a tag left unfinished (or rejected) may have left names in it
    for (;;) {
      if (i >= len) return INCOMPLETE;
      let c = buf.charCodeAt(i);
      if (c === GT) {
        i++;
        break;
      }
      if (c === SLASH) {
        if (i + 1 >= len) return INCOMPLETE;
        if (buf.charCodeAt(i + 1) !== GT) throw nwf("'/' not followed by '>'");
        selfClosing = true;
        i += 2;
        break;
      }
      if (!isWhitespace(c)) throw nwf(`bad character in tag <${bytesToText(buf.slice(lt + 1, nameEnd))}>`);
      while (i < len && isWhitespace(buf.charCodeAt(i))) i++;
      if (i >= len) return INCOMPLETE;
      c = buf.charCodeAt(i);
      if (c === GT || c === SLASH) continue;
      // attribute: its name and value are found by position, and sliced only where they are kept
      const nameStart = i;
      if (!isNameStart(c)) throw nwf('bad attribute name');
      let attrColon = -1;
      for (; i < len; i++) {
        const d = buf.charCodeAt(i);
        if (!isNameChar(d)) break;
        if (d === COLON && attrColon === -1) attrColon = i;
      }
      const attrEnd = i;
      while (i < len && isWhitespace(buf.charCodeAt(i))) i++;
      if (i >= len) return INCOMPLETE;
      if (buf.charCodeAt(i) !== EQ) throw nwf(`attribute '${bytesToText(buf.slice(nameStart, attrEnd))}' without a value`);
      i++;
      while (i < len && isWhitespace(buf.charCodeAt(i))) i++;
      if (i >= len) return INCOMPLETE;
      const q = buf.charCodeAt(i);
      if (q !== DQUOTE && q !== SQUOTE) throw nwf('unquoted attribute value');
      const close = buf.indexOf(q === DQUOTE ? '"' : "'", i + 1);
      if (close === -1) return INCOMPLETE;
      const valueStart = i + 1;
      i = close + 1;
      if (this.hasLt(buf, valueStart, close)) throw nwf("'<' in an attribute value");
      const refs = this.hasAmp(buf, valueStart, close);
      if (refs) this.checkReferences(buf.slice(valueStart, close));
      const known = commonAttr(buf, nameStart, attrEnd);
      let attrName: string;
      if (known !== -1) {
        attrName = COMMON_ATTRS[known]!;
        if ((common & (1 << known)) !== 0) throw nwf(`duplicate attribute '${attrName}'`);
        common |= 1 << known;
      } else {
        attrName = buf.slice(nameStart, attrEnd);
        if (seenBefore(attrName)) throw nwf(`duplicate attribute '${bytesToText(attrName)}'`);
        if (attrColon === nameStart + 5 && isXmlns(buf, nameStart)) {
          if (close === valueStart) throw nwf('empty namespace for a prefix');
          (declaring ??= []).push(buf.slice(attrColon + 1, attrEnd));
          // a prefixed first child declaring its own prefix (<ps:pubsub xmlns:ps='...'>): its namespace
          if (wantChildNs && colon !== -1 && attrEnd - attrColon === colon - lt && buf.startsWith(buf.slice(lt + 1, colon), attrColon + 1)) {
            const value = this.text(buf, valueStart, close);
            childNs = refs ? unescapeXml(value) : value;
          }
        } else if (attrColon !== -1) {
          (prefixed ??= []).push(attrName); // checked once the whole tag (and its declarations) is read
        }
        if (top) attrName = this.text(buf, nameStart, attrEnd);
      }
      if (top) {
        const text = this.text(buf, valueStart, close);
        const value = refs ? unescapeXml(text) : text;
        switch (known) {
          case 0: aTo = value; break;
          case 1: aFrom = value; break;
          case 2: aId = value; break;
          case 3: aType = value; break;
          case XMLNS: aXmlns = value; break;
          case 5: aLang = value; break;
          default: (rest ??= {})[attrName] = value;
        }
      } else if (wantChildNs && known === XMLNS && colon === -1) {
        const value = this.text(buf, valueStart, close);
        childNs = refs ? unescapeXml(value) : value;
      }
    }
    // A prefixed first child's namespace is the one its prefix stands for, as for the backend that
    // reads it: declared on the child itself (above) or on the top-level element. Rules recognise a
    // stanza by its child's name and namespace, so `<ps:pubsub xmlns:ps='...pubsub'>` must not look
    // like an unknown element to them and pass their checks unseen. A prefix the stream header
    // declares is left unresolved: the proxy's own stream to the backend declares none, so such a
    // stanza does not get through the backend's parser.
    if (wantChildNs && colon !== -1 && childNs === undefined) {
      childNs = this.topAttrs[`xmlns:${this.text(buf, lt + 1, colon)}`];
    }
    if (seenCount !== 0) forgetSeen();
    const attrs = top ? attrsOf(common, aTo, aFrom, aId, aType, aXmlns, aLang, rest) : undefined;
    const declared = declaring === undefined ? undefined : lookup(declaring);
    if (colon !== -1) this.checkPrefix(buf.slice(lt + 1, nameEnd), declared, false);
    if (prefixed !== undefined) for (const a of prefixed) this.checkPrefix(a, declared, true);

    if (this.level === 0) {
      this.streamHeader(buf.slice(lt + 1, nameEnd), attrs!, declared, selfClosing);
      return i;
    }
    this.pristine = false;
    // the name as the end tag will be matched against it: the stanza names as constants
    const stanza = top ? stanzaName(buf, lt + 1, nameEnd) : undefined;
    const name = stanza ?? (selfClosing && !top ? '' : buf.slice(lt + 1, nameEnd));
    if (top) {
      this.start = lt;
      this.topName = stanza ?? this.text(buf, lt + 1, nameEnd);
      this.topAttrs = attrs!;
      this.childName = undefined;
      this.childNs = undefined;
    } else if (wantChildNs) {
      this.childName = this.text(buf, colon === -1 ? lt + 1 : colon + 1, nameEnd);
      this.childNs = childNs;
    }
    if (this.depth >= this.limits.maxDepth) {
      throw new StreamError('policy-violation', `elements nested deeper than ${this.limits.maxDepth} levels`);
    }
    if (selfClosing) {
      if (top) this.emit(buf, i);
      return i;
    }
    OPEN[this.depth] = name;
    if (this.depth >= openUsed) openUsed = this.depth + 1;
    this.depth++;
    if (declared !== undefined) (this.scopes ??= []).push({ depth: this.depth, prefixes: declared });
    return i;
  }

  /** A prefixed name must use a prefix declared on this tag, an open ancestor or the stream header. */
  private checkPrefix(qname: string, declared: Prefixes | undefined, attribute: boolean): void {
    const colon = qname.indexOf(':');
    const prefix = qname.slice(0, colon);
    if (colon === 0 || colon === qname.length - 1 || qname.indexOf(':', colon + 1) !== -1) {
      throw nwf(`bad qualified name '${bytesToText(qname)}'`);
    }
    if (prefix === 'xml' || (attribute && prefix === 'xmlns')) return;
    if (declared !== undefined && declares(declared, prefix)) return;
    if (this.scopes !== undefined) for (let d = this.scopes.length - 1; d >= 0; d--) if (declares(this.scopes[d]!.prefixes, prefix)) return;
    if (declares(this.streamPrefixes, prefix)) return;
    throw new StreamError('bad-namespace-prefix', `undeclared prefix '${bytesToText(prefix)}'`);
  }

  private streamHeader(name: string, attrs: Attrs, declared: Prefixes | undefined, selfClosing: boolean): void {
    const colon = name.indexOf(':');
    const local = colon === -1 ? name : name.slice(colon + 1);
    const nsAttr = colon === -1 ? 'xmlns' : `xmlns:${name.slice(0, colon)}`;
    if (local !== 'stream' || attrs[nsAttr] !== NS_STREAM) {
      throw new StreamError('invalid-namespace', 'the stream must open with <stream:stream> in ' + NS_STREAM);
    }
    if (selfClosing) throw nwf('empty stream');
    this.level = 1;
    this.pristine = false;
    // copies: a slice would keep the whole first input chunk alive for the stream's lifetime
    this.streamName = name === 'stream:stream' ? 'stream:stream' : Buffer.from(name, 'latin1').toString('latin1');
    // own copies: slices would keep the first input chunk alive
    this.streamPrefixes = !declared
      ? NO_NAMES
      : Array.isArray(declared) && declared.length === 1 && declared[0] === 'stream'
        ? STREAM_ONLY
        : lookup([...declared].map((p) => (p === 'stream' ? 'stream' : Buffer.from(p, 'latin1').toString('latin1'))));
    this.handler.onStreamStart(name, attrs);
  }
}
