// The relay path in memory, for counting instructions (docs/bench.md, "Sixth round"): one chat
// message per chunk in each direction, as bench (e)'s relay phase sends them, through what a bound
// session runs (TcpFraming's checks, the tokenizer, XmlStream, both rule lanes with the default
// rules, the batched write), minus the sockets. Wall-clock time on a VM with host steal moves by
// more than the changes it should show; instructions much less in the round this was written for
// (runs of one build agreed within 2-10%), but not always: on 2026-12-03 four runs of one build gave
// 9.9k-17.6k per crossing (what V8 optimizes, and when, varies between runs; docs/bench.md, twelfth
// round). Compare builds with several interleaved runs of each, not one:
//
//   for K in 20 60; do K=$K valgrind --tool=callgrind --smc-check=all-non-file \
//     --callgrind-out-file=/dev/null node dist/bench/relay-count.js 2>&1 | grep refs; done
//
// (the difference divided by 40 x 2 x RELAY_COUNT_MESSAGES is the count per crossing, the JIT's
// warm-up left out). Without valgrind it prints the CPU time per crossing of its last iterations.
import { fileURLToPath } from 'node:url';
import type { Socket } from 'node:net';
import { XmlStream, type StreamEvents } from '../src/stream/connection.js';
import { TcpFraming } from '../src/stream/framing-tcp.js';
import type { Stanza } from '../src/stream/stanza.js';
import { Lane, laneRoutes, type Direction, type LaneHost } from '../src/session/pipeline.js';
import { defaultRules } from '../src/rules/index.js';
import { STREAM_HEADER } from './corpus.js';
import { FakeSocket, LIMITS, boundContext } from './parsers.js';
import { cpuSeconds, envNumber } from './common.js';

const JID = 'r0@capulet.lit/bench';

/** What bench (e)'s load generator sends, and what ejabberd routes back for it. */
function messages(n: number): { client: Buffer[]; backend: Buffer[] } {
  const client: Buffer[] = [];
  const backend: Buffer[] = [];
  for (let i = 0; i < n; i++) {
    const body = `<body>END${i}: but soft, what light through yonder window breaks?</body>`;
    client.push(Buffer.from(`<message to='${JID}' type='chat' id='b${i}'>${body}</message>`));
    backend.push(Buffer.from(`<message xml:lang='en' to='${JID}' from='${JID}' type='chat' id='b${i}' xmlns='jabber:client'>${body}</message>`));
  }
  return { client, backend };
}

/** Both legs of a bound session; returns a function that relays one message each way. */
function relayPath(): (client: Buffer, backend: Buffer) => void {
  const ctx = boundContext(JID);
  const noop = (): void => undefined;
  const legs: Record<Direction, XmlStream | undefined> = { client: undefined, backend: undefined };
  const host: LaneHost = {
    laneForward: (from, s) => legs[from === 'client' ? 'backend' : 'client']!.sendRaw(s.raw),
    laneFailed: (_from, _s, err) => {
      throw err;
    },
    laneBusy: noop,
  };
  const rules = defaultRules();
  const sockets = { client: new FakeSocket(), backend: new FakeSocket() };
  for (const from of ['client', 'backend'] as const) {
    const lane = new Lane(laneRoutes(rules, from), ctx, host);
    const events: StreamEvents = {
      onStreamStart: noop,
      onElement: (s: Stanza) => {
        if (s.isStanza) lane.push(s);
      },
      onStreamEnd: noop,
      onViolation: (err) => {
        throw err;
      },
      onClose: noop,
    };
    legs[from] = new XmlStream(new TcpFraming(sockets[from] as unknown as Socket, LIMITS), events);
    sockets[from].emit('data', Buffer.from(STREAM_HEADER, 'utf8'));
  }
  return (client, backend) => {
    sockets.client.emit('data', client);
    sockets.backend.emit('data', backend);
  };
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const n = envNumber('RELAY_COUNT_MESSAGES', 1000);
  const iterations = envNumber('K', 60);
  const { client, backend } = messages(n);
  const relay = relayPath();
  const measured = Math.max(1, Math.floor(iterations / 3));
  let last = process.cpuUsage();
  for (let k = 0; k < iterations; k++) {
    if (k === iterations - measured) last = process.cpuUsage();
    for (let i = 0; i < n; i++) relay(client[i]!, backend[i]!);
  }
  const perCrossing = (cpuSeconds(process.cpuUsage(last)) * 1e9) / (measured * n * 2);
  process.stdout.write(`${perCrossing.toFixed(0)} ns of CPU per crossing (last ${measured} of ${iterations} iterations)\n`);
}
