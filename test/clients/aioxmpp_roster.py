#!/usr/bin/python3
"""Roster and presence with aioxmpp's services (Debian python3-aioxmpp 0.13), for the proxy tests
(test/python-roster.test.ts).

Usage: aioxmpp_roster.py SCENARIO HOST PORT --jid ROLE=JID [--jid ROLE=JID ...] --password PASSWORD
                         [--ca FILE] [--timeout SECONDS] [--step-timeout SECONDS] [--debug]

Each client is an aioxmpp.Client with STARTTLS required (the test certificate verified with the test
CA) and the services aioxmpp.RosterClient, aioxmpp.PresenceClient and aioxmpp.PresenceServer; all
clients of a scenario run in this one process.

Scenario "contacts" [J = the user, C = a contact J already follows]:
  C comes online (show chat); J comes online: its RosterClient gets the roster at stream start, its
  PresenceClient sees C; C changes show/status; J renames C and adds a group (set_entry, then the
  push); C asks for J's presence (RosterClient.subscribe), J approves from on_subscribe
  (RosterClient.approve): both ways; C sees J's presence; C disconnects: J sees it go unavailable.

Output: JSON lines like slixmpp_roster.py, each with "client" (the ROLE):
  {"event": "login", "client": "J", "ok": true, "jid": "..."}
  {"event": "initial_roster", "client": "J", "items": {jid: {subscription, ask, name, groups, approved}}}
  {"event": "available" | "changed" | "unavailable", "client": "J", "from": full JID, "show": ..., "status": ...}
  {"event": "entry_added" | "entry_name_changed" | "entry_subscription_state_changed" |
            "entry_added_to_group" | "entry_removed", "client": "J", "jid": ..., "item": {...}}
  {"event": "subscribe" | "subscribed" | "unsubscribe" | "unsubscribed", "client": "J", "from": ...}
  {"event": "roster", "client": "J", "at": "...", "items": {...}}     RosterClient.items at a checkpoint
  {"event": "timeout", "client": "J", "waiting_for": "..."}
  {"event": "done", "ok": true}
Exit status 0 when every step happened, 1 otherwise.
"""
import asyncio
import sys

import aioxmpp

from aioxmpp_common import PartyBase
from common import emit, guarded, scenario_args

PROFILE = {
    'J': ('balcony', aioxmpp.PresenceShow.AWAY, 'At the balcony'),
    'C': ('street', aioxmpp.PresenceShow.CHAT, 'In the street'),
}


def item_json(item):
    return {
        'subscription': item.subscription,
        'ask': item.ask,
        'name': item.name,
        'groups': sorted(item.groups),
        'approved': bool(item.approved),
    }


def presence_json(stanza):
    return {
        'type': stanza.type_.value if stanza.type_ is not None else None,
        'show': stanza.show.value if stanza.show is not None else None,
        'status': stanza.status.any() if stanza.status else None,
    }


