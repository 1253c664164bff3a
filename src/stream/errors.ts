// RFC 6120 §4.9.3 stream error conditions, and the error type the stream layer throws.
// A StreamError ends one stream (the session sends it to that peer, then closes);
// it never escapes to the process: the session catches it where the bytes came in.

export const NS_STREAMS = 'urn:ietf:params:xml:ns:xmpp-streams';

export type StreamErrorCondition =
  | 'bad-format'
  | 'bad-namespace-prefix'
  | 'conflict'
  | 'connection-timeout'
  | 'host-gone'
  | 'host-unknown'
  | 'improper-addressing'
  | 'internal-server-error'
  | 'invalid-from'
  | 'invalid-namespace'
  | 'invalid-xml'
  | 'not-authorized'
  | 'not-well-formed'
  | 'policy-violation'
  | 'remote-connection-failed'
  | 'reset'
  | 'resource-constraint'
  | 'restricted-xml'
  | 'see-other-host'
  | 'system-shutdown'
  | 'undefined-condition'
  | 'unsupported-encoding'
  | 'unsupported-feature'
  | 'unsupported-stanza-type'
  | 'unsupported-version';

const CONDITIONS = new Set<string>([
  'bad-format', 'bad-namespace-prefix', 'conflict', 'connection-timeout', 'host-gone', 'host-unknown',
  'improper-addressing', 'internal-server-error', 'invalid-from', 'invalid-namespace', 'invalid-xml',
  'not-authorized', 'not-well-formed', 'policy-violation', 'remote-connection-failed', 'reset',
  'resource-constraint', 'restricted-xml', 'see-other-host', 'system-shutdown', 'undefined-condition',
  'unsupported-encoding', 'unsupported-feature', 'unsupported-stanza-type', 'unsupported-version',
]);

export function isStreamErrorCondition(name: string): name is StreamErrorCondition {
  return CONDITIONS.has(name);
}

export class StreamError extends Error {
  constructor(
    readonly condition: StreamErrorCondition,
    readonly text?: string,
  ) {
    super(text ? `${condition}: ${text}` : condition);
    this.name = 'StreamError';
  }
}
