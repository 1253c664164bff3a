// The certificate and key the proxy offers clients (--tls-cert, --tls-key), as a TLS context that
// can be re-read from the files (SIGHUP): connections that start TLS after a reload get the new one,
// those already encrypted keep theirs. A reload that fails (a missing file, a key that does not
// match) keeps the old context, so a half-copied renewal never takes the listener down.
import tls from 'node:tls';
import { readFileSync } from 'node:fs';

export class TlsCredentials {
  private current: tls.SecureContext;
  /** called after each successful reload (a direct-TLS listener updates its server with it) */
  private readonly listeners: Array<(ctx: tls.SecureContext) => void> = [];

  constructor(
    readonly certFile: string,
    readonly keyFile: string,
  ) {
    this.current = this.load();
  }

  get context(): tls.SecureContext {
    return this.current;
  }

  onReload(f: (ctx: tls.SecureContext) => void): void {
    this.listeners.push(f);
  }

  /** Read both files again; throws (and keeps the old context) if they do not make a context. */
  reload(): void {
    this.current = this.load();
    for (const f of this.listeners) f(this.current);
  }

  private load(): tls.SecureContext {
    return tls.createSecureContext({ cert: readFileSync(this.certFile), key: readFileSync(this.keyFile) });
  }
}
