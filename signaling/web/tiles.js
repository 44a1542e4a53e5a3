// @ts-check
// Video tiles: the element of a participant's camera (with its sound), our self-view or a screen share.

import { config } from './config.js';
import { t } from './i18n.js';
import { addQualityBadge } from './quality.js';
import { addTileActions } from './stage.js';
import { app } from './store.js';
import { hideBanner, showBanner } from './ui.js';

export const ICON_PATHS = {
  mic: 'M12 14a3 3 0 0 0 3-3V5a3 3 0 0 0-6 0v6a3 3 0 0 0 3 3zm5-3a5 5 0 0 1-10 0H5a7 7 0 0 0 6 6.92V21h2v-3.08A7 7 0 0 0 19 11h-2z',
  cam: 'M17 10.5V7a1 1 0 0 0-1-1H4a1 1 0 0 0-1 1v10a1 1 0 0 0 1 1h12a1 1 0 0 0 1-1v-3.5l4 4v-11l-4 4z',
  screen: 'M4 4h16a1 1 0 0 1 1 1v11a1 1 0 0 1-1 1h-6v2h3v2H7v-2h3v-2H4a1 1 0 0 1-1-1V5a1 1 0 0 1 1-1zm1 2v9h14V6H5z',
  stats: 'M4 20V11h3v9H4zm6.5 0V4h3v16h-3zM17 20v-6h3v6h-3z',
  denoise: 'M2 10.5h2v3H2zm4-4h2v11H6zm4-4h2v19h-2zm4 6h2v7h-2zm4-2h2v11h-2z',
  captions: 'M4 5h16a1 1 0 0 1 1 1v12a1 1 0 0 1-1 1H4a1 1 0 0 1-1-1V6a1 1 0 0 1 1-1zm1 2v10h14V7H5zm2 3h4v1.5H8.5' +
    'v1H11V14H7v-4zm6 0h4v1.5h-2.5v1H17V14h-4v-4z',
  download: 'M11 4h2v8.17l2.59-2.58L17 11l-5 5-5-5 1.41-1.41L11 12.17V4zM5 18h14v2H5z',
  settings: 'M3 6h10v2H3zm14 0h4v2h-4zm-3-2h2v6h-2zM3 16h4v2H3zm8 0h10v2H11zm-3-2h2v6H8z',
  lock: 'M7 10V8a5 5 0 0 1 10 0v2h1a1 1 0 0 1 1 1v9a1 1 0 0 1-1 1H6a1 1 0 0 1-1-1v-9a1 1 0 0 1 1-1h1zm2 0h6V8a3 3 0 0 0-6 0v2z',
  keyboard: 'M3 6h18a1 1 0 0 1 1 1v10a1 1 0 0 1-1 1H3a1 1 0 0 1-1-1V7a1 1 0 0 1 1-1zm1 2v8h16V8H4zm1 1h2v2H5zm3 ' +
    '0h2v2H8zm3 0h2v2h-2zm3 0h2v2h-2zm3 0h2v2h-2zM7 13h10v2H7z',
};

// icon builds a small SVG icon with a slash that CSS shows when the device is off.
export function icon(name) {
  const ns = 'http://www.w3.org/2000/svg';
  const svg = document.createElementNS(ns, 'svg');
  svg.setAttribute('viewBox', '0 0 24 24');
  svg.setAttribute('aria-hidden', 'true');
  svg.classList.add('icon');
  const path = document.createElementNS(ns, 'path');
  path.setAttribute('d', ICON_PATHS[name]);
  const slash = document.createElementNS(ns, 'line');
  for (const [k, v] of Object.entries({ x1: 3, y1: 3, x2: 21, y2: 21 })) slash.setAttribute(k, String(v));
  slash.classList.add('slash');
  svg.append(path, slash);
  return svg;
}

export function initials(name) {
  const parts = String(name || '?').trim().split(/\s+/).filter(Boolean);
  const letters = parts.slice(0, 2).map((p) => Array.from(p)[0] || '');
  return (letters.join('') || '?').toUpperCase();
}

