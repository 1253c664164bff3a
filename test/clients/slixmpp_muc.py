#!/usr/bin/python3
"""Group chat with slixmpp's own XEP-0045 plugin (Debian python3-slixmpp 1.8: xep_0045, xep_0203), for
the proxy tests (test/python-muc.test.ts).

Usage: slixmpp_muc.py SCENARIO HOST PORT --jid ROLE=JID [--jid ROLE=JID ...] --password PASSWORD
                      [--ca FILE] [--timeout SECONDS] [--step-timeout SECONDS] [--debug]

The clients are slixmpp_roster.Client (get_roster, then presence) with xep_0045 and xep_0203. Joins
go through xep_0045's join_muc_wait (own presence, then the subject; a presence error raises
PresenceError), the subject through set_subject, leaves through leave_muc, messages through
send_message(mtype='groupchat'); what the room sends is recorded from the plugin's events
muc::<room>::presence, muc::<room>::got_online / got_offline, groupchat_message, groupchat_subject.
(xep_0045 1.8's join_muc_wait prints each history message's delay on stdout: the test reads only
JSON lines, the rest goes to its stderr.)

Scenario "room" [A, B, C: three users; the room ROOM]:
  A joins (the room is new: 201) and sets a subject; B joins and sees A; A and B speak; C tries A's
  nick (a conflict through join_muc_wait's PresenceError), then joins as itself with history: A's
  and B's messages with delays, and the subject; A sets a new subject: all three get it; B speaks:
  all three get it from B's nick; C leaves: A and B see it go, C gets its own unavailable.

Output: JSON lines as slixmpp_roster.py, plus (nick = the occupant's nick in the room)
  {"event": "muc_presence", "client": "A", "room": ..., "nick": ..., "type": ..., "codes": [110, ...],
   "affiliation": ..., "role": ..., "jid": real JID or null}        muc::<room>::presence
  {"event": "got_online" | "got_offline", "client": "A", "room": ..., "nick": ...}
  {"event": "groupchat", "client": "A", "room": ..., "nick": ..., "body": ..., "id": ...,
   "delay": stamp or null, "delay_from": ...}                        groupchat_message
  {"event": "subject", "client": "A", "room": ..., "nick": ..., "subject": ...}   groupchat_subject
  {"event": "joined", "client": "A", "room": ..., "nick": own nick, "codes": [...], "subject": ...,
   "occupants": [nicks], "history": [{"nick", "body", "delay", "delay_from"}]}    join_muc_wait's result
  {"event": "join_error", "client": "C", "room": ..., "nick": ..., "condition": ..., "type": ...}
      join_muc_wait raised PresenceError (type: the error's type), or "type": "timeout" if it never returned
  {"event": "error_presence", "client": "C", "from": ..., "id": ..., "condition": ..., "muc_x": bool}
      any presence error as slixmpp's presence_error event has it (muc_x: with the MUC <x/>)
  {"event": "sent_presence", "client": "C", "to": ..., "type": ..., "id": ...}   presence sent to a room
  {"event": "left", "client": "C", "room": ..., "nick": ..., "codes": [...]}
      an unavailable from a room xep_0045 has already forgotten (its own, after leave_muc)
"""
import asyncio

from slixmpp.exceptions import PresenceError
from slixmpp.xmlstream.handler import Callback
from slixmpp.xmlstream.matcher import StanzaPath

from common import run_scenarios
from slixmpp_roster import Client as RosterClient

ROOM = 'verona@conference.capulet.lit'
RESOURCES = {'A': 'balcony', 'B': 'orchard', 'C': 'chamber'}
NICKS = {'A': 'Juliet', 'B': 'Romeo', 'C': 'Nurse'}


def delay_of(m):
    if m.xml.find('{urn:xmpp:delay}delay') is None:
        return None, None
    return m['delay']['stamp'].isoformat(), str(m['delay']['from']) or None


