// @xmpp/jid ships no type declarations; this covers what the proxy uses.
declare module '@xmpp/jid' {
  namespace jid {
    class JID {
      constructor(local: string | undefined | null, domain: string, resource?: string | null);
      local: string;
      domain: string;
      resource: string;
      bare(): JID;
      equals(other: JID): boolean;
      toString(unescape?: boolean): string;
      getLocal(unescape?: boolean): string;
      getDomain(): string;
      getResource(): string;
    }
    function parse(s: string): JID;
    function equal(a: JID, b: JID): boolean;
  }
  interface JidFactory {
    (s: string): jid.JID;
    (local: string | undefined, domain: string, resource?: string): jid.JID;
    JID: typeof jid.JID;
    jid: JidFactory;
    parse: typeof jid.parse;
    equal: typeof jid.equal;
  }
  const jid: JidFactory & { JID: typeof jid.JID };
  export default jid;
}
