// The restricted-XML tokenizer on its own: what it yields, across any chunking, and every violation
// RFC 6120 names, with the stream error condition each one gets.
import t from 'tap';
import { Tokenizer } from '../src/stream/tokenizer.js';
import { StreamError } from '../src/stream/errors.js';
import type { Stanza } from '../src/stream/stanza.js';

const HEADER = "<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='capulet.lit' version='1.0'>";

interface Events {
  start: Array<Record<string, string>>;
  elements: Stanza[];
  ended: boolean;
}

/** each chunk flagged ASCII where it is, as the framings do (`ascii: false`: never, the slower path) */
function tokenize(input: string | Buffer, chunk = Infinity, limits = { maxSize: 4096, maxDepth: 16 }, ascii = true): Events {
  const ev: Events = { start: [], elements: [], ended: false };
  const tk = new Tokenizer(
    {
      onStreamStart: (_n, a) => ev.start.push(a),
      onElement: (s) => ev.elements.push(s),
      onStreamEnd: () => (ev.ended = true),
    },
    limits,
  );
  const bytes = (typeof input === 'string' ? Buffer.from(input, 'utf8') : input).toString('latin1');
  for (let i = 0; i < bytes.length; i += chunk) {
    const part = bytes.slice(i, i + chunk);
    tk.write(part, ascii && !/[\x80-\xff]/.test(part));
  }
  return ev;
}

/** The condition of the stream error `input` gets in chunks of `chunk` bytes ('none': none). */
function conditionOf(input: string, chunk = Infinity): string {
  try {
    tokenize(input, chunk);
  } catch (e) {
    if (e instanceof StreamError) return e.condition;
    throw e;
  }
  return 'none';
}

/** The stream error `body` gets, the same whatever the chunking and the ASCII flag. */
function violation(body: string, limits?: { maxSize: number; maxDepth: number }): StreamError {
  const errors: StreamError[] = [];
  for (const [chunk, ascii] of [[Infinity, true], [Infinity, false], [3, true]] as const) {
    try {
      tokenize(HEADER + body, chunk, limits, ascii);
    } catch (err) {
      if (!(err instanceof StreamError)) throw err;
      errors.push(err);
      continue;
    }
    throw new Error(`no stream error for ${body.slice(0, 60)} (chunk ${chunk}, ascii ${ascii})`);
  }
  const conditions = new Set(errors.map((e) => e.condition));
  if (conditions.size !== 1) throw new Error(`different errors for ${body.slice(0, 60)}: ${[...conditions].join(', ')}`);
  return errors[0]!;
}

t.test('yields header, top-level elements with their exact bytes, and the end', async (t) => {
  const body =
    "<message to='romeo@montague.lit' id=\"a&amp;b\" type='chat'><body>wherefore &lt;art&gt; thou? Ωμέγα 😀</body><x:y xmlns:x='urn:x' x:z='1'/></message>" +
    "\n  <iq type='get' id='p1'><ping xmlns='urn:xmpp:ping'/></iq><presence/>";
  const input = "<?xml version='1.0' encoding='UTF-8'?>" + HEADER + body + '</stream:stream>';
  for (const [chunk, ascii] of [[Infinity, true], [Infinity, false], [1, true], [2, true], [3, false], [7, true], [64, true]] as const) {
    const ev = tokenize(input, chunk, undefined, ascii);
    t.equal(ev.start.length, 1, `header (chunk ${chunk})`);
    t.equal(ev.start[0]!.to, 'capulet.lit');
    t.same(ev.elements.map((e) => e.name), ['message', 'iq', 'presence'], `elements (chunk ${chunk})`);
    const msg = ev.elements[0]!;
    t.same(msg.attrs, { to: 'romeo@montague.lit', id: 'a&b', type: 'chat' });
    t.equal(Buffer.from(msg.raw, 'latin1').toString('utf8'), body.slice(0, body.indexOf('</message>') + 10), 'raw bytes are the input bytes');
    t.equal(msg.el.getChildText('body'), 'wherefore <art> thou? Ωμέγα 😀', 'text decoded and unescaped');
    t.equal(msg.childName, 'body');
    t.equal(ev.elements[1]!.childName, 'ping');
    t.equal(ev.elements[1]!.childNs, 'urn:xmpp:ping');
    t.ok(ev.elements[1]!.childIs('ping', 'urn:xmpp:ping'));
    t.equal(ev.elements[2]!.raw, '<presence/>');
    t.ok(ev.ended, 'stream end');
  }
});

