#!/usr/bin/python3
"""A real slixmpp client (Debian python3-slixmpp) for the proxy tests.

Usage: slixmpp_client.py HOST PORT JID PASSWORD [MECHANISM] [--no-channel-binding] [--ca FILE]
                         [--no-tls] [--timeout SECONDS]

Connects to HOST:PORT (STARTTLS required unless --no-tls, the server certificate verified with the
test CA for the JID's domain), logs in (only MECHANISM if given, e.g. SCRAM-SHA-256), then asks the
server domain for disco#info and pings it (XEP-0199). Prints one JSON object per line:
  {"event": "tls", "version": "TLSv1.3", "cb": true}           TLS to the server and whether the
                                                                 socket has tls-unique channel binding data
  {"event": "sasl", "mechanism": "SCRAM-SHA-1", "gs2": "y,,"}  the mechanism and SCRAM gs2 header sent
  {"event": "login", "ok": true, "jid": "juliet@capulet.lit/x"}
  {"event": "login", "ok": false, "condition": "not-authorized", "text": "..."}
  {"event": "disco", "type": "result", "features": [...], "identities": [[category, type, name], ...]}
  {"event": "ping", "type": "result"}                           (or "error" with "condition")
  {"event": "done"}
Exit status 0 when everything above succeeded, 1 otherwise.

--no-channel-binding hides the TLS channel binding data from slixmpp's SCRAM, so that it sends the
gs2 flag "n" (client does not support channel binding) instead of "y" (client supports it but
thinks the server does not), which a server offering *-PLUS on its own TLS link would take for a
downgrade attack.
"""
import argparse
import asyncio
import logging
import ssl
import sys

import slixmpp
from slixmpp.exceptions import IqError, IqTimeout

from common import DEFAULT_CA, emit


class Client(slixmpp.ClientXMPP):
    def __init__(self, args):
        pconfig = {}
        if args.mechanism:
            pconfig['feature_mechanisms'] = {'use_mech': args.mechanism}
        super().__init__(args.jid, args.password, plugin_config=pconfig)
        self.args = args
        self.ok = False
        self.finished = asyncio.get_event_loop().create_future()
        self.ca_certs = args.ca
        self.register_plugin('xep_0030')
        self.register_plugin('xep_0199')
        mechs = self['feature_mechanisms']
        default_creds = mechs.sasl_callback

        def creds(required, optional):
            result = default_creds(required, optional)
            if 'channel_binding' in result and args.no_channel_binding:
                result['channel_binding'] = None
            return result

        mechs.sasl_callback = creds
        # report what the SCRAM mechanism actually sent
        orig_send_auth = mechs._send_auth

        def send_auth():
            self.report_tls()
            before = mechs.mech
            r = orig_send_auth()
            mech = mechs.mech
            if mech is not None and mech is not before:
                gs2 = getattr(mech, 'gs2_header', None)
                emit(event='sasl', mechanism=mech.name, **({'gs2': gs2.decode()} if gs2 else {}))
            return r

        mechs._send_auth = send_auth
        self.add_event_handler('session_start', self.on_session_start)
        self.add_event_handler('failed_auth', self.on_failed_auth)
        self.add_event_handler('failed_all_auth', lambda _e=None: self.finish(False))
        self.add_event_handler('connection_failed', self.on_connection_failed)
        self.add_event_handler('disconnected', self.on_disconnected)
        self.add_event_handler('stream_error', self.on_stream_error)

    tls_reported = False

    def report_tls(self):
        """Once, before SASL: the TLS version to the server and whether channel binding data exists."""
        if self.tls_reported:
            return
        self.tls_reported = True
        sock = self.socket
        if not isinstance(sock, (ssl.SSLObject, ssl.SSLSocket)):
            emit(event='tls', version=None, cb=False)
            return
        try:
            cb = sock.get_channel_binding() is not None
        except Exception:  # noqa: BLE001
            cb = False
        emit(event='tls', version=sock.version(), cb=cb)

    def on_failed_auth(self, failure=None):
        cond = None
        text = None
        if failure is not None:
            cond = failure['condition']
            text = failure['text'] or None
        emit(event='login', ok=False, condition=cond, **({'text': text} if text else {}))

    def on_connection_failed(self, err=None):
        emit(event='connection_failed', error=str(err))
        self.finish(False)

    def on_stream_error(self, err=None):
        emit(event='stream_error', condition=err['condition'] if err is not None else None,
             text=(err['text'] if err is not None else None) or None)

    def on_disconnected(self, reason=None):
        if not self.finished.done():
            emit(event='disconnected', reason=str(reason) if reason else None)
            self.finish(False)

    def finish(self, ok):
        if not self.finished.done():
            self.finished.set_result(ok)

    async def on_session_start(self, _event=None):
        emit(event='login', ok=True, jid=str(self.boundjid))
        domain = self.boundjid.domain
        ok = True
        try:
            info = await self['xep_0030'].get_info(jid=domain, local=False, cached=False, timeout=10)
            q = info['disco_info']
            emit(event='disco', type=info['type'], features=sorted(q['features']),
                 identities=[list(i)[:3] for i in q['identities']])
        except IqError as e:
            ok = False
            emit(event='disco', type='error', condition=e.iq['error']['condition'])
        except IqTimeout:
            ok = False
            emit(event='disco', type='timeout')
        try:
            iq = self.Iq()
            iq['type'] = 'get'
            iq['to'] = domain
            iq.enable('ping')
            res = await iq.send(timeout=10)
            emit(event='ping', type=res['type'], **({'from': str(res['from'])} if res['from'] else {}))
        except IqError as e:
            ok = False
            emit(event='ping', type='error', condition=e.iq['error']['condition'])
        except IqTimeout:
            ok = False
            emit(event='ping', type='timeout')
        self.finish(ok)


def main():
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('host')
    p.add_argument('port', type=int)
    p.add_argument('jid')
    p.add_argument('password')
    p.add_argument('mechanism', nargs='?', default=None)
    p.add_argument('--no-channel-binding', action='store_true')
    p.add_argument('--ca', default=DEFAULT_CA)
    p.add_argument('--no-tls', action='store_true', help='never use STARTTLS')
    p.add_argument('--timeout', type=float, default=30)
    p.add_argument('--debug', action='store_true', help='slixmpp debug log on stderr')
    args = p.parse_args()
    logging.basicConfig(level=logging.DEBUG if args.debug else logging.CRITICAL, stream=sys.stderr)

    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    xmpp = Client(args)
    xmpp.ssl_context = ssl.create_default_context(cafile=args.ca)
    if args.no_tls:
        xmpp.connect((args.host, args.port), force_starttls=False, disable_starttls=True)
    else:
        xmpp.connect((args.host, args.port), force_starttls=True)
    try:
        ok = loop.run_until_complete(asyncio.wait_for(xmpp.finished, args.timeout))
    except asyncio.TimeoutError:
        emit(event='timeout')
        ok = False
    xmpp.disconnect(wait=2)
    try:
        loop.run_until_complete(asyncio.wait_for(xmpp.disconnected, 3))
    except (asyncio.TimeoutError, asyncio.CancelledError):
        pass
    emit(event='done', ok=bool(ok))
    sys.exit(0 if ok else 1)


if __name__ == '__main__':
    main()
