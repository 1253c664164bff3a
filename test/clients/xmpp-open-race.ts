// Work-around for a race in @xmpp/connection 0.14 (the stream layer of @xmpp/client), not in the proxy.
//
// Connection.open() does `await this.write(header)` and only then starts listening for the peer's
// stream header (`promise(this, "open", "error", timeout)`). With TLS 1.3 the socket's write callback
// can come after the peer's answer has already been read (see xmppjs/xmpp.js#889), and an
// in-process proxy answers a stream header immediately. The "open" event is then emitted with no
// listener, the stream negotiation itself carries on (features, <auth/>, challenges are handled
// by other listeners), and 2 s later open() rejects with TimeoutError, failing client.start().
// Observed here on the restart after STARTTLS to the proxy: the client's "open" status came before its
// header write completed; 1 login in 20-80 failed that way, more often while the CPU is busy.
//
// fixXmppOpenRace() patches the prototype that owns open() so the listener is in place before the
// header is written. Everything else about the library stays as shipped.
import { client } from '@xmpp/client';

let patched = false;

interface Emitter {
  once(event: string, fn: (...args: unknown[]) => void): void;
  off(event: string, fn: (...args: unknown[]) => void): void;
}

class OpenTimeoutError extends Error {
  constructor() {
    super('timed out waiting for the stream header');
    this.name = 'TimeoutError';
  }
}

function waitEvent(target: Emitter, event: string, rejectEvent: string, timeout: number | undefined): { promise: Promise<unknown>; cancel(): void } {
  let cancel = () => undefined as void;
  const promise = new Promise<unknown>((resolve, reject) => {
    let timer: NodeJS.Timeout | undefined;
    const cleanup = () => {
      clearTimeout(timer);
      target.off(event, onEvent);
      target.off(rejectEvent, onError);
    };
    const onEvent = (value: unknown) => {
      cleanup();
      resolve(value);
    };
    const onError = (reason: unknown) => {
      cleanup();
      reject(reason);
    };
    target.once(event, onEvent);
    target.once(rejectEvent, onError);
    if (timeout) timer = setTimeout(() => onError(new OpenTimeoutError()), timeout);
    cancel = cleanup;
  });
  return { promise, cancel };
}

export function fixXmppOpenRace(): void {
  if (patched) return;
  const probe = client({ service: 'xmpp://127.0.0.1:9', domain: 'localhost' });
  let proto = Object.getPrototypeOf(probe) as Record<string, unknown> | null;
  while (proto && !Object.hasOwn(proto, 'open')) proto = Object.getPrototypeOf(proto) as Record<string, unknown> | null;
  if (!proto) throw new Error('@xmpp/connection changed: no open() on the prototype chain');
  // the library's own code, with the two statements in the other order
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  proto.open = async function open(this: any, options: { domain: string; lang?: string }): Promise<unknown> {
    this._status('opening');
    const { domain, lang } = options;
    const headerElement = this.headerElement();
    headerElement.attrs.to = domain;
    headerElement.attrs['xml:lang'] = lang;
    this.root = headerElement;
    this._attachParser(new this.Parser());
    const opened = waitEvent(this as Emitter, 'open', 'error', this.timeout as number | undefined);
    try {
      await this.write(this.header(headerElement));
    } catch (err) {
      opened.cancel();
      throw err;
    }
    return opened.promise;
  };
  patched = true;
}