t.test("a prefixed first child's namespace is the one its prefix stands for", async (t) => {
  const PS = 'http://jabber.org/protocol/pubsub';
  const input =
    HEADER +
    `<iq type='get' id='a'><ps:pubsub xmlns:ps='${PS}' xmlns='urn:other'><ps:items node='n'/></ps:pubsub></iq>` +
    `<iq type='get' id='b' xmlns:ps='${PS}&#x23;owner'><ps:pubsub><ps:delete node='n'/></ps:pubsub></iq>` +
    `<iq type='get' id='c'><ps:pubsub xmlns:p='urn:not-it' xmlns:ps='${PS}'/></iq>` +
    `<iq type='get' id='d'><query xmlns:q='urn:q' xmlns='jabber:iq:roster'/></iq>` +
    `<iq type='get' id='e'><pubsub/></iq>`;
  for (const chunk of [Infinity, 1, 5]) {
    const [a, b, c, d, e] = tokenize(input, chunk).elements;
    t.same([a!.childName, a!.childNs], ['pubsub', PS], `declared on the child (its default namespace is not its own) (chunk ${chunk})`);
    t.same([b!.childName, b!.childNs], ['pubsub', `${PS}#owner`], 'declared on the top-level element, a character reference in it');
    t.equal(c!.childNs, PS, 'among other declarations');
    t.equal(d!.childNs, 'jabber:iq:roster', 'an unprefixed child: its xmlns, not a prefix it declares');
    t.equal(e!.childNs, undefined, 'no namespace of its own: none');
    t.equal(a!.el.getChild('pubsub', PS)?.getChild('items', PS)?.attrs.node, 'n', 'the tree agrees');
  }
});

t.test('CDATA inside a stanza is text; a BOM before the header is fine', async (t) => {
  const ev = tokenize('\ufeff' + HEADER + '<message><body><![CDATA[a <b> & c]]></body></message>', 5);
  t.equal(ev.elements[0]!.el.getChildText('body'), 'a <b> & c');
});

t.test('non-ASCII attribute values are decoded', async (t) => {
  const ev = tokenize(HEADER + "<message to='jüliet@capulet.lit'/>", 3);
  t.equal(ev.elements[0]!.attrs.to, 'jüliet@capulet.lit');
  // ASCII before and after a non-ASCII value in one chunk: only that value is decoded
  const mixed = tokenize(HEADER + "<message to='romeo@montague.lit' from='jüliet@capulet.lit/balcon' id='x1' type='chat' née='1'><bödy xmlns='urn:ü'/></message><iq id='p'/>");
  t.same(mixed.elements[0]!.attrs, { to: 'romeo@montague.lit', from: 'jüliet@capulet.lit/balcon', id: 'x1', type: 'chat', née: '1' });
  t.equal(mixed.elements[0]!.childName, 'bödy');
  t.equal(mixed.elements[0]!.childNs, 'urn:ü');
  t.same(mixed.elements[1]!.attrs, { id: 'p' });
});

t.test('a top-level tag keeps every attribute, common names or not, in any order', async (t) => {
  const ev = tokenize(
    HEADER +
      "<iq xmlns:p='urn:p' p:a='1' type='get' xml:lang='en' b='2' id='q' from='a@b/c' to='b' xmlns='jabber:client'/>" +
      "<message b='&amp;'/><presence/>",
    5,
  );
  const iq = ev.elements[0]!.attrs;
  t.same(iq, { 'xmlns:p': 'urn:p', 'p:a': '1', type: 'get', 'xml:lang': 'en', b: '2', id: 'q', from: 'a@b/c', to: 'b', xmlns: 'jabber:client' });
  t.same(Object.keys(iq).sort(), ['b', 'from', 'id', 'p:a', 'to', 'type', 'xml:lang', 'xmlns', 'xmlns:p'], 'nothing else, nothing undefined');
  t.same(ev.elements[1]!.attrs, { b: '&' });
  t.same(Object.keys(ev.elements[2]!.attrs), [], 'the next stanza gets none of them');
});

