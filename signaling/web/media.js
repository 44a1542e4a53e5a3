// @ts-check
// Local media: camera and microphone (with their buttons), and our screen share.

import { renderCaptions } from './captions.js';
import { SCREEN_CONSTRAINTS, VIDEO_SIZES, config } from './config.js';
import { renderDenoise } from './denoise.js';
import { renderHostControls } from './moderation.js';
import { app } from './store.js';
import { playVideo, setTileIndicators } from './tiles.js';
import { $, hideBanner, showBanner } from './ui.js';

export function videoConstraints() {
  const size = VIDEO_SIZES[config.res];
  return { width: { ideal: size.width }, height: { ideal: size.height }, frameRate: { ideal: 30 } };
}

export function describeMediaError(err, what) {
  const name = (err && err.name) || 'Error';
  switch (name) {
    case 'NotAllowedError':
    case 'SecurityError':
      return `${what} permission was denied (${name})`;
    case 'NotFoundError':
    case 'OverconstrainedError':
      return `no ${what.toLowerCase()} was found (${name})`;
    case 'NotReadableError':
      return `the ${what.toLowerCase()} is in use by another application (${name})`;
    default:
      return `the ${what.toLowerCase()} could not be started (${name}${err && err.message ? ': ' + err.message : ''})`;
  }
}

export function capitalize(s) {
  return s.charAt(0).toUpperCase() + s.slice(1);
}

// startMedia asks for camera and microphone, falling back to the microphone alone (then the camera alone).
// It resolves to null when nothing can be captured: the page then joins as a viewer.
export async function startMedia() {
  if (!config.publish) return null; // ?publish=0: watch only
  const md = navigator.mediaDevices;
  if (!md || !md.getUserMedia) {
    showBanner('media', 'Camera and microphone are not available on this page (an https:// address is needed). ' +
      'You joined as a viewer.', { kind: 'warn' });
    return null;
  }
  let firstErr;
  try {
    return await md.getUserMedia({ audio: true, video: videoConstraints() });
  } catch (err) {
    firstErr = err;
    console.error('sfu: getUserMedia failed:', err.name, err.message);
  }
  try {
    const stream = await md.getUserMedia({ audio: true });
    showBanner('media', `${capitalize(describeMediaError(firstErr, 'Camera'))}. You joined with your microphone only.`,
      { kind: 'warn' });
    return stream;
  } catch (err) {
    // No microphone either; maybe a camera without a microphone.
  }
  try {
    const stream = await md.getUserMedia({ video: videoConstraints() });
    showBanner('media', `${capitalize(describeMediaError(firstErr, 'Microphone'))}. You joined with your camera only.`,
      { kind: 'warn' });
    return stream;
  } catch (err) {
    // Nothing at all.
  }
  showBanner('media', `${capitalize(describeMediaError(firstErr, 'Camera/microphone'))}. ` +
    'You joined as a viewer: the others cannot see or hear you.', { kind: 'error' });
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

  const micBtn = $('btn-mic');
  micBtn.disabled = mic === 'none' || app.stopped;
  micBtn.setAttribute('aria-pressed', String(mic === 'off'));
  micBtn.querySelector('.control-label').textContent = mic === 'off' ? 'Unmute' : 'Mute';

  const camBtn = $('btn-cam');
  camBtn.disabled = cam === 'none' || app.stopped;
  camBtn.setAttribute('aria-pressed', String(cam === 'off'));
  camBtn.querySelector('.control-label').textContent = cam === 'off' ? 'Start video' : 'Stop video';

  const sharing = !!app.screenTrack;
  const screenBtn = $('btn-screen');
  screenBtn.disabled = app.stopped || !app.canPublish || !!app.screenStarting;
  screenBtn.setAttribute('aria-pressed', String(sharing));
  screenBtn.querySelector('.control-label').textContent = sharing ? 'Stop sharing' : 'Share screen';

  $('btn-stats').setAttribute('aria-pressed', String(app.statsOn));
  $('btn-leave').disabled = app.stopped;
  renderDenoise();
  renderCaptions();
  renderHostControls();
}

// toggleLocal mutes or unmutes our track of the given kind and tells the others.
export function toggleLocal(kind) {
  const track = localTrack(kind);
  if (!track) return;
  if (!track.enabled && app.adminMuted.has(track.id)) {
    // The server keeps it muted whatever we do, until the host unmutes it: do not pretend otherwise.
    showBanner('moderation', 'The room\'s host muted you: you can unmute once the host unmutes you.', { kind: 'warn' });
    return;
  }
  track.enabled = !track.enabled;
  const s = app.session;
  // Before the first publish answer the server does not know the track yet; Session.syncMuteState sends it then.
  if (s && s.publishAnswered) s.send({ type: 'mute', track: track.id, muted: !track.enabled });
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
    showBanner('screen', 'Your token does not allow publishing: you cannot share your screen.', { kind: 'warn' });
    return false;
  }
  const md = navigator.mediaDevices;
  if (!md || !md.getDisplayMedia) {
    showBanner('screen', 'Screen sharing is not available in this browser (or the page is not on https://).',
      { kind: 'warn' });
    return false;
  }
  let stream;
  try {
    stream = await md.getDisplayMedia(SCREEN_CONSTRAINTS);
  } catch (err) {
    console.error('sfu: getDisplayMedia failed:', err.name, err.message);
    const name = (err && err.name) || 'Error';
    const text = name === 'NotAllowedError'
      ? `Screen sharing was cancelled or is not allowed (${name}).`
      : `Could not share your screen (${name}${err && err.message ? ': ' + err.message : ''}).`;
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
    else showBanner('screen', 'The browser shared no picture of the screen.', { kind: 'error' });
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
