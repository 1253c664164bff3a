#!/usr/bin/python3
"""Presence, subscriptions and roster with slixmpp's own machinery (Debian python3-slixmpp 1.8), for
the proxy tests (test/python-roster.test.ts).

Usage: slixmpp_roster.py SCENARIO HOST PORT --jid ROLE=JID [--jid ROLE=JID ...] --password PASSWORD
                         [--ca FILE] [--timeout SECONDS] [--step-timeout SECONDS] [--debug]

Every client of a scenario is a slixmpp.ClientXMPP in this one process (one event loop), logging in
with STARTTLS (the test certificate verified with the test CA). At session start each one does what a
slixmpp application does: get_roster(), then (if the scenario wants it online) send_presence() with
its show and status. Everything else goes through slixmpp's roster object and its events:
update_roster, client_roster.subscribe / del_roster_item, auto_authorize / auto_subscribe, and the
events presence_*, changed_status, roster_update.

Scenarios (ROLEs in brackets):
  enrol            [any]        log each JID in once (get_roster, no presence), so that its nodes exist
  mutual           [A, B]       A adds B (name + groups), subscribes; B (auto_authorize/auto_subscribe,
                                slixmpp's defaults) approves and subscribes back; A approves too: both;
                                each sees the other's show/status; B changes status; B's transport
                                dies without unavailable: A gets presence_unavailable
  relogin          [A]          a fresh login: get_roster only
  remove           [A, B]       both online; A del_roster_item(B): A's roster loses B, B's shows none
  offline-request  [A, C]       A (online) subscribes to C while C is offline; C logs in with
                                auto_authorize=None (manual), gets presence_subscribe, approves with
                                send_presence(pto=A, ptype='subscribed'); A's roster: to
  offline-deny     [A, D]       the same with auto_authorize=False on D: slixmpp itself answers
                                unsubscribed, A's request is denied

Output: one JSON object per line, each with "client" (the ROLE) where it concerns one client:
  {"event": "login", "client": "A", "ok": true, "jid": "juliet@capulet.lit/balcony"}
  {"event": "roster_result", "client": "A", "at": "...", "items": {jid: item}}   a roster get's result
  {"event": "roster_push", "client": "A", "jid": ..., "subscription": ..., "ask": ..., "name": ...,
   "groups": [...], "slixmpp": {...}}   a push as received, and slixmpp's roster item after it
  {"event": "roster", "client": "A", "at": "...", "items": {jid: {...}}}   slixmpp's roster object
  {"event": "<slixmpp event>", "client": "A", "from": ..., "show": ..., "status": ...}
      for presence_available / presence_unavailable / presence_subscribe / presence_subscribed /
      presence_unsubscribe / presence_unsubscribed / presence_error / changed_status / got_offline
  {"event": "iq", "client": "A", "what": "update_roster", "type": "result"}
  {"event": "timeout", "client": "A", "waiting_for": "..."}    a step did not happen in time
  {"event": "done", "ok": true}
Exit status 0 when every step happened, 1 otherwise.
"""
import asyncio
import ssl
import sys

import slixmpp
from slixmpp.exceptions import IqError, IqTimeout

from common import EventLog, StepTimeout, run_scenarios

# what each role is, where a scenario does not say otherwise: resource, show, status
PROFILE = {
    'A': ('balcony', 'away', 'At the balcony'),
    'B': ('orchard', 'chat', 'Under the window'),
    'C': ('street', 'chat', 'In the street'),
    'D': ('chamber', None, 'Busy with the household'),
}


def item_state(item):
    """slixmpp's RosterItem as JSON."""
    return {
        'subscription': item['subscription'],
        'name': item['name'],
        'groups': sorted(item['groups']),
        'pending_out': item['pending_out'],
        'pending_in': item['pending_in'],
        'resources': {r: {'show': v.get('show') or '', 'status': v.get('status') or ''} for r, v in item.resources.items()},
    }


def stanza_item(item):
    """A <item/> of a roster result or push as slixmpp parsed it."""
    return {
        'subscription': item['subscription'],
        'ask': item['ask'] or None,
        'name': item['name'] or None,
        'groups': sorted(item['groups']),
        'approved': item['approved'] or None,
    }


