// @ts-check
// People panel and raised hands: everyone in the room (us first) with their host badge, microphone and camera
// state and raised hand; the queue of raised hands in the order they went up; for hosts, per-person actions
// (mute, lower hand, make host, remove). Hands come only from the server (hands, joined.hands): the raise-hand
// button asks, and shows what the server then says.

import { t } from './i18n.js';
import { adminAction, renderHostControls } from './moderation.js';
import { sourceState } from './participants.js';
import { app, expose, hook, setAdmin } from './store.js';
import { icon } from './tiles.js';
import { $, hideBanner, showBanner, wirePanel } from './ui.js';

/** A raised hand (24x24), as the raise-hand button in room.html draws it. */
const HAND_PATH = 'M7.5 12.2V6.25a1.25 1.25 0 0 1 2.5 0V11h.6V4.25a1.25 1.25 0 0 1 2.5 0V11h.6V5.25a1.25 1.25 0 0 1 ' +
  '2.5 0V12h.6V8.25a1.25 1.25 0 0 1 2.5 0V15a6 6 0 0 1-6 6h-.8a6 6 0 0 1-4.9-2.6l-3-4.4a1.3 1.3 0 0 1 2.1-1.5z';

/** How long the host's "hand raised" notice stays. */
export const HAND_NOTICE_MS = 8000;

/**
 * @typedef {{id: string, name: string, self: boolean, admin: boolean, mic: string, cam: string, hand: number}} Person
 */

/** Pending render (several events of one change make one render). */
let renderTimer = 0;
/** Hides the host's "hand raised" notice. */
let noticeTimer = 0;
/** Our role changed by participant_updated: the moderation message that follows says so in a banner. */
let roleChanged = false;

// setupPeople wires the panel and the raise-hand button (room.html) once, when the page is built.
export function setupPeople() {
  wirePanel('btn-people', 'people-close', 'people-panel', togglePeople);
  $('btn-hand').addEventListener('click', () => raiseHand(!handRaised()));
  window.addEventListener('sfu:hand-toggle', () => raiseHand(!handRaised()));
  window.addEventListener('sfu:panel-open', (/** @type {CustomEvent} */ ev) => {
    if (ev.detail !== 'people' && app.people.open) togglePeople(false, false);
  });
  // Our own microphone and camera: the self-view tile shows them (renderLocal), the panel follows it.
  new MutationObserver(scheduleRender).observe(app.localTile.el, { attributes: true, attributeFilter: ['data-mic', 'data-cam'] });
  expose({ raiseHand, togglePeople });
  renderPeople();
}

/**
 * bindPeople keeps the panel, the hands and our role up to date with a session's events. It is bound after the
 * page's own handlers (meeting.js), so the participants are already updated when it renders.
 * @param {import('./protocol.js').Session} s
 */
export function bindPeople(s) {
  const current = () => s === app.session;
  s.on('joined', (msg) => {
    if (!current()) return;
    app.people.admins = new Set();
    for (const p of msg.participants || []) {
      if (p && p.id && p.admin === true) app.people.admins.add(p.id);
    }
    setHands(Array.isArray(msg.hands) ? msg.hands : [], false);
  });
  s.on('participant_joined', (msg) => {
    if (!current() || !msg.participant || !msg.participant.id) return;
    setOtherAdmin(msg.participant.id, msg.participant.admin === true);
  });
  s.on('participant_updated', (msg) => { if (current()) onParticipantUpdated(msg); });
  s.on('moderation', (msg) => { if (current()) onRoleModeration(msg); });
  s.on('hands', (msg) => { if (current()) setHands(Array.isArray(msg.hands) ? msg.hands : [], true); });
  for (const type of ['participant_left', 'track_published', 'track_unpublished', 'track_muted', 'track']) {
    s.on(type, () => { if (current()) scheduleRender(); });
  }
}

/**
 * setOtherAdmin records whether another participant is a host.
 * @param {string} id
 * @param {boolean} admin
 */
function setOtherAdmin(id, admin) {
  if (admin) app.people.admins.add(id);
  else app.people.admins.delete(id);
  scheduleRender();
}

/**
 * onParticipantUpdated: someone's role changed (an administrator's set_role). Ours: the host controls show or go.
 * @param {any} msg
 */
