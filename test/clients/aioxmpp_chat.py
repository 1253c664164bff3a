#!/usr/bin/python3
"""One-to-one chat, carbons, offline messages and group chat with aioxmpp's services (Debian
python3-aioxmpp 0.13), for the proxy tests (test/python-chat.test.ts, test/python-muc.test.ts).

Usage: aioxmpp_chat.py SCENARIO HOST PORT --jid ROLE=JID [--jid ROLE=JID ...] --password PASSWORD
                       [--ca FILE] [--timeout SECONDS] [--step-timeout SECONDS] [--debug]

Each aioxmpp party is an aioxmpp.Client (STARTTLS required, the test CA) with the services an aioxmpp
IM application uses: PresenceServer (available), CarbonsClient, the IM framework (im.dispatcher.
IMDispatcher, im.p2p.Service, im.ConversationService) and muc.MUCClient. CarbonsClient only enables
carbons and, as its docstring says, deliberately does not deliver carbon copies: applications get
them from IMDispatcher, which unwraps a <sent/> / <received/> (only from the user's bare JID) and
passes (message, peer, sent, source=CARBONS) to its message_filter; IMDispatcher also enables carbons
by itself when the stream is established, so the explicit CarbonsClient.enable() here is a second,
idempotent enable (what the test asserts is its result). Messages are sent through
p2p.Service.get_conversation(jid).send_message(), groupchat through the Room of MUCClient.join().
Roles S and N are slixmpp occupants (slixmpp_muc.Client, xep_0045) in the same event loop.

Scenarios (ROLEs in brackets):
  carbons   [A, A2, B]  A and A2 (two resources of one user) enable carbons; B sends A's full JID a
                        chat message: A gets it, A2 a received carbon; A sends B's bare JID one: B
                        gets it, A2 a sent carbon
  offline   [A, C]      C is offline; A sends C two messages; C logs in: both, in order, with delays
  muc       [A, S, N]   S (slixmpp) joins ROOM and speaks; A joins with MUCClient: on_muc_enter
                        (codes), S's presence (on_join), the history (on_message, with delays), the
                        subject (on_topic_changed); N (slixmpp) joins: A's on_join; A and S exchange
                        messages; N leaves: A's on_leave; A leaves (Room.leave): S sees it go, A's on_exit

Output: JSON lines (each with "client", the ROLE):
  {"event": "login", "client": "A", "ok": true, "jid": "..."}
  {"event": "carbons_enabled", "client": "A"}            CarbonsClient.enable() returned
  {"event": "message", "client": "A", "from": ..., "to": ..., "type": ..., "body": ..., "id": ...,
   "peer": ..., "sent": bool, "source": "STREAM" | "CARBONS", "delay": stamp or null, "delay_from": ...}
      what IMDispatcher passed to its message_filter (carbons unwrapped)
  {"event": "conversation_message", "client": "A", "conversation": jid, "member": jid, "is_self": bool, "body": ...}
      ConversationService.on_message (p2p and MUC conversations)
  {"event": "muc_enter", "client": "A", "room": ..., "nick": ..., "codes": [...], "affiliation": ..., "role": ...}
  {"event": "muc_join" | "muc_leave", "client": "A", "room": ..., "nick": ..., "affiliation": ..., "role": ...}
  {"event": "muc_message", "client": "A", "room": ..., "nick": ..., "body": ..., "id": ..., "is_self": bool,
   "delay": ..., "delay_from": ...}                       Room.on_message
  {"event": "muc_topic", "client": "A", "room": ..., "nick": ..., "subject": ...}   Room.on_topic_changed
  {"event": "muc_exit", "client": "A", "room": ..., "codes": [...]}                 Room.on_exit
  {"event": "muc_failure", "client": "A", "room": ..., "error": ...}                Room.on_failure
  slixmpp occupants: the events of slixmpp_muc.py
"""
import asyncio

import aioxmpp
import aioxmpp.carbons
import aioxmpp.im.conversation
import aioxmpp.im.dispatcher
import aioxmpp.im.p2p
import aioxmpp.im.service
import aioxmpp.muc
import aioxmpp.muc.xso

from aioxmpp_common import PartyBase
from common import StepTimeout, run_scenarios
import slixmpp_muc