// createTile builds a tile: a participant's camera (with its sound), our self-view (local) or a remote screen
// share (screen, silent: the participant's sound plays in their camera tile).
export function createTile({ label, local = false, screen = false }) {
  const el = document.createElement('div');
  el.className = 'tile';
  if (local) el.classList.add('local');
  if (screen) el.classList.add('screen');

  const video = document.createElement('video');
  video.autoplay = true;
  video.playsInline = true;
  video.muted = local || screen; // self-view never plays our own microphone

  const avatar = document.createElement('div');
  avatar.className = 'avatar';

  const plate = document.createElement('div');
  plate.className = 'nameplate';
  const nameEl = document.createElement('span');
  nameEl.className = 'name';
  const indicators = document.createElement('span');
  indicators.className = 'indicators';
  const micEl = document.createElement('span');
  micEl.className = 'indicator mic';
  micEl.append(icon('mic'));
  const camEl = document.createElement('span');
  camEl.className = 'indicator cam';
  camEl.append(icon('cam'));
  indicators.append(micEl, camEl);
  // Shown while the server transcribes the participant's microphone for live captions (see renderTranscribed).
  const transcribedEl = document.createElement('span');
  transcribedEl.className = 'badge transcribed-badge';
  transcribedEl.lang = config.ui;
  transcribedEl.textContent = t('transcribed');
  transcribedEl.title = t('transcribed');
  transcribedEl.setAttribute('aria-label', t('transcribed'));
  transcribedEl.hidden = true;
  plate.append(nameEl, transcribedEl, indicators);

  const statsEl = document.createElement('div');
  statsEl.className = 'stats-overlay';
  statsEl.setAttribute('aria-hidden', 'true');

  // The live caption of what the participant says (see showCaption), over the bottom of the video.
  const captionEl = document.createElement('div');
  captionEl.className = 'caption';
  captionEl.hidden = true;
  const captionText = document.createElement('span');
  captionText.className = 'caption-text';
  captionEl.append(captionText);

  el.append(video, avatar, captionEl, plate, statsEl);
  const caption = { el: captionEl, textEl: captionText, timer: null };
  const tile = { el, video, avatar, nameEl, micEl, camEl, transcribedEl, statsEl, caption, reloadPending: false };
  setTileName(tile, label);
  setTileIndicators(tile, 'none', 'none');
  addTileActions(tile); // pin and full screen (stage.js)
  if (!local) addQualityBadge(tile); // connection quality (quality.js)
  return tile;
}

export function setTileName(tile, label) {
  tile.nameEl.textContent = label;
  tile.avatar.textContent = initials(label);
  tile.el.title = label;
}

// setTileTranscribed shows or hides the tile's transcription badge.
export function setTileTranscribed(tile, on) {
  tile.transcribedEl.hidden = !on;
  tile.el.dataset.transcribed = String(on);
}

// setTileIndicators: mic and cam are 'on', 'off' (muted) or 'none' (not published).
export function setTileIndicators(tile, mic, cam) {
  tile.el.dataset.mic = mic;
  tile.el.dataset.cam = cam;
  const words = { on: 'On', off: 'Off', none: 'None' };
  tile.micEl.title = t(`tile.mic${words[mic]}`);
  tile.camEl.title = t(`tile.cam${words[cam]}`);
  tile.micEl.setAttribute('aria-label', tile.micEl.title);
  tile.camEl.setAttribute('aria-label', tile.camEl.title);
}

// reloadTile re-attaches the participant's MediaStream so the element picks up added or removed tracks. It is
// deferred to a task so that the several track events of one negotiation cause a single reload.
export function reloadTile(tile, stream) {
  if (tile.reloadPending) return;
  tile.reloadPending = true;
  setTimeout(() => {
    tile.reloadPending = false;
    if (!tile.el.isConnected) return;
    const hasTracks = stream.getTracks().length > 0;
    tile.video.srcObject = hasTracks ? stream : null;
    if (hasTracks) playVideo(tile.video);
  }, 0);
}

export function playVideo(video) {
  const p = video.play();
  if (!p) return;
  p.catch((err) => {
    if (err.name === 'NotAllowedError' && !video.muted) {
      onAutoplayBlocked(video);
    } else if (err.name !== 'AbortError') {
      console.error('sfu: video playback failed:', err);
    }
  });
}

// onAutoplayBlocked keeps the picture going muted and offers a button that turns the sound on.
export function onAutoplayBlocked(video) {
  video.muted = true;
  video.play().catch(() => {});
  showBanner('autoplay', t('autoplay.blocked'), {
    kind: 'warn',
    action: {
      label: t('autoplay.enable'),
      onClick: () => {
        for (const p of app.participants.values()) {
          p.tile.video.muted = false;
          p.tile.video.play().catch((err) => console.error('sfu: playback failed:', err));
        }
        hideBanner('autoplay');
      },
    },
  });
}