function onParticipantUpdated(msg) {
  const info = msg.participant;
  if (!info || typeof info.id !== 'string') return;
  if (info.id === hook.participantId) {
    if (applyOwnRole(info.admin === true)) roleChanged = true;
  } else {
    setOtherAdmin(info.id, info.admin === true);
  }
}

/**
 * onRoleModeration: an administrator's set_role told us our rights; a change of role gets its own notice (after
 * moderation.js's, which speaks of publishing).
 * @param {any} msg
 */
function onRoleModeration(msg) {
  if (!msg || msg.action !== 'set_role') return;
  const admin = msg.admin === true;
  if (applyOwnRole(admin) || roleChanged) {
    roleChanged = false;
    showBanner('moderation', admin ? t('people.nowHost') : t('people.noLongerHost'), { kind: 'info' });
  }
}

/**
 * applyOwnRole makes us a host or not; false if we already were what admin says.
 * @param {boolean} admin
 */
function applyOwnRole(admin) {
  if (admin === app.isAdmin) return false;
  setAdmin(admin);
  renderHostControls();
  scheduleRender();
  return true;
}

/**
 * setHands applies the server's queue of raised hands; notify: a host hears of hands that went up.
 * @param {any[]} list
 * @param {boolean} notify
 */
export function setHands(list, notify) {
  const before = app.people.hands;
  const hands = list.filter((id) => typeof id === 'string' && id);
  app.people.hands = hands;
  if (notify && app.isAdmin) {
    const up = hands.filter((id) => !before.includes(id) && id !== hook.participantId);
    if (up.length) showHandNotice(up[up.length - 1]);
  }
  if (!hands.some((id) => id !== hook.participantId && app.participants.has(id))) hideBanner('hand-raised');
  renderPeople();
}

/**
 * showHandNotice tells a host that id raised a hand, with a button that opens the queue.
 * @param {string} id
 */
function showHandNotice(id) {
  showBanner('hand-raised', t('people.handRaisedNotice', { name: nameOf(id) }), {
    kind: 'info',
    action: { label: t('people.showQueue'), onClick: () => { hideBanner('hand-raised'); togglePeople(true); } },
  });
  clearTimeout(noticeTimer);
  noticeTimer = window.setTimeout(() => hideBanner('hand-raised'), HAND_NOTICE_MS);
}

/** @returns {boolean} whether the server has our hand up */
export function handRaised() {
  return !!hook.participantId && app.people.hands.includes(hook.participantId);
}

/**
 * raiseHand asks the server to raise or lower our hand; the button changes once the server says so (hands).
 * @param {boolean} raised
 * @returns {boolean} true if the request went out
 */
export function raiseHand(raised) {
  const s = app.session;
  if (!s || s.ended || !s.joined) return false;
  s.send({ type: 'hand', raised: !!raised });
  return true;
}

/**
 * togglePeople opens or closes the people panel (open omitted: the other way round).
 * @param {boolean} [open]
 * @param {boolean} [focus] move the focus into the panel, or back to its button when it closes
 * @returns {boolean} whether the panel is open now
 */
export function togglePeople(open, focus = true) {
  const want = typeof open === 'boolean' ? open : !app.people.open;
  app.people.open = want;
  const panel = $('people-panel');
  panel.hidden = !want;
  $('btn-people').setAttribute('aria-expanded', String(want));
  if (want) {
    window.dispatchEvent(new CustomEvent('sfu:panel-open', { detail: 'people' }));
    renderPeople();
    if (focus) $('people-close').focus();
  } else if (focus && panel.contains(document.activeElement)) {
    $('btn-people').focus();
  }
  expose({ peopleOpen: want });
  return want;
}

/** @param {string} id */
function nameOf(id) {
  if (id === hook.participantId) return app.localName;
  const p = app.participants.get(id);
  return (p && p.name) || id;
}