RESOURCES = {'A': 'balcony', 'A2': 'garden', 'B': 'orchard', 'C': 'chamber', 'S': 'orchard', 'N': 'chamber'}
ROOM = 'balcony@conference.capulet.lit'
SLIXMPP_ROLES = {'S', 'N'}


def delay_of(msg):
    if not msg.xep0203_delay:
        return None, None
    d = msg.xep0203_delay[0]
    return d.stamp.isoformat(), str(d.from_) if d.from_ is not None else None


def enum_value(v):
    return v.value if v is not None else None


class Party(PartyBase):
    """One aioxmpp client with the IM services, recording what they signal."""

    def __init__(self, role, jid, args):
        super().__init__(role, f'{jid}/{RESOURCES[role]}', args)
        self.rooms = {}
        self.presence = self.client.summon(aioxmpp.PresenceClient)
        self.server = self.client.summon(aioxmpp.PresenceServer)
        self.server.set_presence(aioxmpp.PresenceState(True))
        self.carbons = self.client.summon(aioxmpp.carbons.CarbonsClient)
        self.dispatcher = self.client.summon(aioxmpp.im.dispatcher.IMDispatcher)
        self.p2p = self.client.summon(aioxmpp.im.p2p.Service)
        self.conversations = self.client.summon(aioxmpp.im.service.ConversationService)
        self.muc = self.client.summon(aioxmpp.muc.MUCClient)
        # first in IMDispatcher's filter chain: every message, as the IM services get it; passed on
        self.dispatcher.message_filter.register(self.on_dispatched, -100)
        self.conversations.on_message.connect(self.on_conversation_message)
        self.presence.on_available.connect(lambda full, st: self.note('available', **{'from': str(full)}))

    def on_dispatched(self, msg, peer, sent, source):
        stamp, dfrom = delay_of(msg)
        self.note('message', **{'from': str(msg.from_) if msg.from_ else None}, to=str(msg.to) if msg.to else None,
                  type=enum_value(msg.type_), body=msg.body.any() if msg.body else None, id=msg.id_,
                  peer=str(peer) if peer else None, sent=sent, source=source.name, delay=stamp, delay_from=dfrom)
        return msg

    def on_conversation_message(self, conversation, msg, member, source, **_kw):
        self.note('conversation_message', conversation=str(conversation.jid),
                  member=str(member.conversation_jid) if member is not None else None,
                  is_self=bool(member is not None and member.is_self), body=msg.body.any() if msg.body else None,
                  source=source.name)

    async def enable_carbons(self):
        await asyncio.wait_for(self.carbons.enable(), self.args.step_timeout)
        self.note('carbons_enabled')

    def send_chat(self, to, body, mid):
        msg = aioxmpp.Message(type_=aioxmpp.MessageType.CHAT)
        msg.body[None] = body
        msg.id_ = mid
        self.p2p.get_conversation(aioxmpp.JID.fromstr(to)).send_message(msg)

    # ---- MUC --------------------------------------------------------------------------------------

    def join(self, room, nick, history=None):
        jid = aioxmpp.JID.fromstr(room)
        r, fut = self.muc.join(jid, nick, history=history, autorejoin=False)
        self.rooms[room] = r

        def occupant(o):
            return {'nick': o.nick, 'affiliation': o.affiliation, 'role': o.role}

        r.on_muc_enter.connect(lambda st, me, muc_status_codes=frozenset(), **_kw: self.note(
            'muc_enter', room=room, codes=sorted(int(c.value) if hasattr(c, 'value') else int(c) for c in muc_status_codes), **occupant(me)))
        r.on_join.connect(lambda o, **_kw: self.note('muc_join', room=room, **occupant(o)))
        r.on_leave.connect(lambda o, **_kw: self.note('muc_leave', room=room, **occupant(o)))

        def on_message(msg, member, source, **_kw):
            stamp, dfrom = delay_of(msg)
            self.note('muc_message', room=room, nick=msg.from_.resource, body=msg.body.any() if msg.body else None, id=msg.id_,
                      is_self=bool(member is not None and member.is_self), delay=stamp, delay_from=dfrom)
        r.on_message.connect(on_message)
        r.on_topic_changed.connect(lambda member, topic, muc_nick=None, **_kw: self.note(
            'muc_topic', room=room, nick=muc_nick, subject=topic.any() if topic else None))
        r.on_exit.connect(lambda muc_status_codes=frozenset(), **_kw: self.note(
            'muc_exit', room=room, codes=sorted(int(c.value) if hasattr(c, 'value') else int(c) for c in muc_status_codes)))
        r.on_failure.connect(lambda exc, **_kw: self.note('muc_failure', room=room, error=repr(exc)))
        return r, fut

    def say(self, room, body, mid):
        msg = aioxmpp.Message(type_=aioxmpp.MessageType.GROUPCHAT)
        msg.body[None] = body
        msg.id_ = mid
        self.rooms[room].send_message(msg)


