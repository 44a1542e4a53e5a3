// @ts-check
// Cameras, microphones and speakers: the choices remembered in localStorage (with the name and camera/microphone
// off of the pre-join screen), the device lists of the selects, and switching devices in the meeting without a
// new offer (RTCRtpSender.replaceTrack through Session.replaceTrack; setSinkId on every media element for the
// speaker). The meeting's "Devices" button opens a dialog with the same three selects as the pre-join screen.

import { cameraTrack } from './blur.js';
import { t } from './i18n.js';
import { audioConstraints, describeMediaError, localTrack, renderLocal, videoConstraints } from './media.js';
import { app, expose, hook } from './store.js';
import { playVideo } from './tiles.js';
import { showBanner } from './ui.js';

const STORAGE_KEY = 'sfu.prejoin';

/**
 * What the pre-join screen remembers between visits.
 * @typedef {{camera: string, microphone: string, speaker: string, name: string, camOff: boolean, micOff: boolean}} Choices
 */

/** @typedef {'videoinput' | 'audioinput' | 'audiooutput'} DeviceKind */

/** @returns {Choices} the choices remembered (defaults where none) */
export function loadChoices() {
  /** @type {Choices} */
  const c = { camera: '', microphone: '', speaker: '', name: '', camOff: false, micOff: false };
  try {
    const kept = JSON.parse(localStorage.getItem(STORAGE_KEY) || '{}');
    for (const key of ['camera', 'microphone', 'speaker', 'name']) {
      if (typeof kept[key] === 'string') c[key] = kept[key].slice(0, 256);
    }
    c.camOff = kept.camOff === true;
    c.micOff = kept.micOff === true;
  } catch (err) {
    // Storage disabled or a broken entry: the defaults.
  }
  return c;
}

/** @param {Partial<Choices>} patch remembered on top of what was kept */
export function saveChoices(patch) {
  try {
    localStorage.setItem(STORAGE_KEY, JSON.stringify({ ...loadChoices(), ...patch }));
  } catch (err) {
    // Storage may be disabled: the choices then last as long as the page.
  }
}

/** @returns {boolean} the browser can choose where media elements play (HTMLMediaElement.setSinkId) */
export function sinkSupported() {
  return typeof HTMLMediaElement !== 'undefined' && 'setSinkId' in HTMLMediaElement.prototype;
}

/** @returns {Promise<MediaDeviceInfo[]>} the devices; labels are empty before camera/microphone permission */
export async function listDevices() {
  const md = navigator.mediaDevices;
  if (!md || !md.enumerateDevices) return [];
  try {
    return await md.enumerateDevices();
  } catch (err) {
    console.error('sfu: enumerateDevices failed:', err);
    return [];
  }
}

const UNNAMED = { videoinput: 'devices.unnamedCamera', audioinput: 'devices.unnamedMicrophone', audiooutput: 'devices.unnamedSpeaker' };

/**
 * fillSelect lists the devices of kind in select, selecting chosen if it is there (else the first).
 * @param {HTMLSelectElement} select
 * @param {MediaDeviceInfo[]} devices
 * @param {DeviceKind} kind
 * @param {string} chosen
 */
export function fillSelect(select, devices, kind, chosen) {
  const own = devices.filter((d) => d.kind === kind);
  select.replaceChildren();
  own.forEach((d, i) => {
    const opt = document.createElement('option');
    opt.value = d.deviceId;
    opt.textContent = d.label || t(UNNAMED[kind], { n: i + 1 });
    if (d.label) opt.translate = false; // the device's own name, as the system gives it
    select.append(opt);
  });
  if (!own.length) {
    const opt = document.createElement('option');
    opt.value = '';
    opt.textContent = t('devices.none');
    select.append(opt);
  }
  select.disabled = !own.length;
  if (chosen && own.some((d) => d.deviceId === chosen)) select.value = chosen;
}

/** @param {MediaStreamTrack | null | undefined} track @returns {string} the deviceId it captures, '' if unknown */
export function trackDevice(track) {
  if (!track || !track.getSettings) return '';
  return track.getSettings().deviceId || '';
}

/** @param {Partial<{camera: string, microphone: string, speaker: string, switches: number}>} patch */
function exposeDevices(patch) {
  expose({ devices: { ...hook.devices, sinkSupported: sinkSupported(), ...patch } });
}

// ---------------------------------------------------------------------------------------------------------
// Speaker: every media element of the page plays on the chosen output, those added later too.
// ---------------------------------------------------------------------------------------------------------

let speaker = '';
/** @type {MutationObserver | null} */
let sinkObserver = null;

/** @param {HTMLMediaElement} el */
function applySink(el) {
  const m = /** @type {any} */ (el);
  if (!speaker || !m.setSinkId || m.sinkId === speaker) return;
  m.setSinkId(speaker).catch((/** @type {any} */ err) => console.warn('sfu: setSinkId failed:', err && err.name));
}

/**
 * setSpeaker makes deviceId ('' the default) the output of the page's audio and video elements.
 * @param {string} deviceId
 */
export function setSpeaker(deviceId) {
  if (!sinkSupported()) return;
  speaker = deviceId || '';
  for (const el of document.querySelectorAll('audio, video')) applySink(/** @type {HTMLMediaElement} */ (el));
  if (!sinkObserver) {
    sinkObserver = new MutationObserver((records) => {
      for (const r of records) {
        for (const n of r.addedNodes) {
          if (!(n instanceof Element)) continue;
          if (n instanceof HTMLMediaElement) applySink(n);
          for (const el of n.querySelectorAll('audio, video')) applySink(/** @type {HTMLMediaElement} */ (el));
        }
      }
    });
    sinkObserver.observe(document.body, { childList: true, subtree: true });
  }
  exposeDevices({ speaker });
}

