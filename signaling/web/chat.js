// @ts-check
// Chat: a side panel with the room's messages (to everyone, or privately to one person), sent and received over
// the signaling socket (PROTOCOL.md, chat). The server sends every message back to its sender too, with its own
// time: the page shows a message once the server has it. Text is only ever set with textContent.

import { t } from './i18n.js';
import { app, expose, hook } from './store.js';
import { $, wirePanel } from './ui.js';

/** How many messages the panel keeps (the oldest go first). */
export const CHAT_KEPT = 200;
/** The longest message the server takes, in characters. */
export const CHAT_MAX_CHARS = 1000;

/**
 * @typedef {{from: string, name: string, to: string, toName: string, text: string, time: number, own: boolean,
 *   private: boolean}} ChatMessage
 */

/** The text of the last message sent, put back in the box if the server refuses it. */
let lastSent = '';

// setupChat wires the panel's controls (room.html) once, when the page is built.
export function setupChat() {
  wirePanel('btn-chat', 'chat-close', 'chat-panel', toggleChat);
  const input = /** @type {HTMLTextAreaElement} */ ($('chat-input'));
  input.maxLength = CHAT_MAX_CHARS;
  input.addEventListener('keydown', (/** @type {KeyboardEvent} */ ev) => {
    // Enter sends, Shift+Enter is a new line; an Enter that ends an input method's composition (Chinese) is not.
    if (ev.key !== 'Enter' || ev.shiftKey || ev.isComposing || ev.keyCode === 229) return;
    ev.preventDefault();
    sendFromBox();
  });
  input.addEventListener('input', () => { if (app.chat.error) setChatError(''); });
  $('chat-form').addEventListener('submit', (/** @type {Event} */ ev) => {
    ev.preventDefault();
    sendFromBox();
  });
  window.addEventListener('sfu:chat-toggle', () => toggleChat());
  // One side panel at a time: another one opening closes this one.
  window.addEventListener('sfu:panel-open', (/** @type {CustomEvent} */ ev) => {
    if (ev.detail !== 'chat' && app.chat.open) toggleChat(false, false);
  });
  expose({ sendChat, toggleChat });
  renderRecipients();
  renderUnread();
}

/**
 * bindChat shows a session's chat messages and keeps the recipient list up to date.
 * @param {import('./protocol.js').Session} s
 */
export function bindChat(s) {
  const current = () => s === app.session;
  s.on('chat', (msg) => { if (current()) onChat(msg); });
  for (const type of ['joined', 'participant_joined', 'participant_left']) {
    s.on(type, () => { if (current()) renderRecipients(); });
  }
}

/**
 * toggleChat opens or closes the chat panel (open omitted: the other way round). Opening it clears the unread
 * count and puts the focus in the message box; closing it (focus true) gives the focus back to the toggle button.
 * @param {boolean} [open]
 * @param {boolean} [focus]
 * @returns {boolean} whether the panel is open now
 */
export function toggleChat(open, focus = true) {
  const want = typeof open === 'boolean' ? open : !app.chat.open;
  app.chat.open = want;
  const panel = $('chat-panel');
  panel.hidden = !want;
  $('btn-chat').setAttribute('aria-expanded', String(want));
  if (want) {
    app.chat.unread = 0;
    window.dispatchEvent(new CustomEvent('sfu:panel-open', { detail: 'chat' }));
    renderRecipients();
    scrollToEnd();
    if (focus) $('chat-input').focus();
  } else if (focus && panel.contains(document.activeElement)) {
    $('btn-chat').focus();
  }
  renderUnread();
  exposeChat();
  return want;
}

/**
 * sendChat sends text to everyone (to '') or privately to the participant id to. Refused here (false, with the
 * reason in the panel) when empty, too long or not connected.
 * @param {string} text
 * @param {string} [to]
 * @returns {boolean}
 */
export function sendChat(text, to = '') {
  const body = String(text || '').trim();
  if (!body) return false;
  if (Array.from(body).length > CHAT_MAX_CHARS) {
    setChatError(t('chat.tooLong', { max: CHAT_MAX_CHARS }));
    return false;
  }
  const s = app.session;
  if (!s || s.ended || !s.joined) {
    setChatError(t('chat.notConnected'));
    return false;
  }
  /** @type {{type: string, text: string, to?: string}} */
  const msg = { type: 'chat', text: body };
  if (to) msg.to = String(to);
  s.send(msg);
  lastSent = body;
  setChatError('');
  return true;
}

function sendFromBox() {
  const input = /** @type {HTMLTextAreaElement} */ ($('chat-input'));
  const to = /** @type {HTMLSelectElement} */ ($('chat-to')).value;
  if (sendChat(input.value, to)) input.value = '';
}

/**
 * onChat: a chat message from the server (ours included).
 * @param {any} msg
 */
