// @ts-check
// The meeting page's entry (room.html loads it as a module): builds the page, starts the camera and connects.
// Everything it needs is imported up front (no dynamic import): after a failover the node that served the
// page may be gone.

import { blurStream, setupBlur, wireBlurButton } from './blur.js';
import {
  downloadTranscript, loadCaptionsChoice, setCaptions, setCaptionsState, setupCaptions, transcript,
} from './captions.js';
import { setupChat } from './chat.js';
import { config } from './config.js';
import { connect } from './connection.js';
import { startEncryption } from './encryption.js';
import { setLanguage, setupLanguagePicker, t, translatePage } from './i18n.js';
import { loadDenoiseChoice, setDenoise, setDenoiseState, toggleDenoise } from './denoise.js';
import {
  renderLocal, shareScreen, showLocalMedia, startMedia, stopScreen, toggleLocal, toggleScreen,
} from './media.js';
import { setupDevices } from './devices.js';
import { dropSocket, fail, leave, onNetworkChange, restartIce } from './meeting.js';
import { adminAction, endForEveryone, toggleRoomLock } from './moderation.js';
import { setupPeople } from './people.js';
import { runPrejoin, useName } from './prejoin.js';
import { setupShortcuts } from './shortcuts.js';
import { startQuality } from './quality.js';
import { setupStage } from './stage.js';
import { publishStats, subscribeStats, toggleStats } from './stats.js';
import { app, expose } from './store.js';
import { createTile, icon } from './tiles.js';
import { $, setState, watchControlsHeight } from './ui.js';

export function setupPage() {
  $('room-name').textContent = config.room;
  setupLanguagePicker($('ui-lang'));
  for (const el of document.querySelectorAll('.control-icon[data-icon]')) el.append(icon(/** @type {HTMLElement} */ (el).dataset.icon));
  setupCaptions(); // the picker's options before renderLocal shows the choice in it

  app.localTile = createTile({ label: t('tile.you', { name: config.name }), local: true });
  app.localTile.el.dataset.participantId = 'local';
  $('grid').append(app.localTile.el);
  renderLocal();

  $('btn-mic').addEventListener('click', () => toggleLocal('audio'));
  $('btn-cam').addEventListener('click', () => toggleLocal('video'));
  $('btn-screen').addEventListener('click', toggleScreen);
  $('btn-stats').addEventListener('click', toggleStats);
  $('btn-denoise').addEventListener('click', toggleDenoise);
  wireBlurButton();
  $('btn-leave').addEventListener('click', leave);
  $('btn-lock').addEventListener('click', toggleRoomLock);
  $('btn-end').addEventListener('click', endForEveryone);
  $('rejoin').href = location.href;
  watchControlsHeight(/** @type {HTMLElement} */ (document.querySelector('footer.controls')));
  setupChat();
  setupPeople();
  // A new network (or the old one back): restart ICE rather than wait for the connections to fail.
  window.addEventListener('online', onNetworkChange);
  const netInfo = /** @type {any} */ (navigator).connection; // Network Information API, where there is one
  if (netInfo && netInfo.addEventListener) {
    netInfo.addEventListener('change', onNetworkChange);
  }
  // Closing the tab: say goodbye so the others see us leave at once.
  window.addEventListener('pagehide', () => {
    if (app.session && !app.stopped) app.session.send({ type: 'leave' });
  });
}

export async function main() {
  setLanguage(config.ui);
  translatePage();
  document.title = `${config.room || t('page.meeting')} — SFU`; // the pre-join screen's too
  expose({
    stats: subscribeStats,
    publishStats,
    shareScreen,
    stopScreen,
    setDenoise,
    setCaptions,
    transcript,
    downloadTranscript,
    restartIce,
    admin: adminAction,
    dropSocket,
  });
  app.denoise.choice = config.denoise || loadDenoiseChoice();
  setDenoiseState();
  app.captions.choice = config.captions !== null ? config.captions : loadCaptionsChoice();
  setupBlur(); // before the pre-join screen, which shows the choice
  // The pre-join screen first (unless the address skips it): the name, devices and camera/microphone off.
  const choice = config.room ? await runPrejoin() : null;
  if (choice) useName(choice.name);
  setupPage();
  setupStage();
  startQuality();
  setCaptionsState();
  setState('connecting');
  if (!config.room) {
    fail(t('page.noRoom'));
    return;
  }
  // Camera and signaling start together; publishing waits for both (see Session.startPublishing).
  app.mediaReady = startMedia(choice || {}).then((stream) => {
    // Joining with the camera or microphone off: muted tracks, as the buttons leave them (syncMuteState tells
    // the server once they are published).
    for (const track of stream ? stream.getTracks() : []) {
      if ((track.kind === 'video' && choice && choice.camOff) || (track.kind === 'audio' && choice && choice.micOff)) {
        track.enabled = false;
      }
    }
    return stream;
  }).then(blurStream); // with background blur on, the camera is blurred before anything shows or sends it
  showLocalMedia();
  setupDevices(choice || {});
  setupShortcuts();
  // End-to-end encryption with the address's passphrase: the keys before the first join, which announces it.
  if (config.e2ee && !(await startEncryption(config.e2ee, config.room))) return;
  connect();
}

main();