class Client(slixmpp.ClientXMPP, EventLog):
    def __init__(self, role, jid, password, args, online=True, auto_authorize=True, auto_subscribe=True, show=None, status=None):
        resource, dshow, dstatus = PROFILE.get(role, ('test', None, None))
        if '/' not in jid:
            jid = f'{jid}/{resource}'
        super().__init__(jid, password)
        self.role = role
        self.args = args
        self.online = online
        self.show = show if show is not None else dshow
        self.status = status if status is not None else dstatus
        self.events = []
        self.waiters = []
        self.ready = asyncio.get_event_loop().create_future()
        self.ca_certs = args.ca
        self.ssl_context = ssl.create_default_context(cafile=args.ca)
        # slixmpp's documented knobs (RosterNode): True accept all, False reject all, None manual
        self.auto_authorize = auto_authorize
        self.auto_subscribe = auto_subscribe
        self.add_event_handler('session_start', self.on_session_start)
        self.add_event_handler('failed_all_auth', lambda _e=None: self.fail_ready('authentication failed'))
        self.add_event_handler('connection_failed', lambda e=None: self.fail_ready(f'connection failed: {e}'))
        self.add_event_handler('stream_error', lambda e=None: self.note('stream_error', condition=e['condition'] if e is not None else None))
        self.add_event_handler('disconnected', lambda _e=None: self.note('disconnected'))
        # registered after ClientXMPP's own handler: slixmpp's roster object is already updated here
        self.add_event_handler('roster_update', self.on_roster_update)
        for name in ('presence_available', 'presence_unavailable', 'presence_subscribe', 'presence_subscribed',
                     'presence_unsubscribe', 'presence_unsubscribed', 'presence_error', 'changed_status', 'got_offline'):
            self.add_event_handler(name, self.presence_recorder(name))


    def presence_recorder(self, name):
        def record(p):
            kw = {'from': str(p['from']), 'type': p['type'], 'show': p['show'] or None, 'status': p['status'] or None}
            if name == 'presence_error':
                kw['condition'] = p['error']['condition']
            self.note(name, **kw)
        return record

    def on_roster_update(self, iq):
        items = iq['roster']['items']
        if iq['type'] == 'set':
            for jid, item in items.items():
                jid = str(jid)
                state = item_state(self.client_roster[jid]) if self.client_roster.has_jid(jid) else None
                self.note('roster_push', jid=jid, **stanza_item(item), slixmpp=state)

    # ---- session --------------------------------------------------------------------------------

    def fail_ready(self, why):
        if not self.ready.done():
            self.ready.set_exception(RuntimeError(f'{self.role}: {why}'))

    async def on_session_start(self, _event=None):
        try:
            await self.get_roster(timeout=self.args.step_timeout)
            self.note('login', ok=True, jid=str(self.boundjid))
            if self.online:
                self.send_presence(pshow=self.show, pstatus=self.status)
                # the proxy reflects a resource's own presence (as a server does): online for sure
                await self.wait_event('changed_status', 'own presence reflected', **{'from': str(self.boundjid)})
            if not self.ready.done():
                self.ready.set_result(True)
        except (IqError, IqTimeout, StepTimeout) as e:
            self.fail_ready(f'session start: {e!r}')

    async def start(self):
        self.connect((self.args.host, self.args.port), force_starttls=True)
        try:
            await asyncio.wait_for(asyncio.shield(self.ready), self.args.step_timeout * 2)
        except asyncio.TimeoutError:
            raise StepTimeout(self.role, 'login') from None

    async def stop(self):
        if self.transport is None:
            return
        self.disconnect(wait=2)
        try:
            await asyncio.wait_for(self.disconnected, 4)
        except (asyncio.TimeoutError, asyncio.CancelledError):
            pass

    def die(self):
        """The transport goes away without </stream:stream> or unavailable presence (no TLS close_notify)."""
        self.transport.abort()

    # ---- snapshots ------------------------------------------------------------------------------

    def snapshot(self, at):
        """slixmpp's roster object (built from roster results and pushes, and the presences seen)."""
        items = {str(j): item_state(self.client_roster[j]) for j in list(self.client_roster.keys())}
        self.note('roster', at=at, items=items)
        return items

    async def fetch_roster(self, at):
        """A roster get: what the server returns (slixmpp also applies it to its roster object)."""
        res = await self.get_roster(timeout=self.args.step_timeout)
        items = {str(j): stanza_item(i) for j, i in res['roster']['items'].items()}
        self.note('roster_result', at=at, items=items)
        return items

    async def iq(self, what, awaitable):
        try:
            res = await awaitable
            self.note('iq', what=what, type=res['type'])
        except IqError as e:
            self.note('iq', what=what, type='error', condition=e.iq['error']['condition'])
        except IqTimeout:
            self.note('iq', what=what, type='timeout')


# ---- scenarios ------------------------------------------------------------------------------------

def push_of(c, jid, **attrs):
    """the first roster push (since the start) about jid with these attributes"""
    return lambda: c.find('roster_push', jid=jid, **attrs) is not None


async def enrol(clients, _jids):
    for c in clients.values():
        await c.start()
        await c.stop()


