// @ts-check
// Local media: camera and microphone (with their buttons), and our screen share.

import { renderBlur } from './blur.js';
import { renderCaptions } from './captions.js';
import { SCREEN_CONSTRAINTS, VIDEO_SIZES, config } from './config.js';
import { renderDenoise } from './denoise.js';
import { t } from './i18n.js';
import { renderHostControls } from './moderation.js';
import { app, expose } from './store.js';
import { playVideo, setTileIndicators } from './tiles.js';
import { $, hideBanner, showBanner } from './ui.js';

// videoConstraints: the camera at the page's resolution; deviceId, if given, the one chosen (ideal: a camera that
// is gone leaves the browser's default rather than none).
/** @param {string} [deviceId] @param {boolean} [exact] */
export function videoConstraints(deviceId, exact = false) {
  const size = VIDEO_SIZES[config.res];
  /** @type {MediaTrackConstraints} */
  const c = { width: { ideal: size.width }, height: { ideal: size.height }, frameRate: { ideal: 30 } };
  if (deviceId) c.deviceId = exact ? { exact: deviceId } : { ideal: deviceId };
  return c;
}

/** @param {string} [deviceId] @param {boolean} [exact] @returns {MediaTrackConstraints | boolean} */
export function audioConstraints(deviceId, exact = false) {
  if (!deviceId) return true;
  return { deviceId: exact ? { exact: deviceId } : { ideal: deviceId } };
}

// describeMediaError says why getUserMedia failed; what is the catalogue key of the device (media.camera,
// media.microphone, media.both).
export function describeMediaError(err, what) {
  const name = (err && err.name) || 'Error';
  const device = t(what);
  switch (name) {
    case 'NotAllowedError':
    case 'SecurityError':
      return t('media.denied', { what: device, name });
    case 'NotFoundError':
    case 'OverconstrainedError':
      return t('media.notFound', { what: device, name });
    case 'NotReadableError':
      return t('media.inUse', { what: device, name });
    default:
      return t('media.failed', { what: device, detail: `${name}${err && err.message ? ': ' + err.message : ''}` });
  }
}

export function capitalize(s) {
  return s.charAt(0).toUpperCase() + s.slice(1);
}

// startMedia asks for camera and microphone, falling back to the microphone alone (then the camera alone).
// It resolves to null when nothing can be captured: the page then joins as a viewer. devices names the camera and
// microphone chosen (pre-join screen, devices.js): deviceIds, '' for the browser's default.
/** @param {{camera?: string, microphone?: string}} [devices] */
export async function startMedia(devices = {}) {
  if (!config.publish) return null; // ?publish=0: watch only
  const md = navigator.mediaDevices;
  if (!md || !md.getUserMedia) {
    showBanner('media', t('media.noDevices'), { kind: 'warn' });
    return null;
  }
  let firstErr;
  try {
    return await md.getUserMedia({ audio: audioConstraints(devices.microphone), video: videoConstraints(devices.camera) });
  } catch (err) {
    firstErr = err;
    console.error('sfu: getUserMedia failed:', err.name, err.message);
  }
  try {
    const stream = await md.getUserMedia({ audio: audioConstraints(devices.microphone) });
    showBanner('media', t('media.micOnly', { error: capitalize(describeMediaError(firstErr, 'media.camera')) }),
      { kind: 'warn' });
    return stream;
  } catch (err) {
    // No microphone either; maybe a camera without a microphone.
  }
  try {
    const stream = await md.getUserMedia({ video: videoConstraints(devices.camera) });
    showBanner('media', t('media.camOnly', { error: capitalize(describeMediaError(firstErr, 'media.microphone')) }),
      { kind: 'warn' });
    return stream;
  } catch (err) {
    // Nothing at all.
  }
  showBanner('media', t('media.viewer', { error: capitalize(describeMediaError(firstErr, 'media.both')) }),
    { kind: 'error' });
  return null;
}

export function localTrack(kind) {
  if (!app.localStream) return null;
  return app.localStream.getTracks().find((t) => t.kind === kind && t.readyState === 'live') || null;
}

export function localTrackState(kind) {
  const track = localTrack(kind);
  if (!track) return 'none';
  return track.enabled ? 'on' : 'off';
}

export function renderLocal() {
  const mic = localTrackState('audio');
  const cam = localTrackState('video');
  setTileIndicators(app.localTile, mic, cam);
  expose({ local: { mic, cam } });

  const micBtn = $('btn-mic');
  micBtn.disabled = mic === 'none' || app.stopped;
  micBtn.setAttribute('aria-pressed', String(mic === 'off'));
  micBtn.querySelector('.control-label').textContent = t(mic === 'off' ? 'controls.unmute' : 'controls.mute');

  const camBtn = $('btn-cam');
  camBtn.disabled = cam === 'none' || app.stopped;
  camBtn.setAttribute('aria-pressed', String(cam === 'off'));
  camBtn.querySelector('.control-label').textContent = t(cam === 'off' ? 'controls.startVideo' : 'controls.stopVideo');

  const sharing = !!app.screenTrack;
  const screenBtn = $('btn-screen');
  screenBtn.disabled = app.stopped || !app.canPublish || !!app.screenStarting;
  screenBtn.setAttribute('aria-pressed', String(sharing));
  screenBtn.querySelector('.control-label').textContent = t(sharing ? 'controls.stopShare' : 'controls.share');

  $('btn-stats').setAttribute('aria-pressed', String(app.statsOn));
  $('btn-leave').disabled = app.stopped;
  renderDenoise();
  renderBlur();
  renderCaptions();
  renderHostControls();
}