class Client(RosterClient):
    def __init__(self, *args, **kw):
        super().__init__(*args, **kw)
        for p in ('xep_0030', 'xep_0045', 'xep_0203'):
            self.register_plugin(p)
        self.muc = self.plugin['xep_0045']
        self.add_event_handler('groupchat_message', self.on_groupchat)
        self.add_event_handler('groupchat_subject', self.on_subject)
        self.add_event_handler('presence_error', lambda p: self.note('error_presence', **{'from': str(p['from'])}, id=p['id'] or None,
                                                                     condition=p['error']['condition'],
                                                                     muc_x=p.xml.find('{http://jabber.org/protocol/muc}x') is not None))
        # what leaves for a room (xep_0045 builds the join presence itself): its id
        self.add_filter('out', self.on_out)
        # xep_0045 forgets a room at leave_muc, before the room's answer: the own unavailable is seen here
        self.register_handler(Callback('own room unavailable', StanzaPath('presence@type=unavailable/muc'), self.on_unavailable))
        self.watched = set()

    def on_out(self, stanza):
        if stanza.name == 'presence' and '@conference.' in str(stanza['to']):
            self.note('sent_presence', to=str(stanza['to']), type=stanza['type'], id=stanza['id'] or None)
        return stanza

    def on_unavailable(self, p):
        if p['from'].bare not in self.muc.rooms:
            self.note('left', room=p['from'].bare, nick=p['from'].resource, codes=sorted(p['muc']['status_codes']))

    def watch(self, room):
        """the per-room events of xep_0045 (once per room)"""
        if room in self.watched:
            return
        self.watched.add(room)
        self.add_event_handler(f'muc::{room}::presence', self.on_muc_presence)
        for name in ('got_online', 'got_offline'):
            self.add_event_handler(f'muc::{room}::{name}', lambda p, name=name: self.note(name, room=p['from'].bare, nick=p['from'].resource))

    def on_muc_presence(self, p):
        item = p['muc']
        self.note('muc_presence', room=p['from'].bare, nick=p['from'].resource, type=p['type'],
                  codes=sorted(item['status_codes']), affiliation=item['affiliation'] or None,
                  role=item['role'] or None, jid=str(item['jid']) or None)

    def on_groupchat(self, m):
        stamp, dfrom = delay_of(m)
        self.note('groupchat', room=m['from'].bare, nick=m['from'].resource, body=m['body'], id=m['id'] or None,
                  delay=stamp, delay_from=dfrom)

    def on_subject(self, m):
        self.note('subject', room=m['from'].bare, nick=m['from'].resource or None, subject=m['subject'])

    async def join(self, room, nick, timeout=None, **history):
        """join_muc_wait: raises PresenceError on a presence error"""
        self.watch(room)
        pres, subject, occupants, hist = await self.muc.join_muc_wait(room, nick, timeout=timeout or self.args.step_timeout, **history)
        self.note('joined', room=room, nick=pres['from'].resource, codes=sorted(pres['muc']['status_codes']),
                  subject=subject['subject'], occupants=sorted(p['from'].resource for p in occupants),
                  history=[dict(zip(('nick', 'body', 'delay', 'delay_from'), (m['from'].resource, m['body'], *delay_of(m)))) for m in hist])

    def say(self, room, body, mid):
        m = self.make_message(mto=room, mbody=body, mtype='groupchat')
        m['id'] = mid
        m.send()


async def room(clients, _jids):
    a, b, c = clients['A'], clients['B'], clients['C']
    for x in (a, b, c):
        await x.start()
    await a.join(ROOM, NICKS['A'], maxstanzas=20)
    a.muc.set_subject(ROOM, 'Verona')
    await a.wait_event('subject', 'own subject', subject='Verona')
    mb = b.mark()
    await b.join(ROOM, NICKS['B'], maxstanzas=20)
    await b.wait_event('got_online', "A's presence", since=mb, nick=NICKS['A'])
    await a.wait_event('got_online', "B's presence", nick=NICKS['B'])
    a.say(ROOM, 'My bounty is as boundless as the sea', 'a1')
    for x in (a, b):
        await x.wait_event('groupchat', "A's message", body='My bounty is as boundless as the sea')
    b.say(ROOM, 'Lady, by yonder blessed moon I swear', 'b1')
    for x in (a, b):
        await x.wait_event('groupchat', "B's message", body='Lady, by yonder blessed moon I swear')
    # C asks for A's nick: a presence error, through join_muc_wait
    try:
        await c.join(ROOM, NICKS['A'], timeout=5)
        c.note('joined_with_taken_nick', room=ROOM, nick=NICKS['A'])
    except PresenceError as e:
        c.note('join_error', room=ROOM, nick=NICKS['A'], condition=e.condition, type=e.presence['error']['type'])
    except asyncio.TimeoutError:
        c.note('join_error', room=ROOM, nick=NICKS['A'], condition=None, type='timeout')
    await c.join(ROOM, NICKS['C'], maxstanzas=20)
    for x in (a, b):
        await x.wait_event('got_online', "C's presence", nick=NICKS['C'])
    # a new subject, set by A: everybody gets it
    a.muc.set_subject(ROOM, "A plague o' both your houses")
    for x in (a, b, c):
        await x.wait_event('subject', 'the new subject', subject="A plague o' both your houses")
    b.say(ROOM, 'Thus with a kiss I die', 'b2')
    for x in (a, b, c):
        await x.wait_event('groupchat', "B's second message", body='Thus with a kiss I die')
    # C leaves
    mc = c.mark()
    c.muc.leave_muc(ROOM, NICKS['C'])
    for x in (a, b):
        await x.wait_event('got_offline', 'C leaving', nick=NICKS['C'])
    await c.wait_event('left', 'own unavailable', since=mc, nick=NICKS['C'])
    await asyncio.sleep(0.5)  # anything else that would arrive


SCENARIOS = {'room': (room, {})}


def main():
    run_scenarios(__doc__.split('\n')[0], SCENARIOS, 'slixmpp',
                  lambda role, jid, args, options: Client(role, f'{jid}/{RESOURCES.get(role, "test")}', args.password, args, **options))


if __name__ == '__main__':
    main()