/** @returns {Person[]} everyone in the room, us first */
export function people() {
  const hands = app.people.hands;
  const local = app.localTile ? app.localTile.el.dataset : {};
  const self = hook.participantId || '';
  /** @type {Person[]} */
  const list = [{
    id: self,
    name: app.localName,
    self: true,
    admin: app.isAdmin,
    mic: local.mic || 'none',
    cam: local.cam || 'none',
    hand: self ? hands.indexOf(self) + 1 : 0,
  }];
  for (const p of app.participants.values()) {
    list.push({
      id: p.id,
      name: p.name || p.id,
      self: false,
      admin: app.people.admins.has(p.id),
      mic: sourceState(p, 'audio', 'microphone'),
      cam: sourceState(p, 'video', 'camera'),
      hand: hands.indexOf(p.id) + 1,
    });
  }
  return list;
}

function scheduleRender() {
  if (renderTimer) return;
  renderTimer = window.setTimeout(() => {
    renderTimer = 0;
    renderPeople();
  }, 0);
}

// renderPeople draws the panel, the hands queue, the raise-hand button and the tiles' hand badges, and tells the
// test hook. The focus stays on the button it was on if that button is drawn again.
export function renderPeople() {
  clearTimeout(renderTimer);
  renderTimer = 0;
  const list = people();
  const host = app.isAdmin && !app.stopped;
  const active = /** @type {HTMLElement | null} */ (document.activeElement);
  const refocus = active && $('people-panel').contains(active) && active.dataset.action
    ? { action: active.dataset.action, id: active.dataset.participantId || '' } : null;

  // The queue of raised hands, first raised first.
  const queue = $('hands-queue');
  const raised = list.filter((p) => p.hand > 0).sort((a, b) => a.hand - b.hand);
  queue.replaceChildren(...raised.map((p) => {
    const li = document.createElement('li');
    li.className = 'hands-item';
    li.dataset.participantId = p.id;
    const name = document.createElement('span');
    name.className = 'hands-name';
    name.textContent = p.self ? t('people.youName', { name: p.name }) : p.name;
    li.append(name);
    if (host && !p.self) li.append(actionButton('lower_hand', p, t('people.lowerHandOf', { name: p.name }), t('people.lowerHandShort')));
    return li;
  }));
  $('hands-section').hidden = raised.length === 0;

  // Everyone.
  $('people-list').replaceChildren(...list.map((p) => personRow(p, host)));
  $('people-title').textContent = t('people.title', { n: list.length });

  // The raise-hand button, the count of hands on the panel's button, the tiles' badges.
  const mine = handRaised();
  const btn = $('btn-hand');
  btn.setAttribute('aria-pressed', String(mine));
  btn.querySelector('.control-label').textContent = mine ? t('people.lowerHand') : t('people.raiseHand');
  btn.title = mine ? t('people.lowerHand') : t('people.raiseHand');
  btn.disabled = app.stopped;
  const count = $('people-hands');
  count.textContent = String(raised.length);
  count.hidden = raised.length === 0;
  $('btn-people').setAttribute('aria-label', raised.length
    ? t('people.toggleHands', { n: raised.length }) : t('people.toggle'));
  renderTileHands(list);

  if (refocus) {
    const sel = `[data-action="${CSS.escape(refocus.action)}"][data-participant-id="${CSS.escape(refocus.id)}"]`;
    const again = /** @type {HTMLElement | null} */ ($('people-panel').querySelector(sel));
    (again || $('people-close')).focus();
  }
  expose({ people: list, hands: app.people.hands.slice() });
}

/**
 * personRow: one person's line in the panel.
 * @param {Person} p
 * @param {boolean} host whether we are a host (the actions show)
 */
