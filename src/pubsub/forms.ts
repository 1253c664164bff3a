// XEP-0004 data forms as pubsub uses them (node_config, publish-options, subscribe_authorization).
import type { Element } from 'ltx';
import { xml } from '../stream/xml.js';
import { NS_DATA } from '../xmpp/ns.js';

export const FORM_NODE_CONFIG = 'http://jabber.org/protocol/pubsub#node_config';
export const FORM_PUBLISH_OPTIONS = 'http://jabber.org/protocol/pubsub#publish-options';
export const FORM_SUBSCRIBE_AUTHORIZATION = 'http://jabber.org/protocol/pubsub#subscribe_authorization';

export type Fields = Record<string, string | string[]>;

/** A submitted form: FORM_TYPE first, then one field per entry. */
export function submitForm(formType: string, fields: Fields): Element {
  return xml(
    'x',
    { xmlns: NS_DATA, type: 'submit' },
    xml('field', { var: 'FORM_TYPE', type: 'hidden' }, xml('value', null, formType)),
    ...Object.entries(fields).map(([name, value]) =>
      xml('field', { var: name }, ...(Array.isArray(value) ? value : [value]).map((v) => xml('value', null, v))),
    ),
  );
}

/** The fields of a form as name -> values (FORM_TYPE included). */
export function formFields(x: Element): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const f of x.getChildren('field')) {
    const name = f.attrs.var as string | undefined;
    if (name) out.set(name, f.getChildren('value').map((v) => v.getText().trim()));
  }
  return out;
}