// toggleLocal mutes or unmutes our track of the given kind and tells the others.
export function toggleLocal(kind) {
  const track = localTrack(kind);
  if (!track) return;
  const s = app.session;
  const id = s ? s.wireId(track) : track.id; // the id the server knows it by (see Session.replaceTrack)
  if (!track.enabled && app.adminMuted.has(id)) {
    // The server keeps it muted whatever we do, until the host unmutes it: do not pretend otherwise.
    showBanner('moderation', t('mod.hostMutedYou'), { kind: 'warn' });
    return;
  }
  track.enabled = !track.enabled;
  // Before the first publish answer the server does not know the track yet; Session.syncMuteState sends it then.
  if (s && s.publishAnswered) s.send({ type: 'mute', track: id, muted: !track.enabled });
  renderLocal();
}

export function stopLocalMedia() {
  stopScreen();
  if (!app.localStream) return;
  for (const t of app.localStream.getTracks()) t.stop();
  app.localTile.video.srcObject = null;
}

// ---------------------------------------------------------------------------------------------------------
// Screen share
// ---------------------------------------------------------------------------------------------------------

// shareScreen asks the browser for a screen, window or tab (with its sound where the browser offers it) and
// publishes it. It resolves to true once sharing, false when the browser cannot, the user cancelled or capture
// failed (a banner then says why). Never rejects.
export function shareScreen() {
  if (app.screenTrack) return Promise.resolve(true);
  if (!app.screenStarting) {
    app.screenStarting = startScreen().finally(() => {
      app.screenStarting = null;
      renderLocal();
    });
    renderLocal();
  }
  return app.screenStarting;
}

export async function startScreen() {
  if (app.stopped) return false;
  if (!app.canPublish) {
    showBanner('screen', t('screen.noPublish'), { kind: 'warn' });
    return false;
  }
  const md = navigator.mediaDevices;
  if (!md || !md.getDisplayMedia) {
    showBanner('screen', t('screen.unsupported'), { kind: 'warn' });
    return false;
  }
  let stream;
  try {
    stream = await md.getDisplayMedia(SCREEN_CONSTRAINTS);
  } catch (err) {
    console.error('sfu: getDisplayMedia failed:', err.name, err.message);
    const name = (err && err.name) || 'Error';
    const text = name === 'NotAllowedError'
      ? t('screen.cancelled', { name })
      : t('screen.failed', { detail: `${name}${err && err.message ? ': ' + err.message : ''}` });
    showBanner('screen', text, { kind: name === 'NotAllowedError' ? 'warn' : 'error' });
    return false;
  }
  const track = stream.getVideoTracks()[0];
  const audio = track ? stream.getAudioTracks()[0] || null : null; // the shared sound, where the browser gave it
  for (const t of stream.getTracks()) {
    if (t !== track && t !== audio) t.stop();
  }
  if (!track || app.stopped) {
    if (track) track.stop(); // the page ended while the picker was open
    if (audio) audio.stop();
    if (!track) showBanner('screen', t('screen.noPicture'), { kind: 'error' });
    return false;
  }
  hideBanner('screen');
  track.contentHint = 'detail'; // text and lines: keep the resolution, drop frames if need be
  // The browser's own "Stop sharing" button ends the track.
  track.addEventListener('ended', () => {
    if (app.screenTrack === track) stopScreen();
  });
  if (audio) {
    // The sound can end alone (the shared tab closes its audio): take it off the connection then.
    audio.addEventListener('ended', () => {
      if (app.screenAudioTrack !== audio) return;
      app.screenAudioTrack = null;
      if (app.session) app.session.unpublishTrack(audio);
    });
  }
  app.screenTrack = track;
  app.screenAudioTrack = audio;
  app.screenStream = new MediaStream(audio ? [track, audio] : [track]);
  if (app.session) app.session.publishScreen();
  renderLocal();
  return true;
}

// stopScreen ends our screen share and takes it off the publish connection. Resolves to true if one ran.
export async function stopScreen() {
  const track = app.screenTrack;
  if (!track) return false;
  const audio = app.screenAudioTrack;
  app.screenTrack = null;
  app.screenAudioTrack = null;
  app.screenStream = null;
  if (app.session) app.session.unpublishTrack(track);
  track.stop();
  if (audio) {
    if (app.session) app.session.unpublishTrack(audio);
    audio.stop();
  }
  renderLocal();
  return true;
}

export function toggleScreen() {
  if (app.screenTrack) stopScreen();
  else shareScreen();
}

// showLocalMedia shows the camera in our tile once it started (app.mediaReady).
export async function showLocalMedia() {
  const stream = await app.mediaReady;
  if (!stream) return;
  if (app.stopped) {
    for (const t of stream.getTracks()) t.stop(); // the page ended while the camera was starting
    return;
  }
  app.localStream = stream;
  app.localTile.video.srcObject = stream;
  playVideo(app.localTile.video);
  for (const track of stream.getTracks()) {
    track.addEventListener('ended', renderLocal);
  }
  renderLocal();
}