t.test('open elements spanning writes, with other tokenizers scanning in between, still match their end tags', async (t) => {
  // the names of open elements are kept in one array for every tokenizer while a scan runs
  const deep = "<message><a><bb><ccc xmlns='urn:c'><dddd/><eeeee>x</eeeee></ccc></bb></a></message>";
  const seen: string[][] = [[], [], []];
  const make = (k: number, onElement?: () => void) =>
    new Tokenizer({ onStreamStart: () => undefined, onElement: (s) => { seen[k]!.push(s.raw); onElement?.(); }, onStreamEnd: () => undefined }, { maxSize: 4096, maxDepth: 16 });
  const third = make(2);
  third.write(HEADER, true);
  // the second one's handler makes the third scan (a whole element) while the second is at depth 0
  const pair = [make(0), make(1, () => third.write(deep, true))];
  for (const tk of pair) tk.write(HEADER, true);
  for (let i = 0; i < deep.length; i += 3) for (const tk of pair) tk.write(deep.slice(i, i + 3), true);
  t.same(seen[0], [deep]);
  t.same(seen[1], [deep]);
  t.same(seen[2], [deep]);
  // a mismatch after a split is still found, whoever scanned in between
  const bad = make(0);
  bad.write(HEADER + '<message><a><b>', true);
  make(1).write(HEADER + '<x><y><z></z></y></x>', true);
  let condition = 'none';
  try {
    bad.write('</a></b></message>', true);
  } catch (err) {
    if (!(err instanceof StreamError)) throw err;
    condition = err.condition;
  }
  t.equal(condition, 'not-well-formed', 'the mismatch is a stream error');
});

t.test('what is looked for once per buffer (references, "<", "]]>") is found wherever it comes', async (t) => {
  // several clean values and text nodes, then the one that breaks the rule: each time in one chunk
  const clean = "<message to='a@b' id='1'><body>one</body><x xmlns='urn:x' y='2'>two</x></message>";
  for (const [bad, condition] of [
    ["<message to='a@b' id='x&lt;y' from='c&d'/>", 'not-well-formed'],
    ["<message to='a@b' id='1' from='c<d'/>", 'not-well-formed'],
    ["<message><body>fine &amp; dandy</body><body>then &bogus;</body></message>", 'restricted-xml'],
    ["<message><body><![CDATA[x]]></body><body>a]]>b</body></message>", 'not-well-formed'],
    ["<message to='a&amp;b' to='c'/>", 'not-well-formed'],
    ["<message><x a='1' b='2' a='3'/></message>", 'not-well-formed'],
  ] as const) {
    t.equal(violation(clean + clean + bad).condition, condition, bad);
  }
  // and where it is not, nothing is: references decoded, CDATA ends and '>' in values are fine
  for (const chunk of [5, 1]) {
    // byte by byte, a start tag is read again only once a '>' came: one inside a value does not end it
    const ok = tokenize(HEADER + clean + "<message id='a&amp;b' to='x>y' from=\"p'>q\"><body>c &lt; d ]] &gt;</body><body><![CDATA[<e>]]></body></message>" + clean, chunk);
    t.equal(ok.elements.length, 3);
    t.same(ok.elements[1]!.attrs, { id: 'a&b', to: 'x>y', from: "p'>q" });
    t.same(ok.elements[1]!.el.getChildren('body').map((b) => b.getText()), ['c < d ]] >', '<e>']);
  }
});

t.test('restricted XML (RFC 6120 §11.1) -> restricted-xml', async (t) => {
  t.equal(violation('<!DOCTYPE foo [<!ENTITY x "y">]>').condition, 'restricted-xml', 'DOCTYPE');
  t.equal(violation('<message><!-- hi --></message>').condition, 'restricted-xml', 'comment in a stanza');
  t.equal(violation('<!-- hi -->').condition, 'restricted-xml', 'comment between stanzas');
  t.equal(violation('<?php echo 1; ?>').condition, 'restricted-xml', 'processing instruction');
  t.equal(violation("<message><?xml version='1.0'?></message>").condition, 'restricted-xml', 'XML declaration inside the stream');
  t.equal(violation('<message><body>&lol;</body></message>').condition, 'restricted-xml', 'undeclared entity');
  t.equal(violation("<message to='&ent;'/>").condition, 'restricted-xml', 'entity in an attribute');
  const dtdFirst = (() => {
    try {
      tokenize('<!DOCTYPE stream [<!ENTITY a "aaaa">]>' + HEADER);
    } catch (err) {
      return (err as StreamError).condition;
    }
    return 'none';
  })();
  t.equal(dtdFirst, 'restricted-xml', 'DOCTYPE before the header');
});

