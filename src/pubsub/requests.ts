// XEP-0060 requests the rules send, as ltx elements. `service` is the pubsub service's JID: a
// user's bare JID for PEP (undefined = the requesting account's own PEP service).
import type { Element } from 'ltx';
import { xml } from '../stream/xml.js';
import { NS_DISCO_ITEMS, NS_PUBSUB, NS_PUBSUB_OWNER } from '../xmpp/ns.js';
import { FORM_NODE_CONFIG, FORM_PUBLISH_OPTIONS, submitForm, type Fields } from './forms.js';

function iq(type: 'get' | 'set', service: string | undefined, child: Element): Element {
  return xml('iq', service ? { type, to: service } : { type }, child);
}

/** §7.1 publish one item (with §7.1.5 publish-options preconditions when given). */
export function publish(service: string | undefined, node: string, id: string, payload: Element, options?: Fields): Element {
  return iq(
    'set',
    service,
    xml(
      'pubsub',
      { xmlns: NS_PUBSUB },
      xml('publish', { node }, xml('item', { id }, payload)),
      options ? xml('publish-options', null, submitForm(FORM_PUBLISH_OPTIONS, options)) : null,
    ),
  );
}

/** §7.2 retract an item, notifying subscribers. */
export function retract(service: string | undefined, node: string, id: string): Element {
  return iq('set', service, xml('pubsub', { xmlns: NS_PUBSUB }, xml('retract', { node, notify: 'true' }, xml('item', { id }))));
}

/** §6.5 retrieve all items of a node. */
export function items(service: string | undefined, node: string): Element {
  return iq('get', service, xml('pubsub', { xmlns: NS_PUBSUB }, xml('items', { node })));
}

/** §6.1 subscribe `jid` to a node. */
export function subscribe(service: string | undefined, node: string, jid: string): Element {
  return iq('set', service, xml('pubsub', { xmlns: NS_PUBSUB }, xml('subscribe', { node, jid })));
}

/** §6.2 unsubscribe `jid` from a node. */
export function unsubscribe(service: string | undefined, node: string, jid: string): Element {
  return iq('set', service, xml('pubsub', { xmlns: NS_PUBSUB }, xml('unsubscribe', { node, jid })));
}

/** §5.6 the requester's own subscriptions at a service (all nodes, or one). */
export function mySubscriptions(service: string | undefined, node?: string): Element {
  return iq('get', service, xml('pubsub', { xmlns: NS_PUBSUB }, xml('subscriptions', node ? { node } : {})));
}

/** §8.1 create a node with a configuration (on `service`; default: the account's own PEP). */
export function createNode(node: string, config: Fields, service?: string): Element {
  return iq('set', service, xml('pubsub', { xmlns: NS_PUBSUB }, xml('create', { node }), xml('configure', null, submitForm(FORM_NODE_CONFIG, config))));
}

/** §8.2 configure a node (owner). */
export function configureNode(node: string, config: Fields): Element {
  return iq('set', undefined, xml('pubsub', { xmlns: NS_PUBSUB_OWNER }, xml('configure', { node }, submitForm(FORM_NODE_CONFIG, config))));
}

/** §8.8.2 modify subscriptions (owner): each [jid, 'subscribed' | 'none' | ...]. */
export function setSubscriptions(node: string, entries: Array<[string, string]>, service?: string): Element {
  return iq(
    'set',
    service,
    xml('pubsub', { xmlns: NS_PUBSUB_OWNER }, xml('subscriptions', { node }, ...entries.map(([jid, subscription]) => xml('subscription', { jid, subscription })))),
  );
}

/** §8.9.2 modify affiliations (owner): each [jid, 'member' | 'none' | ...]. */
export function setAffiliations(node: string, entries: Array<[string, string]>, service?: string): Element {
  return iq(
    'set',
    service,
    xml('pubsub', { xmlns: NS_PUBSUB_OWNER }, xml('affiliations', { node }, ...entries.map(([jid, affiliation]) => xml('affiliation', { jid, affiliation })))),
  );
}

/** XEP-0030 items of an entity (a PEP service lists its nodes). */
export function discoItems(to: string): Element {
  return xml('iq', { type: 'get', to }, xml('query', { xmlns: NS_DISCO_ITEMS }));
}

/** XEP-0030 info of an entity (the server's identity tells the backend). */
export function discoInfo(to: string): Element {
  return xml('iq', { type: 'get', to }, xml('query', { xmlns: 'http://jabber.org/protocol/disco#info' }));
}

/** §6.5.7 the most recent `max` items of a node. */
export function lastItems(service: string | undefined, node: string, max: number): Element {
  return iq('get', service, xml('pubsub', { xmlns: NS_PUBSUB }, xml('items', { node, max_items: String(max) })));
}

/** §6.5.8 one item of a node, by id. */
export function itemById(service: string | undefined, node: string, id: string): Element {
  return iq('get', service, xml('pubsub', { xmlns: NS_PUBSUB }, xml('items', { node }, xml('item', { id }))));
}

/** §8.2 a node's configuration form (owner; the account's own PEP). */
export function getConfig(node: string): Element {
  return iq('get', undefined, xml('pubsub', { xmlns: NS_PUBSUB_OWNER }, xml('configure', { node })));
}

/**
 * §5.7 the requester's own affiliations at a service (the account's own PEP when undefined): on
 * ejabberd, the user's own PEP nodes (owner) from a look-up by the user's key, where a listing of
 * the PEP service (disco#items) scans every PEP node the server holds.
 */
export function myAffiliations(service?: string): Element {
  return iq('get', service, xml('pubsub', { xmlns: NS_PUBSUB }, xml('affiliations')));
}

/** §8.9.1 a node's affiliations (owner; the account's own PEP). */
export function getAffiliations(node: string): Element {
  return iq('get', undefined, xml('pubsub', { xmlns: NS_PUBSUB_OWNER }, xml('affiliations', { node })));
}