function personRow(p, host) {
  const li = document.createElement('li');
  li.className = 'person';
  li.dataset.participantId = p.id;
  li.dataset.mic = p.mic;
  li.dataset.cam = p.cam;
  const who = document.createElement('div');
  who.className = 'person-who';
  const name = document.createElement('span');
  name.className = 'person-name';
  name.textContent = p.self ? t('people.youName', { name: p.name }) : p.name;
  who.append(name);
  if (p.admin) who.append(badge('person-host', t('people.host')));
  if (p.hand) {
    const hand = badge('person-hand', String(p.hand));
    hand.prepend(handIcon());
    hand.title = t('people.handPosition', { n: p.hand });
    hand.setAttribute('aria-label', hand.title);
    who.append(hand);
  }
  const state = document.createElement('div');
  state.className = 'person-state';
  state.append(
    stateIcon('mic', p.mic === 'on' ? t('people.micOn') : p.mic === 'off' ? t('people.micMuted') : t('people.micNone')),
    stateIcon('cam', p.cam === 'on' ? t('people.camOn') : p.cam === 'off' ? t('people.camOff') : t('people.camNone')),
  );
  li.append(who, state);
  if (host && !p.self) {
    const actions = document.createElement('div');
    actions.className = 'person-actions';
    actions.append(actionButton('mute', p, t('people.muteOf', { name: p.name }), t('people.mute')));
    if (p.hand) actions.append(actionButton('lower_hand', p, t('people.lowerHandOf', { name: p.name }), t('people.lowerHandShort')));
    if (!p.admin) actions.append(actionButton('make_host', p, t('people.makeHostOf', { name: p.name }), t('people.makeHost')));
    actions.append(actionButton('kick', p, t('people.removeOf', { name: p.name }), t('people.remove')));
    li.append(actions);
  }
  return li;
}

/**
 * @param {string} className
 * @param {string} text
 */
function badge(className, text) {
  const el = document.createElement('span');
  el.className = `badge ${className}`;
  el.textContent = text;
  return el;
}

/**
 * stateIcon: a microphone or camera state, with its words for screen readers and as a tooltip.
 * @param {'mic' | 'cam'} kind
 * @param {string} label
 */
function stateIcon(kind, label) {
  const el = document.createElement('span');
  el.className = `person-icon person-${kind}`;
  el.setAttribute('role', 'img');
  el.setAttribute('aria-label', label);
  el.title = label;
  el.append(icon(kind));
  return el;
}

/**
 * actionButton: a host's action on p. label is the accessible name, text what the button shows.
 * @param {'mute' | 'lower_hand' | 'make_host' | 'kick'} action
 * @param {Person} p
 * @param {string} label
 * @param {string} text
 */
function actionButton(action, p, label, text) {
  const b = document.createElement('button');
  b.type = 'button';
  b.className = `person-action${action === 'kick' ? ' danger' : ''}`;
  b.dataset.action = action;
  b.dataset.participantId = p.id;
  b.textContent = text;
  b.title = label;
  b.setAttribute('aria-label', label);
  b.addEventListener('click', () => hostAction(action, p));
  return b;
}

/**
 * hostAction sends a host's action on p (remove asks first).
 * @param {'mute' | 'lower_hand' | 'make_host' | 'kick'} action
 * @param {Person} p
 */
export function hostAction(action, p) {
  switch (action) {
    case 'mute': return adminAction('mute', p.id);
    case 'lower_hand': return adminAction('lower_hand', p.id);
    case 'make_host': return adminAction('set_role', p.id, { admin: true });
    case 'kick':
      if (!window.confirm(t('people.removeConfirm', { name: p.name }))) return false;
      return adminAction('kick', p.id);
    default: return false;
  }
}

/**
 * renderTileHands shows a ✋ badge with the queue position on the tile of each participant whose hand is up.
 * @param {Person[]} list
 */
function renderTileHands(list) {
  for (const p of list) {
    const tile = p.self ? app.localTile : app.participants.get(p.id)?.tile;
    if (!tile) continue;
    let el = /** @type {HTMLElement | null} */ (tile.el.querySelector('.hand-badge'));
    if (!el && !p.hand) continue;
    if (!el) {
      el = document.createElement('span');
      el.className = 'hand-badge';
      el.setAttribute('role', 'img');
      tile.el.append(el);
    }
    el.hidden = !p.hand;
    el.replaceChildren(handIcon(), String(p.hand || ''));
    const label = p.hand ? t('people.handPosition', { n: p.hand }) : '';
    el.title = label;
    el.setAttribute('aria-label', label);
  }
}

// handIcon: the raised hand of the badges (decorative: the badge has the words).
function handIcon() {
  const ns = 'http://www.w3.org/2000/svg';
  const svg = document.createElementNS(ns, 'svg');
  svg.setAttribute('viewBox', '0 0 24 24');
  svg.setAttribute('aria-hidden', 'true');
  svg.classList.add('icon', 'hand-icon');
  const path = document.createElementNS(ns, 'path');
  path.setAttribute('d', HAND_PATH);
  svg.append(path);
  return svg;
}