t.test('malformed XML -> not-well-formed', async (t) => {
  for (const bad of [
    '<message></presence>',
    "<message to=romeo/>",
    "<message to='a' to='b'/>",
    "<message to='a<b'/>",
    '<message><body>a & b</body></message>',
    '<message><body>&#0;</body></message>',
    '<message><body>&#xD800;</body></message>',
    "<message to='a'from='b'/>",
    '<message / >',
    '<1message/>',
    '<message><body>]]></body></message>',
    '</message>',
    '<message attr/>',
  ]) {
    t.equal(violation(bad).condition, 'not-well-formed', bad);
  }
  t.equal(violation('<a:message/>').condition, 'bad-namespace-prefix', 'undeclared prefix');
  t.equal(violation("<message><x:y z:w='1' xmlns:x='urn:x'/></message>").condition, 'bad-namespace-prefix', 'undeclared attribute prefix');
  t.equal(violation('hello').condition, 'bad-format', 'text between stanzas');
});

t.test('duplicate attributes are found among many (past the first 16, a set does the check)', async (t) => {
  const attrs = (n: number) => Array.from({ length: n }, (_, i) => ` a${i}='${i}'`).join('');
  const limits = { maxSize: 1 << 20, maxDepth: 16 };
  const many = tokenize(HEADER + `<message${attrs(2000)}><x${attrs(2000)}/></message>`, Infinity, limits);
  t.equal(Object.keys(many.elements[0]!.attrs).length, 2000, 'distinct attributes: all kept');
  t.equal(violation(`<message${attrs(40)} a3='again'/>`, limits).condition, 'not-well-formed', 'a duplicate of an early one, found late');
  t.equal(violation(`<message><x${attrs(40)} a39='again'/></message>`, limits).condition, 'not-well-formed', 'a duplicate of a late one, inside');
  t.equal(violation(`<message${attrs(16)} a15='again'/>`, limits).condition, 'not-well-formed', 'at the switch');
  // many prefixes declared (a set past the first 16): each still found, and only where in scope
  const decl = Array.from({ length: 40 }, (_, i) => ` xmlns:p${i}='urn:p${i}'`).join('');
  const uses = Array.from({ length: 40 }, (_, i) => ` p${i}:a='1'`).join('');
  t.equal(tokenize(HEADER + `<message${decl}${uses}><p39:x p0:b='2'/></message>`, Infinity, limits).elements.length, 1, 'forty prefixes, all in scope');
  t.equal(violation(`<message><x${decl}/><p39:y/></message>`, limits).condition, 'bad-namespace-prefix', 'out of scope after its element');
  t.equal(violation(`<message${decl} p40:a='1'/>`, limits).condition, 'bad-namespace-prefix', 'one not among them');
  // the next tag starts afresh: names of the last one are not duplicates of its own
  t.equal(tokenize(HEADER + `<message${attrs(40)}/><message${attrs(40)}/>`, 7, limits).elements.length, 2);
});

t.test('limits -> policy-violation, before the element is complete', async (t) => {
  const deep = '<a>'.repeat(5000);
  const err = violation(deep, { maxSize: 1 << 20, maxDepth: 64 });
  t.equal(err.condition, 'policy-violation');
  t.match(err.text, /nested deeper than 64/);
  const big = violation('<message><body>' + 'x'.repeat(5000), { maxSize: 4096, maxDepth: 16 });
  t.equal(big.condition, 'policy-violation', 'an unfinished element over the size limit');
  const bigDone = violation('<message><body>' + 'x'.repeat(5000) + '</body></message>', { maxSize: 4096, maxDepth: 16 });
  t.equal(bigDone.condition, 'policy-violation', 'a finished element over the size limit');
  // trickled in byte by byte (chunks that cannot finish it are only appended): the limit still holds
  const trickled = (body: string) => conditionOf(HEADER + body, 1);
  t.equal(trickled(`<message to='${'x'.repeat(5000)}'`), 'policy-violation', 'an unfinished start tag over the limit, a byte at a time');
  t.equal(trickled('<message><body>' + 'x'.repeat(5000)), 'policy-violation', 'unfinished text over the limit, a byte at a time');
  // exactly at the limit is fine
  const el = "<message><body>" + 'x'.repeat(100) + '</body></message>';
  t.equal(tokenize(HEADER + el, 7, { maxSize: el.length, maxDepth: 2 }).elements.length, 1, 'at the limit');
  t.equal(violation('<a><b><c/></b></a>', { maxSize: 4096, maxDepth: 2 }).condition, 'policy-violation', 'self-closing element past the depth limit');
});