export function onChat(msg) {
  if (!msg || typeof msg.text !== 'string' || typeof msg.from !== 'string') return;
  const own = msg.from === hook.participantId;
  const to = typeof msg.to === 'string' ? msg.to : '';
  /** @type {ChatMessage} */
  const m = {
    from: msg.from,
    name: typeof msg.name === 'string' && msg.name ? msg.name : nameOf(msg.from),
    to,
    toName: to ? nameOf(to) : '',
    text: msg.text,
    time: Number(msg.time) || Date.now(),
    own,
    private: !!to,
  };
  app.chat.messages.push(m);
  const list = $('chat-list');
  list.append(messageElement(m));
  while (app.chat.messages.length > CHAT_KEPT) {
    app.chat.messages.shift();
    if (list.firstElementChild) list.firstElementChild.remove();
  }
  if (!own && !app.chat.open) app.chat.unread++;
  renderUnread();
  exposeChat();
  if (app.chat.open) scrollToEnd();
}

/**
 * onChatError: the server refused one of our messages (error with ref chat). The text goes back in the box if the
 * box is empty, so that it can be sent again.
 * @param {any} msg
 */
export function onChatError(msg) {
  const code = msg && msg.code;
  let text;
  if (code === 'rate_limited') text = t('chat.rateLimited');
  else if (code === 'bad_request' && /at most/.test(String(msg.message || ''))) text = t('chat.tooLong', { max: CHAT_MAX_CHARS });
  else text = t('chat.notSent', { code: String(code || 'error') });
  setChatError(text);
  const input = /** @type {HTMLTextAreaElement} */ ($('chat-input'));
  if (!input.value && lastSent) input.value = lastSent;
  // The error is in the panel: open it, so that the sender sees it.
  if (!app.chat.open) toggleChat(true, false);
}

/** @param {string} text */
function setChatError(text) {
  app.chat.error = text;
  const el = $('chat-error');
  el.textContent = text;
  el.hidden = !text;
  exposeChat();
}

/**
 * nameOf: the display name of a participant id (ours: our name), or the id itself.
 * @param {string} id
 */
function nameOf(id) {
  if (id === hook.participantId) return app.localName;
  const p = app.participants.get(id);
  return (p && p.name) || id;
}

/**
 * hhmm: a time (Unix milliseconds) as the local HH:MM.
 * @param {number} ms
 */
export function hhmm(ms) {
  const d = new Date(ms);
  return `${String(d.getHours()).padStart(2, '0')}:${String(d.getMinutes()).padStart(2, '0')}`;
}

/**
 * messageElement builds a message's list item: name, private tag, time, then the text.
 * @param {ChatMessage} m
 */
function messageElement(m) {
  const li = document.createElement('li');
  li.className = 'chat-msg';
  li.classList.toggle('own', m.own);
  li.classList.toggle('private', m.private);
  const meta = document.createElement('div');
  meta.className = 'chat-meta';
  const name = document.createElement('span');
  name.className = 'chat-name';
  name.textContent = m.name;
  meta.append(name);
  if (m.own) {
    const you = document.createElement('span');
    you.className = 'chat-you';
    you.textContent = t('chat.you');
    meta.append(you);
  }
  if (m.private) {
    const tag = document.createElement('span');
    tag.className = 'chat-private';
    tag.textContent = m.own ? t('chat.privateTo', { name: m.toName }) : t('chat.privateFrom', { name: m.name });
    meta.append(tag);
  }
  const time = document.createElement('time');
  time.className = 'chat-time';
  time.dateTime = new Date(m.time).toISOString();
  time.textContent = hhmm(m.time);
  meta.append(time);
  const text = document.createElement('div');
  text.className = 'chat-text';
  text.textContent = m.text;
  li.append(meta, text);
  return li;
}

function scrollToEnd() {
  const list = $('chat-list');
  list.scrollTop = list.scrollHeight;
}

// renderUnread shows the unread count on the toggle button (hidden at 0) and in its accessible name.
function renderUnread() {
  const n = app.chat.unread;
  const badge = $('chat-unread');
  badge.textContent = n > 99 ? '99+' : String(n);
  badge.hidden = n === 0;
  $('btn-chat').setAttribute('aria-label', n ? t('chat.toggleUnread', { n }) : t('chat.toggle'));
}

// renderRecipients lists Everyone and each participant in the recipient picker, keeping the choice. A chosen
// participant who left stays in the list, marked, so that a private message never goes to everyone by surprise.
export function renderRecipients() {
  const select = /** @type {HTMLSelectElement} */ ($('chat-to'));
  const chosen = select.value;
  const chosenName = chosen ? (select.selectedOptions[0] && select.selectedOptions[0].dataset.name) || chosen : '';
  /** @type {Array<[string, string, string]>} value, label, name */
  const options = [['', t('chat.everyone'), '']];
  for (const p of app.participants.values()) options.push([p.id, p.name || p.id, p.name || p.id]);
  if (chosen && !app.participants.has(chosen)) {
    options.push([chosen, t('chat.recipientLeft', { name: chosenName }), chosenName]);
  }
  select.replaceChildren(...options.map(([value, label, name]) => {
    const o = document.createElement('option');
    o.value = value;
    o.textContent = label;
    o.dataset.name = name;
    return o;
  }));
  select.value = chosen;
}

function exposeChat() {
  expose({
    chat: {
      messages: app.chat.messages.map((m) => ({ ...m })),
      unread: app.chat.unread,
      open: app.chat.open,
      error: app.chat.error,
    },
  });
}
