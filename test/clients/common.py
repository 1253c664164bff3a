"""What the Python client scripts share, whatever their XMPP stack: JSON-line output, the test CA,
the argument parser of the multi-client scenario scripts."""
import argparse
import asyncio
import json
import logging
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_CA = os.path.join(HERE, '..', 'certs', 'ca.pem')


def emit(**kw):
    """One JSON object per line on stdout: what the tap test reads."""
    print(json.dumps(kw), flush=True)


class StepTimeout(Exception):
    """An awaited event did not come in time."""

    def __init__(self, client, what):
        super().__init__(f'{client}: {what}')
        self.client = client
        self.what = what


def scenario_args(description, scenarios, stack):
    """Parse `SCENARIO HOST PORT --jid ROLE=JID... --password P` and set up logging.
    Returns the arguments and the role -> JID map."""
    p = argparse.ArgumentParser(description=description)
    p.add_argument('scenario', choices=sorted(scenarios))
    p.add_argument('host')
    p.add_argument('port', type=int)
    p.add_argument('--jid', action='append', default=[], help='ROLE=JID')
    p.add_argument('--password', required=True)
    p.add_argument('--ca', default=DEFAULT_CA)
    p.add_argument('--timeout', type=float, default=90, help='the whole scenario')
    p.add_argument('--step-timeout', type=float, default=15, help='each awaited event')
    p.add_argument('--debug', action='store_true', help=f'{stack} debug log on stderr')
    args = p.parse_args()
    logging.basicConfig(level=logging.DEBUG if args.debug else logging.CRITICAL, stream=sys.stderr,
                        format='%(asctime)s %(name)s %(message)s')
    return args, dict(j.split('=', 1) for j in args.jid)


class EventLog:
    """Records a client's events (printed as JSON lines) and waits for them. A class using it sets
    `role`, `args` (with step_timeout), `events = []` and `waiters = []`."""

    def note(self, event, **kw):
        ev = {'event': event, 'client': self.role, **kw}
        self.events.append(ev)
        emit(**ev)
        for cond, fut in list(self.waiters):
            if not fut.done() and cond():
                fut.set_result(True)

    def find(self, event, since=0, **match):
        for ev in self.events[since:]:
            if ev['event'] == event and all(ev.get(k) == v for k, v in match.items()):
                return ev
        return None

    async def until(self, cond, what, timeout=None):
        """Wait until cond() holds (checked now and after each event this client records)."""
        if cond():
            return
        fut = asyncio.get_event_loop().create_future()
        entry = (cond, fut)
        self.waiters.append(entry)
        try:
            await asyncio.wait_for(fut, timeout or self.args.step_timeout)
        except asyncio.TimeoutError:
            raise StepTimeout(self.role, what) from None
        finally:
            self.waiters.remove(entry)

    async def wait_event(self, event, what, since=0, **match):
        await self.until(lambda: self.find(event, since, **match) is not None, what)
        return self.find(event, since, **match)

    def mark(self):
        return len(self.events)


async def guarded(scenario, timeout):
    """Run a scenario coroutine within `timeout`; True if it finished, else the reason is printed."""
    try:
        await asyncio.wait_for(scenario, timeout)
        return True
    except StepTimeout as e:
        emit(event='timeout', client=e.client, waiting_for=e.what)
    except asyncio.TimeoutError:
        emit(event='timeout', client=None, waiting_for='the whole scenario')
    except Exception as e:  # noqa: BLE001
        emit(event='failed', error=f'{type(e).__name__}: {e}')
    return False


def run_scenarios(description, scenarios, stack, make_client):
    """The main() of a multi-client scenario script: parse the arguments, make one client per ROLE
    (make_client(role, jid, args, options)), run the scenario within --timeout, stop every client,
    print {"event": "done"} and exit 0 if every step happened in time, 1 otherwise."""
    args, jids = scenario_args(description, scenarios, stack)
    fn, options = scenarios[args.scenario]
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    clients = {role: make_client(role, jid, args, options.get(role, {})) for role, jid in jids.items()}

    ok = loop.run_until_complete(guarded(fn(clients, jids), args.timeout))
    loop.run_until_complete(asyncio.gather(*(c.stop() for c in clients.values())))
    emit(event='done', ok=ok)
    sys.exit(0 if ok else 1)