class Party(PartyBase):
    """One aioxmpp client with its roster and presence services, recording what they signal."""

    def __init__(self, role, jid, args):
        resource, show, status = PROFILE[role]
        super().__init__(role, f'{jid}/{resource}', args)
        # summoned in this order: the roster is asked for before the initial presence goes out
        self.roster = self.client.summon(aioxmpp.RosterClient)
        self.presence = self.client.summon(aioxmpp.PresenceClient)
        self.server = self.client.summon(aioxmpp.PresenceServer)
        self.server.set_presence(aioxmpp.PresenceState(True, show), status)

        r = self.roster
        r.on_initial_roster_received.connect(lambda: self.note('initial_roster', items=self.items()))
        for sig in ('entry_added', 'entry_name_changed', 'entry_subscription_state_changed', 'entry_removed'):
            getattr(r, 'on_' + sig).connect(self.entry_recorder(sig))
        r.on_entry_added_to_group.connect(lambda item, group: self.note('entry_added_to_group', jid=str(item.jid), group=group, item=item_json(item)))
        for sig in ('subscribe', 'subscribed', 'unsubscribe', 'unsubscribed'):
            getattr(r, 'on_' + sig).connect(self.subscription_recorder(sig))
        p = self.presence
        p.on_available.connect(lambda full, st: self.note('available', **{'from': str(full)}, **presence_json(st)))
        p.on_changed.connect(lambda full, st: self.note('changed', **{'from': str(full)}, **presence_json(st)))
        p.on_unavailable.connect(lambda full, st: self.note('unavailable', **{'from': str(full)}, **presence_json(st)))

    def entry_recorder(self, sig):
        return lambda item: self.note(sig, jid=str(item.jid), item=item_json(item))

    def subscription_recorder(self, sig):
        return lambda st: self.note(sig, **{'from': str(st.from_)})

    def items(self):
        return {str(j): item_json(i) for j, i in self.roster.items.items()}


    def snapshot(self, at):
        self.note('roster', at=at, items=self.items())


async def contacts(parties, jids):
    j, c = parties['J'], parties['C']
    jj, jc = jids['J'], jids['C']
    await c.start()
    await j.start()
    await j.wait_event('initial_roster', 'the roster at stream start')
    await j.wait_event('available', "C's presence", **{'from': c.full})
    # C changes show and status
    m = j.mark()
    c.server.set_presence(aioxmpp.PresenceState(True, aioxmpp.PresenceShow.DND), 'Fighting Tybalt')
    await j.wait_event('changed', "C's new presence", since=m, show='dnd', **{'from': c.full})
    # J names C and puts it in a group; aioxmpp updates its items from the push only
    m = j.mark()
    await j.roster.set_entry(aioxmpp.JID.fromstr(jc), name='Benvolio', add_to_groups={'Montagues'}, timeout=j.args.step_timeout)
    await j.wait_event('entry_name_changed', 'the push of the new name', since=m, jid=jc)
    await j.wait_event('entry_added_to_group', 'the push of the new group', since=m, jid=jc, group='Montagues')
    # C asks for J's presence; J approves from the signal
    j.roster.on_subscribe.connect(lambda st: j.roster.approve(st.from_.bare()))
    mc = c.mark()
    c.roster.subscribe(aioxmpp.JID.fromstr(jj))
    await j.wait_event('subscribe', "C's request", **{'from': jc})
    await c.wait_event('subscribed', "J's approval", since=mc, **{'from': jj})
    await c.until(lambda: c.roster.items.get(aioxmpp.JID.fromstr(jj)) is not None and c.roster.items[aioxmpp.JID.fromstr(jj)].subscription == 'both', "C's roster: both")
    await j.until(lambda: j.roster.items.get(aioxmpp.JID.fromstr(jc)) is not None and j.roster.items[aioxmpp.JID.fromstr(jc)].subscription == 'both', "J's roster: both")
    await c.wait_event('available', "J's presence for C", since=mc, **{'from': j.full})
    j.snapshot('mutual')
    c.snapshot('mutual')
    # C goes away (a normal stream close)
    m = j.mark()
    full_c = c.full
    await c.stop()
    await j.wait_event('unavailable', 'C going offline', since=m, **{'from': full_c})


SCENARIOS = {'contacts': contacts}
def main():
    args, jids = scenario_args(__doc__.split('\n')[0], SCENARIOS, 'aioxmpp')

    async def run():
        parties = {role: Party(role, jid, args) for role, jid in jids.items()}
        ok = await guarded(SCENARIOS[args.scenario](parties, jids), args.timeout)
        for party in parties.values():
            try:
                await asyncio.wait_for(party.stop(), 5)
            except Exception:  # noqa: BLE001
                pass
        return ok

    ok = asyncio.run(run())
    emit(event='done', ok=ok)
    sys.exit(0 if ok else 1)


if __name__ == '__main__':
    main()
