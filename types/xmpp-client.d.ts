// @xmpp/client ships no type declarations; the tests use it loosely typed.
declare module '@xmpp/client' {
  import type { Element } from 'ltx';
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  export function client(options: Record<string, unknown>): any;
  export function xml(name: string, attrs?: Record<string, unknown> | null, ...children: Array<Element | string>): Element;
  export function jid(s: string): { toString(): string; bare(): { toString(): string }; resource: string; local: string; domain: string };
}
