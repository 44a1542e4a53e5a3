// @ts-check
// End-to-end encryption on the page: where the passphrase comes from (the address's #e2ee=, else a prompt when
// the room asks for it), the page's E2EE (e2ee.js) wired to each session, and what a person sees of it: the badge
// in the top bar, a lock on each tile whose frames open, and "cannot decrypt" in place of a picture that does not.

import { config } from './config.js';
import { connect } from './connection.js';
import { E2EE, available } from './e2ee.js';
import { t } from './i18n.js';
import { refuseJoin } from './meeting.js';
import { app, expose, hook } from './store.js';
import { icon } from './tiles.js';
import { $, hideBanner, showBanner } from './ui.js';

// startEncryption makes the page's E2EE from passphrase: false (with the page ended and a notice) when this
// browser cannot encrypt, as joining unencrypted is no answer to a request for encryption.
/**
 * @param {string} passphrase
 * @param {string} room
 */
export async function startEncryption(passphrase, room) {
  if (!available()) {
    refuseJoin('e2ee', t('e2ee.unsupported'));
    return false;
  }
  const e = await E2EE.create(passphrase, room);
  if (app.e2ee) app.e2ee.close();
  app.e2ee = e;
  e.on('state', ({ pid }) => {
    decorateParticipant(pid);
    renderHook();
  });
  e.on('epoch', () => renderHook());
  e.on('counts', () => renderHook());
  $('e2ee-badge').hidden = false;
  renderHook();
  return true;
}

// bindEncryption wires a session's events to the page's E2EE; runs after the page's own handlers (meeting.js), so
// the participants and their tiles exist.
/** @param {import('./protocol.js').Session} s */
export function bindEncryption(s) {
  const e = () => (s === app.session ? app.e2ee : null);
  s.on('joined', (msg) => {
    const x = e();
    if (!x) return;
    x.joined(msg.you || {}, msg.participants || [], (m) => s.send(m)).then(renderHook);
  });
  s.on('participant_joined', (msg) => {
    const x = e();
    if (x && msg.participant) x.added(msg.participant).then(renderHook);
  });
  s.on('participant_updated', (msg) => {
    const x = e();
    if (x && msg.participant) x.updated(msg.participant).then(renderHook);
  });
  s.on('participant_left', (msg) => {
    const x = e();
    if (x && msg.participant) x.removed(msg.participant.id).then(renderHook);
  });
  s.on('e2ee', (msg) => {
    const x = e();
    if (x) x.message(msg).then(renderHook);
  });
  s.on('track', ({ participantId }) => decorateParticipant(participantId));
  s.on('track_published', (msg) => decorateParticipant(msg.participant_id)); // a screen share's tile, once placed
}

// onEncryptionRefused: the server refused our join for encryption. With a passphrase, the room is not E2EE: the
// page stops (it will not join unencrypted unasked). Without one, the room is: the page asks for the passphrase
// and joins again with it.
/**
 * @param {import('./protocol.js').Session} session
 * @param {{message?: string}} msg
 */
export function onEncryptionRefused(session, msg) {
  console.error(`sfu: join refused (e2ee): ${msg.message || ''}`);
  session.close();
  if (app.e2ee) {
    refuseJoin('e2ee', t('e2ee.notEncryptedRoom'));
    return;
  }
  askPassphrase();
}

function askPassphrase() {
  const dialog = /** @type {HTMLDialogElement} */ ($('e2ee-dialog'));
  const form = /** @type {HTMLFormElement} */ ($('e2ee-form'));
  const input = /** @type {HTMLInputElement} */ ($('e2ee-passphrase'));
  expose({ e2ee: { ...hook.e2ee, prompt: true } });
  const done = () => {
    form.onsubmit = null;
    $('e2ee-cancel').onclick = null;
    dialog.oncancel = null;
    expose({ e2ee: { ...hook.e2ee, prompt: false } });
  };
  const cancel = () => {
    done();
    if (dialog.open) dialog.close();
    refuseJoin('e2ee', t('e2ee.cancelled'));
  };
  form.onsubmit = (ev) => {
    ev.preventDefault();
    const passphrase = input.value;
    if (!passphrase) return;
    input.value = '';
    done();
    dialog.close();
    startEncryption(passphrase, config.room).then((ok) => {
      if (ok) connect();
    });
  };
  $('e2ee-cancel').onclick = cancel;
  dialog.oncancel = (ev) => {
    ev.preventDefault();
    cancel();
  };
  dialog.showModal();
  input.focus();
}

// decorateParticipant shows on each tile of participant pid how its frames open: a lock, "cannot decrypt" (the
// video hidden, so that no frozen picture stays), or nothing before the first frame.
/** @param {string} pid */
export function decorateParticipant(pid) {
  const e = app.e2ee;
  const p = app.participants.get(pid);
  if (!e || !p) return;
  const state = e.participantState(pid);
  for (const tile of [p.tile, ...[...p.screens.values()].map((x) => x.tile)]) {
    decorateTile(tile);
    tile.el.dataset.e2ee = state;
  }
}

/** @param {any} tile */
function decorateTile(tile) {
  if (tile.e2eeLock) return;
  const lock = document.createElement('span');
  lock.className = 'e2ee-lock';
  lock.setAttribute('role', 'img');
  lock.setAttribute('aria-label', t('e2ee.tileLock'));
  lock.title = t('e2ee.tileLock');
  lock.append(icon('lock'));
  tile.nameEl.after(lock);
  const fail = document.createElement('div');
  fail.className = 'e2ee-fail';
  fail.setAttribute('role', 'status');
  const head = document.createElement('strong');
  head.textContent = t('e2ee.cannotDecrypt');
  const hint = document.createElement('span');
  hint.textContent = t('e2ee.cannotDecryptHint');
  fail.append(icon('lock'), head, hint);
  tile.el.append(fail);
  tile.e2eeLock = lock;
}

// renderHook shows the E2EE's state (the test hook, the mismatch banner) a moment after it changes: counts arrive
// once a second per transform, and one rendering serves them all.
const RENDER_DELAY_MS = 200;

function renderHook() {
  if (app.e2eeRenderTimer === null) app.e2eeRenderTimer = setTimeout(renderNow, RENDER_DELAY_MS);
}

function renderNow() {
  app.e2eeRenderTimer = null;
  const e = app.e2ee;
  if (!e) return;
  /** @type {Record<string, string>} */
  const tiles = {};
  for (const pid of app.participants.keys()) tiles[pid] = e.participantState(pid);
  expose({
    e2ee: {
      on: true, epoch: e.epoch, sending: e.sending, members: e.members.size, strangers: e.strangers.size,
      leader: e.self ? e.leader() : '', tiles, prompt: false,
      transforms: [...e.transforms.entries()].map(([id, x]) => ({ id, ...x })),
    },
  });
  // Everyone else has another passphrase: say so once, rather than leave a room of black tiles unexplained.
  if (e.strangers.size > 0 && e.members.size === 0) {
    showBanner('e2ee', t('e2ee.mismatch'), { kind: 'warn' });
  } else {
    hideBanner('e2ee');
  }
}
