// @ts-check
// The landing page: its words in the page's language (i18n.js, with the same picker as the meeting), the last
// used name filled in, and off to /room/{room}?name={name}&prejoin=1, with #e2ee={passphrase} when one is typed
// (a fragment: the browser never sends it to the server).

import { chooseLanguage, setLanguage, setupLanguagePicker, translatePage } from './i18n.js';

setLanguage(chooseLanguage(new URLSearchParams(location.search).get('lang')));
translatePage();
setupLanguagePicker(/** @type {HTMLSelectElement} */ (document.getElementById('ui-lang')));

const form = /** @type {HTMLFormElement} */ (document.getElementById('join-form'));
const roomInput = /** @type {HTMLInputElement} */ (document.getElementById('room'));
const nameInput = /** @type {HTMLInputElement} */ (document.getElementById('name'));
const passInput = /** @type {HTMLInputElement} */ (document.getElementById('e2ee'));
try {
  nameInput.value = localStorage.getItem('sfu.name') || '';
} catch (e) {
  // storage may be disabled
}
form.addEventListener('submit', (ev) => {
  ev.preventDefault();
  const room = roomInput.value.trim();
  const name = nameInput.value.trim();
  if (!room || !name) return;
  try {
    localStorage.setItem('sfu.name', name);
  } catch (e) {
    // ignore
  }
  // prejoin=1: a person who typed the room checks the camera and microphone before joining (a link with ?name=
  // alone joins at once).
  const pass = passInput.value;
  location.href = '/room/' + encodeURIComponent(room) + '?name=' + encodeURIComponent(name) + '&prejoin=1' +
    (pass ? '#e2ee=' + encodeURIComponent(pass) : '');
});