// ---------------------------------------------------------------------------------------------------------
// In the meeting: switch camera or microphone with replaceTrack (no renegotiation).
// ---------------------------------------------------------------------------------------------------------

/**
 * switchDevice puts the device deviceId of kind in the place of the one in use: a new track from getUserMedia
 * replaces ours on the publish connection (no new offer), in our stream and in our tile; the old one stops. Muted
 * stays muted. Resolves to false (with a banner if it failed) when nothing was switched.
 * @param {DeviceKind} kind
 * @param {string} deviceId
 * @returns {Promise<boolean>}
 */
export async function switchDevice(kind, deviceId) {
  if (kind === 'audiooutput') {
    setSpeaker(deviceId);
    saveChoices({ speaker: deviceId });
    return sinkSupported();
  }
  const mediaKind = kind === 'videoinput' ? 'video' : 'audio';
  const old = localTrack(mediaKind);
  const stream = app.localStream;
  if (!old || !stream || app.stopped) return false; // nothing published of that kind: nothing to replace
  let track;
  try {
    const got = await navigator.mediaDevices.getUserMedia(mediaKind === 'video'
      ? { video: videoConstraints(deviceId, true) }
      : { audio: audioConstraints(deviceId, true) });
    track = got.getTracks()[0];
  } catch (err) {
    console.error('sfu: switching device failed:', err);
    showBanner('devices', t('devices.switchFailed', { reason: describeMediaError(err, mediaKind === 'video' ? 'media.camera' : 'media.microphone') }),
      { kind: 'warn' });
    return false;
  }
  if (!track) return false;
  if (mediaKind === 'video') track = await cameraTrack(track); // blurred, with background blur on (blur.js)
  if (app.stopped || localTrack(mediaKind) !== old) {
    track.stop(); // the page ended, or another switch won meanwhile
    return false;
  }
  track.enabled = old.enabled;
  if (mediaKind === 'video') track.contentHint = old.contentHint || 'detail';
  try {
    if (app.session) await app.session.replaceTrack(old, track);
  } catch (err) {
    console.error('sfu: replaceTrack failed:', err);
    track.stop();
    showBanner('devices', t('devices.switchFailed', { reason: String(err && err.name) }), { kind: 'warn' });
    return false;
  }
  stream.removeTrack(old);
  stream.addTrack(track);
  old.stop();
  track.addEventListener('ended', renderLocal);
  if (mediaKind === 'video' && app.localTile) {
    app.localTile.video.srcObject = stream;
    playVideo(app.localTile.video);
  }
  const key = mediaKind === 'video' ? 'camera' : 'microphone';
  const id = trackDevice(track) || deviceId;
  saveChoices({ [key]: id });
  exposeDevices({ [key]: id, switches: (hook.devices.switches || 0) + 1 });
  renderLocal();
  return true;
}

// ---------------------------------------------------------------------------------------------------------
// The meeting's devices dialog
// ---------------------------------------------------------------------------------------------------------

/** @type {Element | null} */
let returnFocus = null;

/** @param {string} id @returns {any} */
const byId = (id) => document.getElementById(id);

// refreshDialog lists the devices in the dialog's selects, the ones in use selected.
async function refreshDialog() {
  const devices = await listDevices();
  fillSelect(byId('devices-camera'), devices, 'videoinput', trackDevice(localTrack('video')) || hook.devices.camera);
  fillSelect(byId('devices-mic'), devices, 'audioinput', trackDevice(localTrack('audio')) || hook.devices.microphone);
  fillSelect(byId('devices-speaker'), devices, 'audiooutput', speaker);
  byId('devices-speaker-field').hidden = !sinkSupported();
}

export function openDevicesDialog() {
  const dialog = /** @type {HTMLDialogElement} */ (byId('devices-dialog'));
  if (dialog.open) return;
  returnFocus = document.activeElement;
  dialog.showModal();
  refreshDialog();
}

/**
 * setupDevices wires the meeting's devices button and dialog, and applies the chosen speaker.
 * @param {{camera?: string, microphone?: string, speaker?: string}} chosen the devices the page joined with
 */
export function setupDevices(chosen) {
  exposeDevices({ camera: chosen.camera || '', microphone: chosen.microphone || '', speaker: chosen.speaker || '' });
  if (chosen.speaker) setSpeaker(chosen.speaker);
  expose({ switchDevice });
  const dialog = /** @type {HTMLDialogElement} */ (byId('devices-dialog'));
  byId('btn-devices').addEventListener('click', openDevicesDialog);
  byId('devices-close').addEventListener('click', () => dialog.close());
  dialog.addEventListener('close', () => {
    if (returnFocus instanceof HTMLElement) returnFocus.focus();
    returnFocus = null;
  });
  /** @type {[string, DeviceKind][]} */
  const selects = [['devices-camera', 'videoinput'], ['devices-mic', 'audioinput'], ['devices-speaker', 'audiooutput']];
  for (const [id, kind] of selects) {
    const select = byId(id);
    select.addEventListener('change', () => switchDevice(kind, select.value).then(() => refreshDialog()));
  }
  // A device plugged in or out: the open dialog lists what is there now.
  const md = navigator.mediaDevices;
  if (md && md.addEventListener) {
    md.addEventListener('devicechange', () => {
      if (dialog.open) refreshDialog();
    });
  }
}
