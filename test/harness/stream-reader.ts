// Reads what the proxy sent a raw client as a strict, namespace-aware XML parser (sax) would: the
// tests' check that an answer is one well-formed stream (RFC 6120 §4.9.1.1: header, then error, then
// close), not merely text that contains the right tags. An unbound `stream:` prefix fails here.
import sax from 'sax';

const NS_STREAM = 'http://etherx.jabber.org/streams';
const NS_STREAMS = 'urn:ietf:params:xml:ns:xmpp-streams';

export interface StreamAnswer {
  /** the root is <stream> in the streams namespace */
  isStream: boolean;
  /** qualified names of the root's children, in order ('stream:features', 'stream:error') */
  children: string[];
  /** the condition inside <stream:error>, if there is one */
  condition?: string;
}

/** Parse a whole answer; throws (with the parser's reason) if it is not well-formed XML, unclosed root included. */
export function readStream(text: string): StreamAnswer {
  const parser = sax.parser(true, { xmlns: true });
  const answer: StreamAnswer = { isStream: false, children: [] };
  const open: sax.QualifiedTag[] = [];
  parser.onerror = (err) => {
    throw new Error(`not well-formed: ${err.message}`);
  };
  parser.onopentag = (tag) => {
    const q = tag as sax.QualifiedTag;
    if (open.length === 0) answer.isStream = q.local === 'stream' && q.uri === NS_STREAM;
    else if (open.length === 1) answer.children.push(q.name);
    else if (open.length === 2 && open[1]!.local === 'error' && q.uri === NS_STREAMS && q.local !== 'text') answer.condition = q.local;
    open.push(q);
  };
  parser.onclosetag = () => {
    open.pop();
  };
  parser.write(text).close();
  return answer;
}