t.test('stream header checks', async (t) => {
  const err = (input: string) => conditionOf(input);
  t.equal(err("<stream xmlns='jabber:client'>"), 'invalid-namespace', 'not in the streams namespace');
  t.equal(err("<message/>"), 'invalid-namespace', 'a stanza before the header');
  t.equal(err('GET / HTTP/1.1\r\n'), 'not-well-formed', 'HTTP request');
  t.equal(err("<?xml version='1.0' encoding='ISO-8859-1'?>" + HEADER), 'unsupported-encoding');
  // XML 1.0 §2.8: version, then encoding and standalone, in that order, nothing else
  for (const decl of [`<?xml version="1.0" encoding="UTF-8" standalone='yes' ?>`, `<?xml\tversion = '1.1'?>`, `<?xml version='1.0' encoding='utf-8'?>`]) {
    t.equal(err(decl + HEADER + '</stream:stream>'), 'none', `taken: ${decl}`);
  }
  for (const decl of [`<?xml xmlns:o='urn:x' version='1.0'?>`, `<?xml version='1.0' foo='bar'?>`, `<?xml encoding='UTF-8' version='1.0'?>`, `<?xml version='2.0'?>`, `<?xml version='1.0' standalone='maybe'?>`, `<?xml version='1.0"?>`, `<?xml version='1.0'encoding='UTF-8'?>`]) {
    t.equal(err(decl + HEADER), 'not-well-formed', `refused: ${decl}`);
  }
  t.equal(err(HEADER.replace('>', '/>')), 'not-well-formed', 'empty stream');
});

t.test('reset(true) parses the bytes after the current element as a new stream', async (t) => {
  const ev: string[] = [];
  const tk: Tokenizer = new Tokenizer(
    {
      onStreamStart: () => ev.push('start'),
      onElement: (s) => {
        ev.push(s.name);
        if (s.name === 'success') tk.reset(true);
      },
      onStreamEnd: () => ev.push('end'),
    },
    { maxSize: 4096, maxDepth: 8 },
  );
  tk.write(HEADER + "<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>" + HEADER + '<presence/>');
  t.same(ev, ['start', 'success', 'start', 'presence']);
});

t.test('partial: an unfinished header or top-level element is held, whitespace between them is not', async (t) => {
  const tk = new Tokenizer({ onStreamStart: () => undefined, onElement: () => undefined, onStreamEnd: () => undefined }, { maxSize: 4096, maxDepth: 8 });
  t.notOk(tk.partial, 'nothing yet');
  const steps: Array<[string, boolean, string]> = [
    ["<?xml version='1.0'?>", false, 'the XML declaration'],
    [HEADER.slice(0, 20), true, 'half a header'],
    [HEADER.slice(20), false, 'the header completed'],
    ['\n  ', false, 'whitespace'],
    ['<', true, 'a lone <'],
    ["message><body>hi</bo", true, 'half a stanza'],
    ['dy></message> ', false, 'the stanza completed'],
    ['<presence/><iq', true, 'an element, then the start of the next'],
  ];
  for (const [bytes, partial, what] of steps) {
    tk.write(bytes);
    t.equal(tk.partial, partial, what);
  }
});

/** Feed `body` after the header a byte at a time; the elements and how often the buffer was scanned. */
function trickle(body: string, limits = { maxSize: 1 << 20, maxDepth: 16 }): { raws: string[]; scans: number } {
  const raws: string[] = [];
  const tk = new Tokenizer({ onStreamStart: () => undefined, onElement: (s) => raws.push(s.raw), onStreamEnd: () => undefined }, limits);
  tk.write(HEADER, true);
  const before = tk.scans;
  for (let i = 0; i < body.length; i++) tk.write(body[i]!, true);
  return { raws, scans: tk.scans - before };
}

