// muc-config.ts on its own: what a submitted XEP-0045 §10.2 form does to a room's configuration,
// what it refuses, how a password is kept (never in the clear) and checked.
import t from 'tap';
import { applyForm, configPayload, passwordOpens, readConfig, type RoomConfig } from '../src/rules/muc-config.js';
import { xml } from '../src/stream/xml.js';
import { StanzaError } from '../src/xmpp/stanza-error.js';

const form = (fields: Record<string, string | string[]>, formType = 'http://jabber.org/protocol/muc#roomconfig') =>
  xml(
    'x',
    { xmlns: 'jabber:x:data', type: 'submit' },
    xml('field', { var: 'FORM_TYPE' }, xml('value', {}, formType)),
    ...Object.entries(fields).map(([k, v]) => xml('field', { var: k }, ...(Array.isArray(v) ? v : [v]).map((x) => xml('value', {}, x)))),
  );
const refused = (c: RoomConfig, fields: Record<string, string>, formType?: string) => {
  try {
    applyForm(c, form(fields, formType));
    return 'accepted';
  } catch (err) {
    return err instanceof StanzaError ? err.condition : String(err);
  }
};

t.test('an empty form (an instant room) keeps everything', async (t) => {
  const c = applyForm({}, form({ 'muc#roomconfig_roomname': 'Hall', 'muc#roomconfig_roomsecret': 'pw' }));
  t.same(applyForm(c, xml('x', { xmlns: 'jabber:x:data', type: 'submit' })), c);
});

t.test('name and description set, replaced and cleared; a password set, kept, removed', async (t) => {
  let c = applyForm({}, form({ 'muc#roomconfig_roomname': 'Hall', 'muc#roomconfig_roomdesc': ['two', 'lines'] }));
  t.equal(c.name, 'Hall');
  t.equal(c.description, 'two\nlines', 'a multi-value field joined with line breaks');
  t.equal(c.secret, undefined, 'no password');
  c = applyForm(c, form({ 'muc#roomconfig_passwordprotectedroom': '1', 'muc#roomconfig_roomsecret': 's3cret' }));
  t.equal(c.name, 'Hall', 'fields left out keep their value');
  t.ok(c.secret && c.secret.hash && c.secret.salt, 'a hash and a salt');
  t.notMatch(configPayload(c).toString(), /s3cret/, 'the stored item never holds the password');
  t.ok(passwordOpens(readConfig(configPayload(c)), 's3cret'), 'the right password, after a round trip through the item');
  t.notOk(passwordOpens(c, 's3cret '), 'a wrong one');
  t.notOk(passwordOpens(c, undefined), 'none');
  const same = applyForm(c, form({ 'muc#roomconfig_passwordprotectedroom': '1', 'muc#roomconfig_roomsecret': '' }));
  t.same(same.secret, c.secret, 'protected with an empty secret field: the password stays');
  c = applyForm(c, form({ 'muc#roomconfig_roomname': '', 'muc#roomconfig_passwordprotectedroom': '0' }));
  t.equal(c.name, undefined, 'an empty name clears it');
  t.equal(c.secret, undefined, 'the password removed');
  t.ok(passwordOpens(c, undefined), 'anyone enters');
  t.ok(applyForm({}, form({ 'muc#roomconfig_roomsecret': 'x' })).secret, 'a secret alone protects the room');
});

t.test('refused: what this version cannot do, and bad forms', async (t) => {
  t.equal(refused({}, { 'muc#roomconfig_persistentroom': '0' }), 'not-acceptable');
  t.equal(refused({}, { 'muc#roomconfig_persistentroom': 'true' }), 'accepted');
  t.equal(refused({}, { 'muc#roomconfig_membersonly': '1' }), 'not-acceptable');
  t.equal(refused({}, { 'muc#roomconfig_moderatedroom': 'true' }), 'not-acceptable');
  t.equal(refused({}, { 'muc#roomconfig_membersonly': '0' }), 'accepted', 'asking for what is already so is fine');
  t.equal(refused({}, { 'muc#roomconfig_passwordprotectedroom': '1' }), 'not-acceptable', 'protected without a password');
  t.equal(refused({}, { 'muc#roomconfig_roomname': 'x'.repeat(257) }), 'not-acceptable', 'too long');
  t.equal(refused({}, {}, 'urn:example:other'), 'bad-request', 'another FORM_TYPE');
});

t.test('an item of another shape is no configuration', async (t) => {
  t.same(readConfig(undefined), {});
  t.same(readConfig(xml('config', { xmlns: 'urn:example' }, xml('name', {}, 'x'))), {});
});
