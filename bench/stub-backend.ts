// A stub XMPP backend: stream header + features (SASL PLAIN only, no STARTTLS), any PLAIN credentials
// succeed, restart, bind (the requested resource), and then:
// - it answers every iq get/set it receives with an empty result (the proxy's own requests at login:
//   the rules' onBound hooks must not wait for time-outs), and otherwise stays silent;
// - as the sink of the synthetic benchmark, once the client's start marker has come through it stops
//   answering and only counts bytes and the pass markers (see MARK) the benchmark client sends after
//   each pass of the corpus. It parses nothing then: it costs next to nothing per byte.
//
// In-process: startStub(). As its own process: node dist/bench/stub-backend.js (reports its port over IPC).
import net from 'node:net';
import { fileURLToPath } from 'node:url';
import { NS_BIND, NS_SASL, serveParent } from './common.js';

const NS_STREAM = 'http://etherx.jabber.org/streams';

/** The benchmark client's marker stanzas: `<message to='sink@capulet.lit' id='bench-mark-N'/>` */
export const MARK = 'bench-mark-';
export function marker(n: number): string {
  return `<message to='sink@capulet.lit' id='${MARK}${n}'/>`;
}

export interface Stub {
  port: number;
  /** bytes received from bound connections since their start marker */
  sinkBytes(): number;
  /** resolves once marker n (n >= 1) came through on a sink connection */
  waitMark(n: number, timeoutMs?: number): Promise<void>;
  connections(): number;
  close(): Promise<void>;
}

function header(id: number): string {
  return `<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='${NS_STREAM}' id='stub${id}' from='capulet.lit' version='1.0' xml:lang='en'>`;
}

const IQ_REQUEST = /<iq\b[^>]*>/g;

function attr(tag: string, name: string): string | undefined {
  return new RegExp(`\\s${name}=(?:'([^']*)'|"([^"]*)")`).exec(tag)?.slice(1).find((v) => v !== undefined);
}

export function startStub(): Promise<Stub> {
  let sunk = 0;
  let lastMark = 0;
  let conns = 0;
  let nextId = 0;
  const waiters: Array<{ n: number; resolve(): void }> = [];
  const sockets = new Set<net.Socket>();
  const marked = (n: number) => {
    if (n <= lastMark) return;
    lastMark = n;
    for (let i = waiters.length - 1; i >= 0; i--) {
      if (waiters[i]!.n <= n) waiters.splice(i, 1)[0]!.resolve();
    }
  };
  const server = net.createServer({ noDelay: true }, (socket) => {
    const id = ++nextId;
    conns++;
    sockets.add(socket);
    let state = 0; // 0: header, 1: auth, 2: header again, 3: bind, 4: bound, 5: sink
    let data = '';
    let tail = '';
    let user = 'user';
    let jid = '';
    socket.on('error', () => undefined);
    socket.on('close', () => {
      conns--;
      sockets.delete(socket);
    });
    /** bound: answer iq requests; switch to sink mode at the first marker */
    const bound = (text: string) => {
      const m = text.indexOf(MARK);
      if (m !== -1) {
        state = 5;
        sink(text.slice(text.lastIndexOf('<', m)));
        return;
      }
      data += text;
      let out = '';
      IQ_REQUEST.lastIndex = 0;
      let keep = 0;
      for (let r = IQ_REQUEST.exec(data); r; r = IQ_REQUEST.exec(data)) {
        const tag = r[0];
        const type = attr(tag, 'type');
        if (type === 'get' || type === 'set') {
          const to = attr(tag, 'to');
          out += `<iq type='result' id='${attr(tag, 'id') ?? ''}'${to ? ` from='${to}'` : ''} to='${jid}'/>`;
        }
        keep = r.index + tag.length;
      }
      data = data.slice(Math.max(keep, data.length - 4096)); // an unfinished tag may continue
      if (out) socket.write(out);
    };
    const sink = (text: string) => {
      sunk += text.length;
      const s = tail + text;
      let best = 0;
      for (let i = s.indexOf(MARK); i !== -1; i = s.indexOf(MARK, i + MARK.length)) {
        const n = parseInt(s.slice(i + MARK.length, i + MARK.length + 12), 10);
        if (n > best) best = n;
      }
      tail = s.slice(-(MARK.length + 12));
      if (best > 0) marked(best);
    };
    socket.on('data', (chunk: Buffer) => {
      const text = chunk.toString('latin1');
      if (state === 5) return sink(text);
      if (state === 4) return bound(text);
      data += text;
      for (;;) {
        if (state === 0 || state === 2) {
          const m = /<stream:stream[^>]*>/.exec(data);
          if (!m) return;
          data = data.slice(m.index + m[0].length);
          const features =
            state === 0
              ? `<stream:features><mechanisms xmlns='${NS_SASL}'><mechanism>PLAIN</mechanism></mechanisms></stream:features>`
              : `<stream:features><bind xmlns='${NS_BIND}'/></stream:features>`;
          socket.write(header(id) + features);
          state++;
        } else if (state === 1) {
          const m = /<auth[^>]*>([^<]*)<\/auth>/.exec(data);
          if (!m) return;
          data = data.slice(m.index + m[0].length);
          user = Buffer.from(m[1]!, 'base64').toString('utf8').split('\0')[1] || 'user';
          socket.write(`<success xmlns='${NS_SASL}'/>`);
          state = 2;
        } else if (state === 3) {
          const m = /<iq[^>]*id=['"]([^'"]*)['"][^>]*>([\s\S]*?)<\/iq>/.exec(data);
          if (!m) return;
          data = data.slice(m.index + m[0].length);
          const res = /<resource>([^<]*)<\/resource>/.exec(m[2]!)?.[1] ?? `r${id}`;
          jid = `${user}@capulet.lit/${res}`;
          socket.write(`<iq type='result' id='${m[1]}'><bind xmlns='${NS_BIND}'><jid>${jid}</jid></bind></iq>`);
          state = 4;
          const rest = data;
          data = '';
          if (rest) bound(rest);
          return;
        } else {
          return;
        }
      }
    });
  });
  return new Promise((resolve) => {
    server.listen({ host: '127.0.0.1', port: 0, backlog: 4096 }, () => {
      resolve({
        port: (server.address() as net.AddressInfo).port,
        sinkBytes: () => sunk,
        connections: () => conns,
        waitMark: (n, timeoutMs = 120_000) =>
          new Promise<void>((res, rej) => {
            if (lastMark >= n) return res();
            const timer = setTimeout(() => rej(new Error(`stub: marker ${n} not seen after ${timeoutMs} ms (last ${lastMark}, ${sunk} bytes)`)), timeoutMs);
            waiters.push({
              n,
              resolve: () => {
                clearTimeout(timer);
                res();
              },
            });
          }),
        close: () =>
          new Promise<void>((res) => {
            for (const s of sockets) s.destroy();
            server.close(() => res());
          }),
      });
    });
  });
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const stub = await startStub();
  serveParent({}, () => stub.connections());
  process.send!({ type: 'ready', port: stub.port });
}
