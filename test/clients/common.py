"""What the Python client scripts share, whatever their XMPP stack: JSON-line output, the test CA,
the argument parser of the multi-client scenario scripts."""
import argparse
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