async def mutual(clients, jids):
    a, b = clients['A'], clients['B']
    ja, jb = jids['A'], jids['B']
    await a.start()
    await b.start()
    # A adds B with a name and groups (roster set), then asks for B's presence
    await a.iq('update_roster', a.update_roster(jb, name='Romeo', groups=['Montagues', 'Lovers'], timeout=a.args.step_timeout))
    await a.until(push_of(a, jb, name='Romeo', subscription='none'), 'roster push of the new item')
    a.client_roster.subscribe(jb)
    await a.until(push_of(a, jb, subscription='none', ask='subscribe'), 'roster push with ask=subscribe')
    # B's slixmpp approves and subscribes back by itself (auto_authorize, auto_subscribe); so does A's
    await b.wait_event('presence_subscribe', "A's request", **{'from': ja})
    await a.wait_event('presence_subscribe', "B's request back", **{'from': jb})
    await a.until(push_of(a, jb, subscription='both'), "A's roster push: both")
    await b.until(push_of(b, ja, subscription='both'), "B's roster push: both")
    fa, fb = str(a.boundjid), str(b.boundjid)
    await a.wait_event('changed_status', "B's presence", **{'from': fb})
    await b.wait_event('changed_status', "A's presence", **{'from': fa})
    a.snapshot('mutual')
    b.snapshot('mutual')
    # B changes status
    m = a.mark()
    b.send_presence(pshow='dnd', pstatus='Parting is such sweet sorrow')
    await a.wait_event('changed_status', "B's new status", since=m, show='dnd', **{'from': fb})
    a.snapshot('status')
    # B's transport dies: A is told B is unavailable
    m = a.mark()
    b.die()
    await a.wait_event('presence_unavailable', "B's unavailability", since=m, **{'from': fb})
    a.snapshot('dropped')


async def relogin(clients, jids):
    a = clients['A']
    await a.start()
    a.snapshot('relogin')
    await a.fetch_roster('relogin')


async def remove(clients, jids):
    a, b = clients['A'], clients['B']
    ja, jb = jids['A'], jids['B']
    await a.start()
    await b.start()
    fa, fb = str(a.boundjid), str(b.boundjid)
    await a.wait_event('changed_status', "B's presence", **{'from': fb})
    await b.wait_event('changed_status', "A's presence", **{'from': fa})
    a.snapshot('before-remove')
    ma, mb = a.mark(), b.mark()
    await a.iq('del_roster_item', a.del_roster_item(jb))
    await a.until(lambda: a.find('roster_push', ma, jid=jb, subscription='remove') is not None, 'roster push: remove')
    a.snapshot('after-remove-push')
    await a.wait_event('presence_unavailable', "B's resources go unavailable for A", since=ma, **{'from': fb})
    await b.wait_event('presence_unsubscribe', 'unsubscribe from A', since=mb, **{'from': ja})
    await b.wait_event('presence_unsubscribed', 'unsubscribed from A', since=mb, **{'from': ja})
    await b.until(lambda: b.find('roster_push', mb, jid=ja, subscription='none') is not None, "B's roster push: none")
    await b.wait_event('presence_unavailable', "A's resource goes unavailable for B", since=mb, **{'from': fa})
    await a.fetch_roster('after-remove')
    await b.fetch_roster('after-remove')
    b.snapshot('after-remove')


async def offline_request(clients, jids, contact='C'):
    a, c = clients['A'], clients[contact]
    ja, jc = jids['A'], jids[contact]
    await a.start()
    a.client_roster.subscribe(jc)  # c is offline
    await a.until(push_of(a, jc, subscription='none', ask='subscribe'), 'roster push with ask=subscribe')
    a.snapshot('requested')
    ma = a.mark()
    await c.start()
    await c.wait_event('presence_subscribe', "A's request, kept while offline", **{'from': ja})
    await c.fetch_roster('request-received')
    if contact == 'C':
        # auto_authorize=None: slixmpp leaves the answer to the application
        c.send_presence(pto=ja, ptype='subscribed')
        await c.until(push_of(c, ja, subscription='from'), "C's roster push: from")
        await a.until(lambda: a.find('roster_push', ma, jid=jc, subscription='to', ask=None) is not None, "A's roster push: to")
        await a.wait_event('presence_subscribed', 'the approval', since=ma, **{'from': jc})
        await a.wait_event('changed_status', "C's presence after approval", since=ma, **{'from': str(c.boundjid)})
    else:
        # auto_authorize=False: slixmpp denies by itself (unsubscribed)
        await a.wait_event('presence_unsubscribed', 'the denial', since=ma, **{'from': jc})
        await a.until(lambda: a.find('roster_push', ma, jid=jc, subscription='none', ask=None) is not None, "A's roster push: no ask")
    a.snapshot('answered')
    await a.fetch_roster('answered')


SCENARIOS = {
    'enrol': (enrol, {}),
    'mutual': (mutual, {}),
    'relogin': (relogin, {'A': {'online': False}}),
    'remove': (remove, {}),
    'offline-request': (offline_request, {'C': {'auto_authorize': None}}),
    'offline-deny': (lambda cl, j: offline_request(cl, j, 'D'), {'D': {'auto_authorize': False}}),
}

def main():
    run_scenarios(__doc__.split('\n')[0], SCENARIOS, 'slixmpp', lambda role, jid, args, options: Client(role, jid, args.password, args, **options))


if __name__ == '__main__':
    main()
