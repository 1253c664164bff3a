#!/usr/bin/python3
"""One-to-one chat, offline messages and carbons with slixmpp's own plugins (Debian python3-slixmpp
1.8: xep_0280 carbons, xep_0203 delays), for the proxy tests (test/python-chat.test.ts).

Usage: slixmpp_chat.py SCENARIO HOST PORT --jid ROLE=JID [--jid ROLE=JID ...] --password PASSWORD
                       [--ca FILE] [--timeout SECONDS] [--step-timeout SECONDS] [--debug]

The clients are slixmpp_roster.Client (get_roster, then presence) with xep_0280 and xep_0203.

Scenarios (ROLEs in brackets):
  enrol     [any]        log each JID in once, so that its nodes exist
  carbons   [A, A2, B]   A and A2 (two resources of one user) enable carbons with xep_0280; A sends B
                         (bare JID) a chat message: B gets it, A2 gets a sent carbon; B answers A's
                         full JID: A gets it, A2 a received carbon
  offline   [A, C]       C is offline; A sends C two chat messages; C logs in and gets both, in order,
                         with a XEP-0203 delay

Output: JSON lines, as slixmpp_roster.py, plus
  {"event": "message", "client": "B", "from": ..., "to": ..., "type": ..., "body": ..., "id": ..., "delay": stamp or null}
  {"event": "carbon_sent" | "carbon_received", "client": "A2", "from": ..., "to": ..., "body": ...}
"""
import asyncio

from common import run_scenarios
from slixmpp_roster import Client as RosterClient


class Client(RosterClient):
    def __init__(self, *args, **kw):
        super().__init__(*args, **kw)
        self.register_plugin('xep_0030')
        self.register_plugin('xep_0203')
        self.register_plugin('xep_0280')
        self.add_event_handler('message', self.on_message)
        self.add_event_handler('carbon_sent', lambda m: self.on_carbon('carbon_sent', m['carbon_sent']))
        self.add_event_handler('carbon_received', lambda m: self.on_carbon('carbon_received', m['carbon_received']))

    def on_message(self, m):
        if m['type'] == 'error' or not m['body']:
            return
        stamp = m['delay']['stamp'] if m.xml.find('{urn:xmpp:delay}delay') is not None else None
        self.note('message', **{'from': str(m['from'])}, to=str(m['to']), type=m['type'], body=m['body'], id=m['id'] or None,
                  delay=stamp.isoformat() if stamp else None)

    def on_carbon(self, kind, inner):
        self.note(kind, **{'from': str(inner['from'])}, to=str(inner['to']), body=inner['body'])


async def enrol(clients, _jids):
    for c in clients.values():
        await c.start()
        await c.stop()


async def carbons(clients, jids):
    a, a2, b = clients['A'], clients['A2'], clients['B']
    for c in (a, a2, b):
        await c.start()
    for c in (a, a2):
        await c.plugin['xep_0280'].enable(timeout=c.args.step_timeout)
        c.note('iq', what='carbons enable', type='result')
    a.send_message(mto=jids['B'], mbody='Wherefore art thou?', mtype='chat')
    await b.wait_event('message', 'the message', body='Wherefore art thou?')
    await a2.wait_event('carbon_sent', 'the sent carbon', body='Wherefore art thou?')
    b.send_message(mto=str(a.boundjid), mbody='Deny thy father', mtype='chat')
    await a.wait_event('message', 'the answer', body='Deny thy father')
    await a2.wait_event('carbon_received', 'the received carbon', body='Deny thy father')
    await asyncio.sleep(0.5)  # anything else that would arrive


async def offline(clients, jids):
    a, c = clients['A'], clients['C']
    await a.start()
    for n in (1, 2):
        a.send_message(mto=jids['C'], mbody=f'offline {n}', mtype='chat')
    await asyncio.sleep(1)
    await c.start()
    await c.wait_event('message', 'the second message', body='offline 2')
    await asyncio.sleep(0.5)


SCENARIOS = {
    'enrol': (enrol, {}),
    'carbons': (carbons, {}),
    'offline': (offline, {}),
}


RESOURCES = {'A': 'balcony', 'A2': 'garden', 'B': 'orchard', 'C': 'chamber'}


def main():
    run_scenarios(__doc__.split('\n')[0], SCENARIOS, 'slixmpp',
                  lambda role, jid, args, options: Client(role, f'{jid}/{RESOURCES.get(role, "test")}', args.password, args, **options))


if __name__ == '__main__':
    main()
