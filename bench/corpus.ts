// The synthetic stream every throughput figure shares: a mix of typical c2s stanzas (chat with chat
// states, receipts and markers, disco, vCard and pubsub iqs, a pubsub notification, iq results,
// non-ASCII text, escaped characters), cycled with changing ids, concatenated and cut into big chunks.
// No stanza here is one a rule of the proxy claims (presence is, since §3; a ping addressed to the
// server or a roster iq would be), so the proxy's work is the pass-through path: tokenize, run the
// rule table, forward the original bytes.

export const DOMAIN = 'capulet.lit';

export const STREAM_HEADER =
  "<?xml version='1.0'?><stream:stream to='capulet.lit' xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' version='1.0' xml:lang='en'>";

const TEMPLATES: Array<(n: number) => string> = [
  (n) =>
    `<message to='romeo@montague.lit/orchard' type='chat' id='m-${n}'><body>Wherefore art thou, Romeo? Deny thy father and refuse thy name. (${n})</body><active xmlns='http://jabber.org/protocol/chatstates'/><request xmlns='urn:xmpp:receipts'/></message>`,
  (n) =>
    `<iq type='get' id='disco-${n}' to='pubsub.capulet.lit'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>`,
  (n) =>
    `<message to="nurse@capulet.lit/chamber" type="chat" id="u-${n}"><body>Ωμέγα ☾ café — &lt;b&gt;bold&lt;/b&gt; &amp; “quotes” 😀</body><thread>th-${n % 7}</thread><markable xmlns="urn:xmpp:chat-markers:0"/></message>`,
  (n) =>
    `<iq type='set' id='pub-${n}'><pubsub xmlns='http://jabber.org/protocol/pubsub'><publish node='urn:xmpp:microblog:0'><item id='i${n}'><entry xmlns='http://www.w3.org/2005/Atom'><title type='text'>Soliloquy</title><summary>To be, or not to be: that is the question.</summary><published>2025-01-01T12:00:00Z</published></entry></item></publish></pubsub></iq>`,
  (n) => `<iq type='result' id='r-${n}' to='pubsub.capulet.lit'/>`,
  (n) =>
    `<message to='romeo@montague.lit' type='headline' id='h-${n}'><event xmlns='http://jabber.org/protocol/pubsub#event'><items node='princely_musings'><item id='ae890ac52d0df67ed7cfdf51b644e901'><entry xmlns='http://www.w3.org/2005/Atom'><title>Soliloquy</title><summary>Whether 'tis nobler in the mind to suffer</summary><link rel='alternate' type='text/html' href='http://denmark.lit/2003/12/13/atom03'/></entry></item></items></event></message>`,
  (n) => `<iq type='get' id='ping-${n}' to='romeo@montague.lit/orchard'><ping xmlns='urn:xmpp:ping'/></iq>`,
  (n) => `<message to='romeo@montague.lit/orchard' type='chat' id='c-${n}'><composing xmlns='http://jabber.org/protocol/chatstates'/></message>`,
  (n) => `<iq type='get' id='v-${n}' to='romeo@montague.lit'><vCard xmlns='vcard-temp'/></iq>`,
  (n) =>
    `<message to='nurse@capulet.lit/chamber' id='rc-${n}'><received xmlns='urn:xmpp:receipts' id='m-${n - 1}'/><displayed xmlns='urn:xmpp:chat-markers:0' id='m-${n - 1}'/></message>`,
];

export const STANZA_KINDS = TEMPLATES.length;

/** `count` stanzas, cycling through the templates. */
export function stanzas(count: number, from = 0): string[] {
  const out: string[] = [];
  for (let i = 0; i < count; i++) out.push(TEMPLATES[(from + i) % TEMPLATES.length]!(from + i));
  return out;
}

export interface Corpus {
  /** the stanzas' bytes (UTF-8), concatenated and cut into chunks of about `chunkSize` bytes */
  chunks: Buffer[];
  stanzas: number;
  bytes: number;
}

/**
 * `count` stanzas as UTF-8 cut into chunks of exactly `chunkSize` bytes (the last shorter): chunk
 * edges fall anywhere, inside tags and inside multibyte characters, as they do on a socket.
 */
export function corpus(count: number, chunkSize = 64 * 1024): Corpus {
  const all = Buffer.from(stanzas(count).join(''), 'utf8');
  const chunks: Buffer[] = [];
  for (let i = 0; i < all.length; i += chunkSize) chunks.push(all.subarray(i, Math.min(all.length, i + chunkSize)));
  return { chunks, stanzas: count, bytes: all.length };
}