# ---- scenarios ------------------------------------------------------------------------------------

async def carbons(parties, jids):
    a, a2, b = parties['A'], parties['A2'], parties['B']
    for p in (a, a2, b):
        await p.start()
    for p in (a, a2):
        await p.enable_carbons()
    b.send_chat(a.full, 'Wherefore art thou?', 'r1')
    await a.wait_event('message', 'the message to the full JID', body='Wherefore art thou?', source='STREAM')
    await a2.wait_event('message', 'the received carbon', body='Wherefore art thou?', source='CARBONS')
    a.send_chat(jids['B'], 'Deny thy father', 'j1')
    await b.wait_event('message', "A's answer", body='Deny thy father', source='STREAM')
    await a2.wait_event('message', 'the sent carbon', body='Deny thy father', source='CARBONS')
    await asyncio.sleep(0.5)  # anything else that would arrive


async def offline(parties, jids):
    a, c = parties['A'], parties['C']
    await a.start()
    for n in (1, 2):
        a.send_chat(jids['C'], f'aioxmpp offline {n}', f'o{n}')
    await asyncio.sleep(1)
    await c.start()
    await c.wait_event('message', 'the second message', body='aioxmpp offline 2')
    await asyncio.sleep(0.5)


async def muc(parties, _jids):
    a, s, n = parties['A'], parties['S'], parties['N']
    for p in (s, n, a):
        await p.start()
    await s.join(ROOM, 'Romeo', maxstanzas=20)
    s.say(ROOM, 'It is the east', 's1')
    await s.wait_event('groupchat', 'own message', body='It is the east')
    _room, fut = a.join(ROOM, 'Juliet', aioxmpp.muc.xso.History(maxstanzas=20))
    try:
        await asyncio.wait_for(fut, a.args.step_timeout)
    except asyncio.TimeoutError:
        raise StepTimeout('A', 'the join future') from None
    await a.wait_event('muc_topic', 'the subject')
    await s.wait_event('got_online', "A's presence", nick='Juliet')
    await n.join(ROOM, 'Nurse', maxstanzas=0)
    await a.wait_event('muc_join', "N's presence", nick='Nurse')
    a.say(ROOM, 'O Romeo, Romeo', 'a1')
    await s.wait_event('groupchat', "A's message", body='O Romeo, Romeo')
    await a.wait_event('muc_message', 'own message back', body='O Romeo, Romeo')
    s.say(ROOM, 'I take thee at thy word', 's2')
    await a.wait_event('muc_message', "S's answer", body='I take thee at thy word')
    n.muc.leave_muc(ROOM, 'Nurse')
    await a.wait_event('muc_leave', 'N leaving', nick='Nurse')
    try:
        await asyncio.wait_for(a.rooms[ROOM].leave(), a.args.step_timeout)
    except asyncio.TimeoutError:
        raise StepTimeout('A', 'Room.leave() returning') from None
    await s.wait_event('got_offline', 'A leaving', nick='Juliet')
    await asyncio.sleep(0.5)


SCENARIOS = {'carbons': (carbons, {}), 'offline': (offline, {}), 'muc': (muc, {})}


def make_party(role, jid, args, _options):
    if role in SLIXMPP_ROLES:
        return slixmpp_muc.Client(role, f'{jid}/{RESOURCES[role]}', args.password, args)
    return Party(role, jid, args)


def main():
    run_scenarios(__doc__.split('\n')[0], SCENARIOS, 'aioxmpp', make_party)


if __name__ == '__main__':
    main()
