// Unpredictable tokens (stream ids, the trackers' id prefixes, item ids) from one pool of random
// bytes: a crypto.randomBytes call per token was 2.5% of the proxy's CPU in logins (bench (e)),
// most of it the call itself, not the bytes.
import { randomFillSync } from 'node:crypto';

const pool = Buffer.allocUnsafe(4096);
let at = pool.length;

/** `bytes` random bytes as base64url (from the kernel's CSPRNG, like randomBytes). */
export function randomToken(bytes: number): string {
  if (at + bytes > pool.length) {
    randomFillSync(pool);
    at = 0;
  }
  const token = pool.toString('base64url', at, at + bytes);
  at += bytes;
  return token;
}
