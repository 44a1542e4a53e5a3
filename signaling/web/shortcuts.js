// @ts-check
// Keyboard shortcuts in the meeting, and the help dialog that lists them ("?" or the controls' help button).
//   m  mute or unmute the microphone        v  camera off or on
//   h  raise or lower the hand              c  open or close the chat
//   ?  this list                            Escape closes a dialog
// Not while typing (input, textarea, select, contenteditable), not with Ctrl, Alt or Meta (Shift only for "?"),
// not while a dialog is open.
//
// Hand and chat belong to other modules, which listen on window for these events (no import either way):
//   'sfu:hand-toggle'  CustomEvent, detail {source: 'keyboard'}: raise the hand, or lower it if raised
//   'sfu:chat-toggle'  CustomEvent, detail {source: 'keyboard'}: open the chat panel, or close it if open

import { t } from './i18n.js';
import { toggleLocal } from './media.js';
import { expose } from './store.js';

export const HAND_TOGGLE_EVENT = 'sfu:hand-toggle';
export const CHAT_TOGGLE_EVENT = 'sfu:chat-toggle';

/** The shortcuts, in the help dialog's order: the key shown and the words for it. */
const SHORTCUTS = [
  { key: 'M', text: 'shortcuts.mic' },
  { key: 'V', text: 'shortcuts.cam' },
  { key: 'H', text: 'shortcuts.hand' },
  { key: 'C', text: 'shortcuts.chat' },
  { key: '?', text: 'shortcuts.help' },
  { key: 'Esc', text: 'shortcuts.escape' },
];

/** @param {string} id @returns {any} */
const byId = (id) => document.getElementById(id);

/** @param {EventTarget | null} target @returns {boolean} the key goes into something being typed in */
export function isTyping(target) {
  if (!(target instanceof Element)) return false;
  if (target.closest('input, textarea, select, [contenteditable]:not([contenteditable="false"])')) return true;
  return target instanceof HTMLElement && target.isContentEditable;
}

/** @type {Element | null} */
let returnFocus = null;

/** @returns {boolean} a modal dialog is open (its own keys first; the pre-join screen is not the meeting yet) */
function modalOpen() {
  if (document.body.dataset.phase === 'prejoin') return true;
  try {
    return !!document.querySelector('dialog:modal');
  } catch (err) {
    return !!document.querySelector('dialog[open]'); // a browser without :modal
  }
}

export function openHelp() {
  const dialog = /** @type {HTMLDialogElement} */ (byId('help-dialog'));
  if (dialog.open) return;
  returnFocus = document.activeElement;
  dialog.showModal();
  expose({ helpOpen: true });
  byId('help-close').focus();
}

export function closeHelp() {
  const dialog = /** @type {HTMLDialogElement} */ (byId('help-dialog'));
  if (dialog.open) dialog.close(); // the close event puts the focus back
}

/** @param {KeyboardEvent} ev */
export function onKey(ev) {
  if (ev.defaultPrevented || ev.repeat || ev.ctrlKey || ev.altKey || ev.metaKey || ev.isComposing) return;
  if (isTyping(ev.target)) return;
  if (modalOpen()) return;
  const key = ev.key;
  if (key === '?') {
    ev.preventDefault();
    openHelp();
    return;
  }
  if (ev.shiftKey) return;
  switch (key.toLowerCase()) {
    case 'm': toggleLocal('audio'); break;
    case 'v': toggleLocal('video'); break;
    case 'h': window.dispatchEvent(new CustomEvent(HAND_TOGGLE_EVENT, { detail: { source: 'keyboard' } })); break;
    case 'c': window.dispatchEvent(new CustomEvent(CHAT_TOGGLE_EVENT, { detail: { source: 'keyboard' } })); break;
    default: return;
  }
  ev.preventDefault();
}

// renderHelp lists the shortcuts in the dialog, in the page's language.
function renderHelp() {
  const list = byId('help-list');
  list.replaceChildren();
  for (const s of SHORTCUTS) {
    const dt = document.createElement('dt');
    const kbd = document.createElement('kbd');
    kbd.textContent = s.key;
    dt.append(kbd);
    const dd = document.createElement('dd');
    dd.textContent = t(s.text);
    list.append(dt, dd);
  }
}

// setupShortcuts listens to the keyboard and wires the help button and dialog. Called once the meeting shows
// (after the pre-join screen).
export function setupShortcuts() {
  renderHelp();
  const dialog = /** @type {HTMLDialogElement} */ (byId('help-dialog'));
  byId('btn-help').addEventListener('click', openHelp);
  byId('help-close').addEventListener('click', closeHelp);
  dialog.addEventListener('close', () => {
    expose({ helpOpen: false });
    if (returnFocus instanceof HTMLElement) returnFocus.focus();
    returnFocus = null;
  });
  document.addEventListener('keydown', onKey);
}