t.test('a construct trickled in byte by byte is read once it can end, not once per byte', async (t) => {
  // what a peer could do to make every byte cost a read of all it sent before (each case 4-20 KB)
  const gtInValues = `<message to='romeo@montague.lit' ${Array.from({ length: 400 }, (_, i) => `a${i}='>x>"'`).join(' ')}><body>hi</body></message>`;
  const quotesInValues = `<message to="a'b" ${Array.from({ length: 400 }, (_, i) => `b${i}="'>'"`).join(' ')}/>`;
  const longEndTag = `<message><body>hi</body></message${' '.repeat(8000)}>`;
  const cdata = `<message><body><![CDATA[${'>]]x]>'.repeat(2000)}]]></body></message>`;
  const text = `<message><body>${'>x'.repeat(4000)}</body></message>`;
  for (const [name, body] of [['a start tag with a > in each value', gtInValues], ['quotes of the other kind inside values', quotesInValues], ['an end tag padded with whitespace', longEndTag], ['CDATA with > and ] all through', cdata], ['text with > all through', text]] as const) {
    const whole = tokenize(HEADER + body, Infinity, { maxSize: 1 << 20, maxDepth: 16 }).elements.map((s) => s.raw);
    const { raws, scans } = trickle(body);
    t.same(raws, whole, `${name}: the same element as in one chunk`);
    t.equal(raws.length, 1, `${name}: one element`);
    // a scan per tag or text run that ends (a handful), not per byte (thousands)
    t.ok(scans < 40, `${name}: ${scans} scans for ${body.length} bytes`);
  }
  // the XML declaration, before the header, with a '>' in every byte
  {
    const tk = new Tokenizer({ onStreamStart: () => undefined, onElement: () => undefined, onStreamEnd: () => undefined }, { maxSize: 1 << 20, maxDepth: 16 });
    const decl = `<?xml version='1.0' ${'>'.repeat(4000)}?>`;
    let condition: string | undefined;
    try {
      for (const ch of decl + HEADER) tk.write(ch, true);
    } catch (err) {
      condition = (err as StreamError).condition;
    }
    t.equal(condition, 'not-well-formed', 'refused once it ends (a declaration has no room for them)');
    t.ok(tk.scans < 40, `the XML declaration with a > in every byte: ${tk.scans} scans for ${decl.length} bytes`);
  }
  // ']]>' split across chunks in every way still ends the CDATA section
  for (const cut of [1, 2, 3, 4]) {
    for (const cdataEl of [`<message><body><![CDATA[a]]]]></body></message>`, `<message><body><![CDATA[]]><![CDATA[]]]>x</body></message>`]) {
      const tk = tokenize(HEADER + cdataEl, cut);
      t.equal(tk.elements.length, 1, `CDATA end split every ${cut} bytes`);
      t.equal(tk.elements[0]!.raw, cdataEl);
    }
  }
  // errors inside a trickled tag are still found (once the tag can end), and limits still hold
  t.equal(conditionOf(HEADER + `<message a='>' b c='>'/>`, 1), 'not-well-formed', 'an attribute without a value, trickled');
  t.equal(conditionOf(HEADER + `<message a='>' 'b'/>`, 1), 'not-well-formed', 'a quote outside a value, trickled');
  t.equal(conditionOf(HEADER + `<message a='${'>'.repeat(5000)}`, 1), 'policy-violation', "an open value of '>' over the limit");
  t.equal(conditionOf(HEADER + `<message><![CDATA[${']>'.repeat(3000)}`, 1), 'policy-violation', 'unfinished CDATA over the limit');
  t.equal(conditionOf(HEADER + `<message></message${' '.repeat(5000)}`, 1), 'policy-violation', 'an unfinished end tag over the limit');
  t.equal(conditionOf(HEADER + `<message></mess age>`, 1), 'not-well-formed', 'a bad end tag, trickled');
  t.equal(conditionOf(`<?xml version='1.0' encoding='latin1'?>` + HEADER, 1), 'unsupported-encoding', 'the XML declaration, trickled');
  t.equal(conditionOf(`<?xmlfoo?>`, 1), 'restricted-xml', 'a processing instruction, trickled');
});

t.test('end tags: the open name, whitespace, then > (read in one pass), in every chunking', async (t) => {
  const good = `<message to='a@b'><body>x</body ><x:y xmlns:x='urn:x'/><thread>t</thread\t\r\n></message>`;
  for (const chunk of [1, 2, 3, 7, Infinity]) {
    const ev = tokenize(HEADER + good + '</stream:stream>', chunk);
    t.equal(ev.elements.length, 1, `one element, chunks of ${chunk}`);
    t.equal(ev.elements[0]!.raw, good, `its exact bytes, chunks of ${chunk}`);
    t.ok(ev.ended, `the stream's end, chunks of ${chunk}`);
  }
  const bad: Array<[string, string]> = [
    ['<message><body>x</bodyx></message>', 'a longer name'],
    ['<message><body>x</bod></message>', 'a shorter name'],
    ['<message><body>x</body x></message>', 'something after the whitespace'],
    ['<message><body>x</ body></message>', 'whitespace before the name'],
    ['<message><body>x</BODY></message>', 'another case'],
    ['<message><body>x</message></body>', 'the wrong order'],
  ];
  for (const [body, what] of bad) {
    for (const chunk of [1, Infinity]) t.equal(conditionOf(HEADER + body, chunk), 'not-well-formed', `${what}, chunks of ${chunk}`);
  }
});
