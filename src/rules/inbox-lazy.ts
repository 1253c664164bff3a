// XEP-0207 §4 and §8 for a user who has no inbox yet, where the backend profile makes the inbox
// lazily (ejabberd): a new account's first login makes one node (presence), not two, and the inbox
// is made when its first subscription request comes.
//
// Until then a contact's proxy leaves the request (the same presence, item id and nonce as in an
// inbox) in its own chat node to the user (chat-nodes.ts): the user is a member of it and subscribed,
// so an online session gets the request live, and only the sender can write there, so the node's name
// says who wrote it. Not in the user's waiting node: that node's owner is whoever wrote first, who
// could read and delete other senders' requests. The chat node is announced in the waiting node,
// which the user's catch-up at initial presence reads while the inbox is not made.
//
// The user's proxy applies such a request as an inbox item (receiveSubscription: the nonce keeps a
// request read twice from applying twice) and then makes the inbox, so that later requests go there;
// so does a catch-up that found chat nodes announced in the waiting node (a later login then reads
// the inbox, not the waiting node). Only a session that is available makes it: its catch-up read the
// waiting node first, so no chat node announced there before the inbox existed goes unread (after,
// announcements go to the inbox).
import type { Element } from 'ltx';
import type { PublishedItem } from '../pubsub/events.js';
import * as ps from '../pubsub/requests.js';
import { bareOf } from '../xmpp/jid.js';
import { NODE_INBOX, type Account } from './account.js';
import { announceWaiting, chatNode, chatService, createChatNode, writtenBy } from './chat-nodes.js';
import { retrying } from './retry.js';
import { receiveSubscription } from './subscription-ops.js';

/** An item id that holds a subscription presence (subscription-ops.ts inboxItemId). */
export function isRequestItem(id: string): boolean {
  return id.startsWith('sub:') || id.startsWith('auth:');
}

/**
 * The contact has no inbox: leave `presence` (item `id`) in our chat node to it, made and announced
 * where missing. False if the chat service will not hold it (the request is then kept and retried).
 */
export async function leaveInChatNode(account: Account, contact: string, id: string, presence: Element): Promise<boolean> {
  const ctx = account.ctx;
  const service = chatService(contact, account.pubsubService);
  const node = chatNode(account.bare, contact);
  try {
    await createChatNode(ctx, account.profile, service, node, contact);
    await announceWaiting(ctx, account.profile, service, contact, node);
    await retrying(ctx.log, 'request in chat node', () => ctx.request(ps.publish(service, node, id, presence)));
    return true;
  } catch (err) {
    ctx.log.warn({ err: String(err), contact }, 'subscription request not left in the chat node');
    return false;
  }
}

/**
 * Subscription presences found in a chat node to the user (its catch-up read, or a notification):
 * each one is applied if the node is the sender's to the user on the user's chat service. True if
 * there was one. A failure is logged: the items stay, and the next catch-up reads them again.
 */
export async function takeRequests(account: Account, service: string, node: string, items: readonly PublishedItem[]): Promise<boolean> {
  if (service !== chatService(account.bare, account.pubsubService)) return false;
  let took = false;
  for (const item of items) {
    if (!isRequestItem(item.id)) continue;
    const from = item.payload?.attrs.from as string | undefined;
    const sender = from === undefined ? undefined : bareOf(from).toLowerCase();
    if (!sender || node !== chatNode(sender, account.bare) || !writtenBy(account.profile, item, sender)) continue;
    took = true;
    try {
      await account.exclusive(() => receiveSubscription(account, item));
    } catch (err) {
      account.ctx.log.warn({ err: String(err), item: item.id }, 'subscription request failed');
    }
  }
  return took;
}

/**
 * Somebody contacts the user (a request, or a chat node announced in the waiting node): make the
 * inbox, so that what comes later goes there and later logins need not read the waiting node. Only
 * by an available session (see above); a failure is logged, and the next contact tries again.
 */
export async function makeInbox(account: Account): Promise<void> {
  if (!account.available || !account.lacks(NODE_INBOX)) return;
  await account.made(NODE_INBOX).catch((err: unknown) => account.ctx.log.warn({ err: String(err) }, 'inbox not made'));
}
