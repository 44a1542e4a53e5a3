// Browser client of the SFU meeting page (room.html).
//
// One WebSocket carries the signaling described in signaling/PROTOCOL.md. Two peer connections per session:
//   publish   – we offer, the server answers; carries our camera and microphone, and our screen while we share it.
//   subscribe – the server offers, we answer; carries every remote participant's tracks.
// A "session" is one WebSocket plus its two peer connections. When the socket is lost the session is thrown
// away whole and a new one is started with exponential backoff, re-publishing the same local MediaStream (and the
// screen share, if one is running).
// With several nodes in a region the socket may be redirected: the server answers join with `redirect` and the
// page sends the same join to that node at once. `joined.nodes` lists the region's other nodes; when the node
// goes away the reconnect attempts take the last node and those in turn. Everything the page needs is loaded
// by then (app.js and style.css): the node that served the page may be the one that died. A new session joins with
// the latest token the server sent (`token`), so a meeting outlasts the token the page was opened with.
'use strict';

const PING_INTERVAL_MS = 5000;
const PONG_TIMEOUT_MS = 10000;
const OPEN_TIMEOUT_MS = 10000;
const FAILOVER_OPEN_TIMEOUT_MS = 4000; // ...shorter while other nodes of the region wait their turn
const BACKOFF_FIRST_MS = 300; // the first retry is quick: in a region another node can take over at once
const BACKOFF_MAX_MS = 10000;
const MAX_ERROR_TOASTS = 4;
const TILE_REPORT_DELAY_MS = 200; // tile size reports wait for resizing to settle
const STAGE_HOLD_MS = 3000; // after silence the last speaker keeps the stage this long, so the layout does not flicker
const STRIP_MAX_COLS = 6; // stage layout: tiles per row of the strip under the stage...
const STRIP_MIN_TILE_PX = 180; // ...fewer when the page is too narrow for them to be this wide
const STATS_INTERVAL_MS = 1000;
const CAPTION_CLEAR_MS = 5000; // a final caption stays this long after the last one of its speaker...
const CAPTION_FADE_MS = 600; // ...then fades out over this long (see .caption.fading in style.css)
const CAPTION_STALE_MS = 10000; // a partial caption with no news for this long is cleared (the final never came)
const CAPTION_FINALS_KEPT = 50; // final captions kept in window.sfu.captions.finals
const ICE_DISCONNECTED_GRACE_MS = 2000; // a connection "disconnected" this long gets an ICE restart
const ICE_RESTART_TIMEOUT_MS = 10000; // an ICE restart not connected after this long has failed
const ICE_RESTART_BACKOFF_FIRST_MS = 2000; // between failed ICE restarts: 2 s, 4 s, 8 s ...
const ICE_RESTART_BACKOFF_MAX_MS = 30000; // ... at most 30 s
const ICE_RESTART_MAX_ATTEMPTS = 3; // then the session is thrown away and a new one joins
const BUSY_RETRY_MS = 2000; // a join refused as busy is tried again after this long...
const BUSY_RETRY_MAX = 5; // ...this many times
const MAX_REDIRECTS = 3; // redirects followed in a row (with no join and no failure between them): more is a loop

// Languages the captions picker offers; '' turns captions off. The server translates into those it can.
const CAPTION_LANGUAGES = [
  { tag: '', label: 'Off' },
  { tag: 'en', label: 'English' },
  { tag: 'zh-HK', label: 'Cantonese (Traditional, HK)' },
  { tag: 'zh-Hant', label: 'Chinese (Traditional)' },
  { tag: 'zh-Hans', label: 'Chinese (Simplified)' },
  { tag: 'zh', label: 'Mandarin (Simplified)' },
  { tag: 'es', label: 'Spanish' },
  { tag: 'ja', label: 'Japanese' },
  { tag: 'ko', label: 'Korean' },
  { tag: 'fr', label: 'French' },
];
// The page's own words in the languages ?lang= picks (default en): so far the transcription badge.
const UI_STRINGS = {
  en: { transcribed: 'Transcribed' },
  'zh-HK': { transcribed: '正在轉錄' },
  'zh-CN': { transcribed: '正在转录' },
};
// A BCP 47 language tag as the server accepts it (sfu/captions.go).
const LANGUAGE_TAG = /^[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8}){0,2}$/;

const SCREEN_CONSTRAINTS = {
  video: { frameRate: 15, width: { ideal: 1920 }, height: { ideal: 1080 } },
  audio: false,
};
const SCREEN_MAX_BITRATE = 2_500_000; // one encoding, no simulcast: text must stay sharp

// The tab's sessionStorage keeps the token it was opened with under this prefix and the room's name (the
// address does not: see takeToken).
const TOKEN_STORAGE_PREFIX = 'sfu.token:';

const VIDEO_SIZES = {
  '720': { width: 1280, height: 720 },
  '1080': { width: 1920, height: 1080 },
};

// ---------------------------------------------------------------------------------------------------------
// Configuration from the URL: /room/{room}?name=N&token=T&res=720|1080&simulcast=0&codec=h264&publish=0
//   &denoise=1|0|rnnoise|speex (server-side noise suppression on, off, or on with that engine)
//   &captions=LANG|off (live captions in that language from the start) &spoken=LANG (the language we speak)
//   &lang=en|zh-HK|zh-CN (the page's language, see UI_STRINGS)
// ---------------------------------------------------------------------------------------------------------

function readConfig() {
  const params = new URLSearchParams(location.search);
  const segments = location.pathname.split('/').filter(Boolean);
  const last = segments.length > 1 ? segments[segments.length - 1] : '';
  let room = last;
  try {
    room = decodeURIComponent(last);
  } catch (err) {
    // A malformed escape: keep the raw segment.
  }

  // The token leaves the address at once, so that it stays out of the history (and of what is shared from the
  // address bar); the tab keeps it for reloads, "Rejoin" and reconnects.
  const token = takeToken(params, room);
  let name = (params.get('name') || '').trim();
  if (!name) {
    name = 'Guest-' + String(Math.floor(Math.random() * 10000)).padStart(4, '0');
    // Keep the chosen name in the address so that a reload or "Rejoin" keeps it.
    params.set('name', name);
  }
  const query = params.toString();
  history.replaceState(null, '', `${location.pathname}${query ? '?' + query : ''}${location.hash}`);

  return {
    room,
    name,
    token,
    res: params.get('res') === '720' ? '720' : '1080',
    simulcast: params.get('simulcast') !== '0',
    publish: params.get('publish') !== '0',
    codec: (params.get('codec') || 'vp8').toLowerCase() === 'h264' ? 'video/H264' : 'video/VP8',
    denoise: parseDenoiseParam(params.get('denoise')),
    captions: parseCaptionsParam(params.get('captions')),
    spoken: normalizeLanguage(params.get('spoken')) || '',
    ui: parseUiLanguage(params.get('lang')),
  };
}

// parseUiLanguage: one of UI_STRINGS' languages (tags compare without regard to case), else en.
function parseUiLanguage(value) {
  const v = String(value || '').trim().toLowerCase();
  return Object.keys(UI_STRINGS).find((k) => k.toLowerCase() === v) || 'en';
}

// tr is the page's word for key in its language (English when that language lacks it).
function tr(key) {
  return (UI_STRINGS[config.ui] || {})[key] || UI_STRINGS.en[key] || key;
}

// takeToken takes ?token= out of params and keeps it in this tab's sessionStorage, by room; without one in the
// address it is the token kept before (a reload), or '' (dev mode mints its own).
function takeToken(params, room) {
  const key = TOKEN_STORAGE_PREFIX + room;
  const token = params.get('token') || '';
  params.delete('token');
  try {
    if (token) sessionStorage.setItem(key, token);
    else return sessionStorage.getItem(key) || '';
  } catch (err) {
    // Storage may be disabled: the token then lives as long as the page.
  }
  return token;
}

// onToken keeps a fresh token the server sent: reconnects (and, but in dev mode, a reload) join with it.
function onToken(session, msg) {
  if (typeof msg.token !== 'string' || !msg.token) return;
  app.token = msg.token;
  session.token = msg.token; // a redirect of this session follows with it
  window.sfu.tokenRefreshes++;
  if (usingDevToken) return;
  try {
    sessionStorage.setItem(TOKEN_STORAGE_PREFIX + config.room, msg.token);
  } catch (err) {
    // Storage may be disabled.
  }
}

// forgetToken drops the kept token once the server has refused it: a reload asks for a fresh link.
function forgetToken() {
  try {
    sessionStorage.removeItem(TOKEN_STORAGE_PREFIX + config.room);
  } catch (err) {
    // Storage may be disabled.
  }
}

// normalizeLanguage reads a captions language: '' for off, the tag itself, or null when it is not a tag.
function normalizeLanguage(value) {
  if (value === null || value === undefined) return null;
  const v = String(value).trim();
  if (['', '0', 'off', 'none', 'false', 'no'].includes(v.toLowerCase())) return '';
  return LANGUAGE_TAG.test(v) ? v : null;
}

// parseCaptionsParam reads ?captions=: null when absent (or not a language tag), '' for off, else the language.
function parseCaptionsParam(value) {
  if (value === null) return null;
  const lang = normalizeLanguage(value);
  if (lang === null) console.warn('sfu: ?captions= is not a language tag:', value);
  return lang;
}

// parseDenoiseParam reads ?denoise=: null when absent, else the choice {enabled, engine} it asks for. An engine
// name the server does not know is refused by the server (bad_request), which the page then shows.
function parseDenoiseParam(value) {
  if (value === null) return null;
  const v = value.trim().toLowerCase();
  if (['0', 'off', 'false', 'no'].includes(v)) return { enabled: false, engine: '' };
  if (['', '1', 'on', 'true', 'yes'].includes(v)) return { enabled: true, engine: '' };
  return { enabled: true, engine: v.slice(0, 32) };
}

const config = readConfig();
const usingDevToken = !config.token;

// Everything that outlives a single session.
const app = {
  state: 'connecting',
  session: null, // the current Session, or null between attempts
  stopped: false, // left, replaced or a fatal error: never reconnect again
  backoffMs: BACKOFF_FIRST_MS,
  joinedURL: '', // the signaling URL of the last session that joined ('' before the first): retried first
  nodes: [], // the region's other nodes (joined.nodes of the last session that joined): tried in turn after it
  attempt: 0, // reconnect attempts since the last joined: picks the URL (round robin, see nextSignalingURL)
  redirectsInRow: 0, // redirects followed since the last joined or failed attempt (see MAX_REDIRECTS)
  reconnectTimer: null,
  // The latest token the server sent (a token message), '' before the first: the next session joins with it
  // instead of the page's, which may have expired by then (see onToken).
  token: '',
  countdownTimer: null,
  localStream: null,
  mediaReady: null, // Promise<MediaStream|null>, started once per page
  localTile: null,
  localName: config.name,
  canPublish: true, // false once the server said our token may not publish
  screenTrack: null, // our screen share while it runs; outlives sessions like localStream
  screenStream: null, // the MediaStream it is published in (its own, not the camera's)
  screenStarting: null, // Promise<boolean> while the browser's screen picker is open
  participants: new Map(), // participant id -> remote participant (see addParticipant)
  goneIds: new Set(), // participants that left during this session; late tracks of theirs are ignored
  screenSeq: 0, // numbers remote screen tiles in order of arrival: the latest one takes the stage
  speakers: [], // the last active_speakers list
  stageHolder: null, // participant id of the speaker on the stage, kept STAGE_HOLD_MS after silence
  stageTimer: null,
  trackTiles: new Map(), // received MediaStreamTrack -> the tile it is shown in (for the stats overlay)
  statsOn: false,
  statsTimer: null,
  statsBusy: false,
  statsSession: null, // the session whose counters statsPrev holds
  statsPrev: new Map(), // stats report key -> counters at the previous refresh
  warnedTrackSource: false,
  errorToasts: [],
  denoise: {
    choice: null, // {enabled, engine}: what the user asked for (URL, last choice, button); null: the room's default
    tracks: new Map(), // our published track id -> processors the server says run on it (this session)
    pending: false, // a denoise request went out and no answer came yet
    error: '', // why the server refused the last request, '' if it did not
    refused: '', // 'e2ee' or 'unavailable': the server cannot denoise here at all; the button is then off
  },
  captions: {
    choice: null, // the language we read captions in ('' off), as the user asked (URL, last choice, picker)
    available: true, // false while the server says its captions engine fails, or refused captions here
    reason: '', // why captions are unavailable
    error: '', // why the server refused the last captions request, '' if it did not
    last: null, // the last caption received (see onCaption)
    finals: [], // the last CAPTION_FINALS_KEPT final captions
    strip: new Map(), // participant id -> caption line in the strip (speakers without a tile: ourselves, ...)
  },
  transcribed: new Set(), // participant ids whose speech the server transcribes, as its last transcription said
  isAdmin: false, // our token's admin claim, as the last joined said: the host controls show
  roomLocked: false, // as the server last said (room_state)
  adminMuted: new Set(), // ids of our tracks the host muted and has not unmuted (this session)
  publishRevoked: false, // the host took away our right to publish (set_role) and has not given it back
  busyTries: 0, // joins refused as busy since the last joined (on any socket: the server closes one that has
  // not joined within 10 s, and the page then tries on a new one)
};

// Test hook used by the automated browser tests; keep the shape stable.
window.sfu = {
  state: app.state,
  participantId: null,
  stats: subscribeStats,
  publishStats,
  speakers: [], // the last active_speakers list: [{participant_id, level}], loudest first
  shareScreen, // () => Promise<boolean>: true once sharing (false: refused or failed, with a banner)
  stopScreen, // () => Promise<boolean>: true if a share was stopped
  // Server-side noise suppression as the server last confirmed it: enabled when processors is non-empty;
  // error says why the last request was refused ('' if it was not). See setDenoiseState.
  denoise: { enabled: false, processors: [], error: '', pending: false, requested: null, engine: '' },
  setDenoise, // (enabled, engine?) => boolean: asks for noise suppression; true if sent now, false if at join
  // Live captions: lang is what we read ('' off); last is the last caption received ({participant, text, final,
  // translations, shown}), finals the last 50 final ones. See setCaptionsState.
  captions: { lang: '', spoken: '', available: true, reason: '', error: '', last: null, finals: [] },
  setCaptions, // (lang) => boolean: reads captions in lang ('' off); true if sent now, false if at join
  transcript, // (lang?) => Promise<string>: the room's transcript as WebVTT, fetched as the download button does
  downloadTranscript, // () => Promise<boolean>: saves the transcript as a .vtt file; false (with a notice) if not
  transcribed: [], // participant ids the server transcribes now, as its last transcription message said (this session)
  joins: 0, // joined messages received since the page opened (a full reconnect joins again)
  // ICE restarts started (each connection counts apart) and each connection's ICE state: {state, restarting,
  // attempts, ufrag (the server's ICE username fragment, new after each restart)}. See Session.renderIce.
  iceRestarts: 0,
  ice: { publish: null, subscribe: null },
  restartIce, // () => boolean: restarts ICE on both connections now; false if none could restart
  isAdmin: false, // our token is a room administrator's
  roomLocked: false, // the room is locked (room_state)
  moderation: null, // the last moderation message: {action, track_id, publish, by}
  byeReason: '', // the reason of the last bye ('' until one comes)
  joinError: '', // the code of a refused join that ended the page (room_locked, room_full, busy, residency,
  // redirect_loop), '' if none
  wsURL: '', // the URL of the current (or last) signaling WebSocket
  redirects: 0, // redirects followed since the page opened
  nodes: [], // the region's other nodes as the last joined listed them (WebSocket URLs)
  tokenRefreshes: 0, // fresh tokens the server sent (token messages) since the page opened
  admin: adminAction, // (action, participant?, extra?) => boolean: sends an admin message (hosts only)
};

const $ = (id) => document.getElementById(id);

// ---------------------------------------------------------------------------------------------------------
// Status line, banners and toasts
// ---------------------------------------------------------------------------------------------------------

const STATE_LABELS = {
  connecting: 'Connecting…',
  joined: 'Connected',
  reconnecting: 'Reconnecting…',
  left: 'Left',
  error: 'Error',
};

function setState(state) {
  app.state = state;
  window.sfu.state = state;
  document.body.dataset.state = state;
  $('status-text').textContent = STATE_LABELS[state] || state;
  updateCount();
}

function updateCount() {
  const n = app.participants.size + 1;
  $('participant-count').textContent = `${n} participant${n === 1 ? '' : 's'}`;
  updateLayout();
}

// showBanner shows (or replaces) the banner named key. kind: 'info' | 'warn' | 'error'.
function showBanner(key, text, { kind = 'info', dismissable = true, action = null } = {}) {
  let el = document.querySelector(`.banner[data-key="${CSS.escape(key)}"]`);
  if (!el) {
    el = document.createElement('div');
    el.dataset.key = key;
    $('banners').append(el);
  }
  el.className = `banner banner-${kind}`;
  el.setAttribute('role', kind === 'error' ? 'alert' : 'status');
  el.replaceChildren();

  const textEl = document.createElement('span');
  textEl.className = 'banner-text';
  textEl.textContent = text;
  el.append(textEl);

  if (action) {
    const btn = document.createElement('button');
    btn.type = 'button';
    btn.className = 'banner-action';
    btn.textContent = action.label;
    btn.addEventListener('click', action.onClick);
    el.append(btn);
  }
  if (dismissable) {
    const close = document.createElement('button');
    close.type = 'button';
    close.className = 'banner-close';
    close.setAttribute('aria-label', 'Dismiss');
    close.textContent = '×';
    close.addEventListener('click', () => el.remove());
    el.append(close);
  }
  return el;
}

function hideBanner(key) {
  const el = document.querySelector(`.banner[data-key="${CSS.escape(key)}"]`);
  if (el) el.remove();
}

let toastSeq = 0;

// showErrorToast shows a dismissable error, keeping only the last few on screen.
function showErrorToast(text) {
  const el = showBanner(`error-${++toastSeq}`, text, { kind: 'error' });
  app.errorToasts.push(el);
  while (app.errorToasts.length > MAX_ERROR_TOASTS) app.errorToasts.shift().remove();
}

// ---------------------------------------------------------------------------------------------------------
// Tiles
// ---------------------------------------------------------------------------------------------------------

const ICON_PATHS = {
  mic: 'M12 14a3 3 0 0 0 3-3V5a3 3 0 0 0-6 0v6a3 3 0 0 0 3 3zm5-3a5 5 0 0 1-10 0H5a7 7 0 0 0 6 6.92V21h2v-3.08A7 7 0 0 0 19 11h-2z',
  cam: 'M17 10.5V7a1 1 0 0 0-1-1H4a1 1 0 0 0-1 1v10a1 1 0 0 0 1 1h12a1 1 0 0 0 1-1v-3.5l4 4v-11l-4 4z',
  screen: 'M4 4h16a1 1 0 0 1 1 1v11a1 1 0 0 1-1 1h-6v2h3v2H7v-2h3v-2H4a1 1 0 0 1-1-1V5a1 1 0 0 1 1-1zm1 2v9h14V6H5z',
  stats: 'M4 20V11h3v9H4zm6.5 0V4h3v16h-3zM17 20v-6h3v6h-3z',
  denoise: 'M2 10.5h2v3H2zm4-4h2v11H6zm4-4h2v19h-2zm4 6h2v7h-2zm4-2h2v11h-2z',
  captions: 'M4 5h16a1 1 0 0 1 1 1v12a1 1 0 0 1-1 1H4a1 1 0 0 1-1-1V6a1 1 0 0 1 1-1zm1 2v10h14V7H5zm2 3h4v1.5H8.5' +
    'v1H11V14H7v-4zm6 0h4v1.5h-2.5v1H17V14h-4v-4z',
  download: 'M11 4h2v8.17l2.59-2.58L17 11l-5 5-5-5 1.41-1.41L11 12.17V4zM5 18h14v2H5z',
};

// icon builds a small SVG icon with a slash that CSS shows when the device is off.
function icon(name) {
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

function initials(name) {
  const parts = String(name || '?').trim().split(/\s+/).filter(Boolean);
  const letters = parts.slice(0, 2).map((p) => Array.from(p)[0] || '');
  return (letters.join('') || '?').toUpperCase();
}

// createTile builds a tile: a participant's camera (with its sound), our self-view (local) or a remote screen
// share (screen, silent: the participant's sound plays in their camera tile).
function createTile({ label, local = false, screen = false }) {
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
  transcribedEl.textContent = tr('transcribed');
  transcribedEl.title = tr('transcribed');
  transcribedEl.setAttribute('aria-label', tr('transcribed'));
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
  return tile;
}

function setTileName(tile, label) {
  tile.nameEl.textContent = label;
  tile.avatar.textContent = initials(label);
  tile.el.title = label;
}

// setTileTranscribed shows or hides the tile's transcription badge.
function setTileTranscribed(tile, on) {
  tile.transcribedEl.hidden = !on;
  tile.el.dataset.transcribed = String(on);
}

// setTileIndicators: mic and cam are 'on', 'off' (muted) or 'none' (not published).
function setTileIndicators(tile, mic, cam) {
  tile.el.dataset.mic = mic;
  tile.el.dataset.cam = cam;
  const words = { on: 'on', off: 'muted', none: 'not shared' };
  tile.micEl.title = `Microphone ${words[mic]}`;
  tile.camEl.title = `Camera ${words[cam]}`;
  tile.micEl.setAttribute('aria-label', tile.micEl.title);
  tile.camEl.setAttribute('aria-label', tile.camEl.title);
}

// reloadTile re-attaches the participant's MediaStream so the element picks up added or removed tracks. It is
// deferred to a task so that the several track events of one negotiation cause a single reload.
function reloadTile(tile, stream) {
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

function playVideo(video) {
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
function onAutoplayBlocked(video) {
  video.muted = true;
  video.play().catch(() => {});
  showBanner('autoplay', 'The browser blocked the sound of the meeting.', {
    kind: 'warn',
    action: {
      label: 'Enable sound',
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

// ---------------------------------------------------------------------------------------------------------
// Local media
// ---------------------------------------------------------------------------------------------------------

function videoConstraints() {
  const size = VIDEO_SIZES[config.res];
  return { width: { ideal: size.width }, height: { ideal: size.height }, frameRate: { ideal: 30 } };
}

function describeMediaError(err, what) {
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

function capitalize(s) {
  return s.charAt(0).toUpperCase() + s.slice(1);
}

// startMedia asks for camera and microphone, falling back to the microphone alone (then the camera alone).
// It resolves to null when nothing can be captured: the page then joins as a viewer.
async function startMedia() {
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

function localTrack(kind) {
  if (!app.localStream) return null;
  return app.localStream.getTracks().find((t) => t.kind === kind && t.readyState === 'live') || null;
}

function localTrackState(kind) {
  const track = localTrack(kind);
  if (!track) return 'none';
  return track.enabled ? 'on' : 'off';
}

function renderLocal() {
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
function toggleLocal(kind) {
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

function stopLocalMedia() {
  stopScreen();
  if (!app.localStream) return;
  for (const t of app.localStream.getTracks()) t.stop();
  app.localTile.video.srcObject = null;
}

// ---------------------------------------------------------------------------------------------------------
// Screen share
// ---------------------------------------------------------------------------------------------------------

// shareScreen asks the browser for a screen, window or tab and publishes it. It resolves to true once sharing,
// false when the browser cannot, the user cancelled or capture failed (a banner then says why). Never rejects.
function shareScreen() {
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

async function startScreen() {
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
  for (const t of stream.getTracks()) {
    if (t !== track) t.stop(); // we asked for no audio; drop any all the same
  }
  if (!track || app.stopped) {
    if (track) track.stop(); // the page ended while the picker was open
    else showBanner('screen', 'The browser shared no picture of the screen.', { kind: 'error' });
    return false;
  }
  hideBanner('screen');
  track.contentHint = 'detail'; // text and lines: keep the resolution, drop frames if need be
  // The browser's own "Stop sharing" button ends the track.
  track.addEventListener('ended', () => {
    if (app.screenTrack === track) stopScreen();
  });
  app.screenTrack = track;
  app.screenStream = new MediaStream([track]);
  if (app.session) app.session.publishScreen();
  renderLocal();
  return true;
}

// stopScreen ends our screen share and takes it off the publish connection. Resolves to true if one ran.
async function stopScreen() {
  const track = app.screenTrack;
  if (!track) return false;
  app.screenTrack = null;
  app.screenStream = null;
  if (app.session) app.session.unpublishTrack(track);
  track.stop();
  renderLocal();
  return true;
}

function toggleScreen() {
  if (app.screenTrack) stopScreen();
  else shareScreen();
}

// ---------------------------------------------------------------------------------------------------------
// Noise suppression (server side)
// ---------------------------------------------------------------------------------------------------------

// The server denoises our microphone when asked with a denoise message; it answers with an audio_processing
// message per microphone track (which processors run on it), or with an error whose ref is "denoise". The
// user's last choice is kept in localStorage and sent again after each joined, so a reload or a reconnect keeps
// it. ?denoise= in the address wins over the stored choice.

const DENOISE_STORAGE_KEY = 'sfu.denoise';

function loadDenoiseChoice() {
  try {
    const v = JSON.parse(localStorage.getItem(DENOISE_STORAGE_KEY) || 'null');
    if (v && typeof v.enabled === 'boolean') {
      return { enabled: v.enabled, engine: typeof v.engine === 'string' ? v.engine.slice(0, 32) : '' };
    }
  } catch (err) {
    // storage disabled or garbage in it: no stored choice
  }
  return null;
}

function saveDenoiseChoice(choice) {
  try {
    localStorage.setItem(DENOISE_STORAGE_KEY, JSON.stringify(choice));
  } catch (err) {
    // storage may be disabled: the choice then lasts as long as the page
  }
}

// setDenoise is the user's choice (the button, or the test hook): remember it and tell the server. engine
// picks a denoiser by name ('rnnoise', 'speex'); undefined keeps the last one chosen, '' the room's default.
// Returns true if the request went out now, false if it waits for the next joined.
function setDenoise(enabled, engine) {
  const last = app.denoise.choice;
  const choice = {
    enabled: !!enabled,
    engine: typeof engine === 'string' ? engine.trim().toLowerCase().slice(0, 32) : (last && last.engine) || '',
  };
  app.denoise.choice = choice;
  saveDenoiseChoice(choice);
  // An address with ?denoise= would override the choice at the next reload: make it say the same.
  const params = new URLSearchParams(location.search);
  if (params.has('denoise')) {
    params.set('denoise', choice.enabled ? choice.engine || '1' : '0');
    history.replaceState(null, '', `${location.pathname}?${params}${location.hash}`);
    if (!app.stopped) $('rejoin').href = location.href;
  }
  hideBanner('denoise');
  app.denoise.refused = '';
  const sent = sendDenoise(app.session);
  setDenoiseState();
  return sent;
}

// sendDenoise sends the current choice on a joined session.
function sendDenoise(session) {
  const choice = app.denoise.choice;
  if (!choice || !session || session.ended || !session.joined) return false;
  const msg = { type: 'denoise', enabled: choice.enabled };
  if (choice.enabled && choice.engine) msg.engine = choice.engine;
  session.send(msg);
  app.denoise.error = '';
  // The server answers per microphone track it has: none yet (the track is published later) means no answer
  // until then, and none at all for "off".
  app.denoise.pending = app.denoise.tracks.size > 0 || (choice.enabled && !!localTrack('audio') && app.canPublish);
  return true;
}

// confirmedProcessors: the processors that run on our microphone tracks, as the server last said.
function confirmedProcessors() {
  const out = [];
  for (const procs of app.denoise.tracks.values()) {
    for (const name of procs) {
      if (!out.includes(name)) out.push(name);
    }
  }
  return out;
}

// onAudioProcessing: the server says which processors now run on one of our tracks.
function onAudioProcessing(msg) {
  if (typeof msg.track_id !== 'string' || !msg.track_id) return;
  const procs = (Array.isArray(msg.processors) ? msg.processors : []).filter((x) => typeof x === 'string');
  app.denoise.tracks.set(msg.track_id, procs);
  app.denoise.pending = false;
  const choice = app.denoise.choice;
  if (msg.error) {
    app.denoise.error = String(msg.error);
    console.error('sfu: noise suppression refused:', msg.error);
    showBanner('denoise', `Noise suppression is not running: ${msg.error}`, { kind: 'warn' });
  } else if (procs.length > 0 || !choice || !choice.enabled) {
    // What was asked for runs (or the room's default does): any earlier complaint is over.
    app.denoise.error = '';
    app.denoise.refused = '';
    hideBanner('denoise');
  }
  setDenoiseState();
}

// onDenoiseError: the server refused a denoise request (error message with ref "denoise").
function onDenoiseError(msg) {
  const code = msg.code || 'error';
  const text = msg.message || '';
  console.error(`sfu: denoise refused (${code}): ${text}`);
  app.denoise.pending = false;
  app.denoise.error = text ? `${code}: ${text}` : code;
  let notice;
  switch (code) {
    case 'e2ee':
      notice = 'Noise suppression is not available: this room is end-to-end encrypted, so the server cannot ' +
        'process its audio.';
      app.denoise.refused = code;
      break;
    case 'unavailable':
      notice = `Noise suppression is not available on this server (${text || code}).`;
      app.denoise.refused = code;
      break;
    case 'bad_request':
      notice = `Noise suppression was refused: ${text || code}.`;
      // Most likely an engine the server does not know: the next click asks for the room's default instead.
      if (app.denoise.choice && app.denoise.choice.engine) {
        app.denoise.choice = { enabled: app.denoise.choice.enabled, engine: '' };
        saveDenoiseChoice(app.denoise.choice);
      }
      break;
    default:
      notice = `Noise suppression failed (${code}${text ? ': ' + text : ''}).`;
  }
  showBanner('denoise', notice, { kind: 'warn' });
  setDenoiseState();
}

// setDenoiseState publishes the state to the test hook and the button.
function setDenoiseState() {
  const processors = confirmedProcessors();
  const choice = app.denoise.choice;
  window.sfu.denoise = {
    enabled: processors.length > 0,
    processors,
    error: app.denoise.error,
    pending: app.denoise.pending,
    requested: choice ? choice.enabled : null,
    engine: choice ? choice.engine : '',
  };
  renderDenoise();
}

function renderDenoise() {
  const btn = $('btn-denoise');
  if (!btn) return;
  const state = window.sfu.denoise;
  const refused = app.denoise.refused;
  btn.disabled = app.stopped || !app.canPublish || localTrackState('audio') === 'none' || !!refused;
  btn.setAttribute('aria-pressed', String(state.enabled));
  btn.dataset.pending = String(state.pending);
  btn.dataset.error = String(!!state.error);
  let title;
  if (refused === 'e2ee') {
    title = 'Noise suppression is not available: the room is end-to-end encrypted';
  } else if (refused) {
    title = 'Noise suppression is not available on this server';
  } else if (state.pending) {
    title = 'Noise suppression: waiting for the server…';
  } else if (state.enabled) {
    title = `Noise suppression is on (${state.processors.join(', ')}): click to turn it off`;
  } else {
    title = 'Noise suppression is off: click to have the server filter background noise from your microphone';
  }
  btn.title = title;
}

// toggleDenoise: the button asks for the opposite of what it shows (of what was asked, while waiting).
function toggleDenoise() {
  const state = window.sfu.denoise;
  const on = state.pending && state.requested !== null ? state.requested : state.enabled;
  setDenoise(!on);
}

// ---------------------------------------------------------------------------------------------------------
// Live captions
// ---------------------------------------------------------------------------------------------------------

// The server transcribes everyone's speech for the participants that read captions: a captions message says in
// which language we read them ([] off) and, optionally, which language we speak (?spoken=). Captions come as
// caption messages, partial ones while an utterance goes on and a final one (with translations into our
// language, when the server can translate) when it ends. Each shows over the speaker's tile, or in the caption
// strip at the bottom of the stage for speakers without a tile (ourselves). As with noise suppression, the
// user's last choice is kept in localStorage and sent again after each joined; ?captions= wins over it.

const CAPTIONS_STORAGE_KEY = 'sfu.captions';

function loadCaptionsChoice() {
  try {
    const v = JSON.parse(localStorage.getItem(CAPTIONS_STORAGE_KEY) || 'null');
    if (v && typeof v.lang === 'string') return normalizeLanguage(v.lang);
  } catch (err) {
    // storage disabled or garbage in it: no stored choice
  }
  return null;
}

function saveCaptionsChoice(lang) {
  try {
    localStorage.setItem(CAPTIONS_STORAGE_KEY, JSON.stringify({ lang }));
  } catch (err) {
    // storage may be disabled: the choice then lasts as long as the page
  }
}

// setCaptions is the user's choice (the picker, or the test hook): read captions in lang ('' or 'off': no
// captions). Returns true if the request went out now, false if it waits for the next joined (or lang is not a
// language tag).
function setCaptions(lang) {
  const choice = normalizeLanguage(lang);
  if (choice === null) {
    console.error('sfu: not a language tag for captions:', lang);
    return false;
  }
  app.captions.choice = choice;
  saveCaptionsChoice(choice);
  // An address with ?captions= would override the choice at the next reload: make it say the same.
  const params = new URLSearchParams(location.search);
  if (params.has('captions')) {
    params.set('captions', choice || 'off');
    history.replaceState(null, '', `${location.pathname}?${params}${location.hash}`);
    if (!app.stopped) $('rejoin').href = location.href;
  }
  // The server says again if captions cannot run (captions_status or an error).
  hideBanner('captions');
  app.captions.available = true;
  app.captions.reason = '';
  app.captions.error = '';
  if (!choice) clearCaptionLines();
  const sent = sendCaptions(app.session, true);
  setCaptionsState();
  return sent;
}

// sendCaptions sends the current choice on a joined session. After a join (explicit false) it is sent only if
// there is something to say: a new session starts with captions off.
function sendCaptions(session, explicit) {
  const lang = app.captions.choice || '';
  if (!session || session.ended || !session.joined) return false;
  if (!explicit && !lang && !config.spoken) return false;
  const msg = { type: 'captions', languages: lang ? [lang] : [] };
  if (config.spoken) msg.spoken = config.spoken;
  session.send(msg);
  return true;
}

// translationIn finds the translation into lang (tags compare without regard to case).
function translationIn(translations, lang) {
  const want = lang.toLowerCase();
  for (const [k, v] of Object.entries(translations)) {
    if (k.toLowerCase() === want && v) return v;
  }
  return '';
}

// onCaption shows a caption message: a partial replaces the speaker's line as it comes, a final sets it (in our
// language when the server translated it, else as spoken) and stays CAPTION_CLEAR_MS.
function onCaption(msg) {
  const lang = app.captions.choice;
  if (!lang || typeof msg.text !== 'string') return; // captions were turned off: late ones are dropped
  const participant = typeof msg.participant === 'string' ? msg.participant : '';
  const translations = {};
  if (msg.translations && typeof msg.translations === 'object') {
    for (const [k, v] of Object.entries(msg.translations)) {
      if (typeof v === 'string') translations[k] = v;
    }
  }
  const final = msg.final === true;
  const shown = (final && translationIn(translations, lang)) || msg.text;
  const caption = {
    participant,
    track: typeof msg.track === 'string' ? msg.track : '',
    lang: typeof msg.lang === 'string' ? msg.lang : '',
    text: msg.text,
    final,
    start: Number(msg.start) || 0,
    end: Number(msg.end) || 0,
    translations,
    shown,
  };
  app.captions.last = caption;
  if (final) {
    app.captions.finals.push(caption);
    if (app.captions.finals.length > CAPTION_FINALS_KEPT) app.captions.finals.shift();
  }
  showCaption(participant, shown, final);
  setCaptionsState();
}

// captionLine: where the captions of a participant show: the caption element of their tile, or their line in
// the strip (made on demand) when they have no tile of their own here.
function captionLine(participantId) {
  const p = app.participants.get(participantId);
  if (p) return p.tile.caption;
  let line = app.captions.strip.get(participantId);
  if (!line) {
    const el = document.createElement('div');
    el.className = 'caption caption-line';
    el.dataset.participantId = participantId;
    const speakerEl = document.createElement('span');
    speakerEl.className = 'caption-speaker';
    const textEl = document.createElement('span');
    textEl.className = 'caption-text';
    el.append(speakerEl, textEl);
    $('caption-strip').append(el);
    line = { el, textEl, speakerEl, timer: null, strip: participantId };
    app.captions.strip.set(participantId, line);
  }
  line.speakerEl.textContent = participantId && participantId === window.sfu.participantId
    ? `You (${app.localName})` : participantId || 'Someone';
  return line;
}

function showCaption(participantId, text, final) {
  if (!final && !text) return; // nothing heard yet: leave the last caption as it is
  const line = captionLine(participantId);
  clearTimeout(line.timer);
  line.el.classList.toggle('partial', !final);
  line.el.classList.remove('fading');
  line.textEl.textContent = text;
  line.el.hidden = !text;
  line.timer = setTimeout(() => fadeCaption(line), final ? CAPTION_CLEAR_MS : CAPTION_STALE_MS);
}

function fadeCaption(line) {
  line.el.classList.add('fading');
  line.timer = setTimeout(() => clearCaption(line), CAPTION_FADE_MS);
}

function clearCaption(line) {
  clearTimeout(line.timer);
  line.timer = null;
  line.textEl.textContent = '';
  line.el.hidden = true;
  line.el.classList.remove('partial', 'fading');
  if (line.strip !== undefined) {
    line.el.remove();
    app.captions.strip.delete(line.strip);
  }
}

// clearCaptionLines takes every caption off the page (captions turned off, or the session lost).
function clearCaptionLines() {
  for (const tile of allTiles()) clearCaption(tile.caption);
  for (const line of Array.from(app.captions.strip.values())) clearCaption(line);
}

// onCaptionsStatus: the server's captions engine stopped working, or works again.
// transcribedIds is the list of a transcription message (signaling/PROTOCOL.md): the participant ids whose
// speech the server transcribes now, without duplicates; anything not a string is left out. DOM-free.
function transcribedIds(msg) {
  const list = msg && Array.isArray(msg.transcribed) ? msg.transcribed : [];
  return Array.from(new Set(list.filter((id) => typeof id === 'string' && id !== '')));
}

// onTranscription: the server says whose microphone it transcribes for live captions (security finding 7: the
// page shows it, on each of their tiles, ours included).
function onTranscription(msg) {
  setTranscribed(transcribedIds(msg));
}

function setTranscribed(ids) {
  app.transcribed = new Set(ids);
  window.sfu.transcribed = ids.slice();
  renderTranscribed();
}

// renderTranscribed badges the tile of each participant the server transcribes, and only those: the main tile
// (the microphone's), not screen shares; our own tile when our id is in the list.
function renderTranscribed() {
  for (const p of app.participants.values()) setTileTranscribed(p.tile, app.transcribed.has(p.id));
  if (app.localTile) {
    const self = window.sfu.participantId;
    setTileTranscribed(app.localTile, !!self && app.transcribed.has(self));
  }
}

function onCaptionsStatus(msg) {
  app.captions.available = msg.available !== false;
  app.captions.reason = app.captions.available ? '' : String(msg.reason || 'the captions engine is not working');
  if (app.captions.available) {
    hideBanner('captions');
  } else {
    console.error('sfu: captions unavailable:', app.captions.reason);
    if (app.captions.choice) showBanner('captions', `Captions unavailable: ${app.captions.reason}`, { kind: 'warn' });
  }
  setCaptionsState();
}

// onCaptionsError: the server refused a captions request (error message with ref "captions").
function onCaptionsError(msg) {
  const code = msg.code || 'error';
  const text = msg.message || '';
  console.error(`sfu: captions refused (${code}): ${text}`);
  app.captions.error = text ? `${code}: ${text}` : code;
  let notice;
  switch (code) {
    case 'e2ee':
      app.captions.available = false;
      app.captions.reason = 'this room is end-to-end encrypted, so the server cannot transcribe its audio';
      notice = `Captions unavailable: ${app.captions.reason}`;
      break;
    case 'unavailable':
      app.captions.available = false;
      app.captions.reason = text || 'this server has no captions engine';
      notice = `Captions unavailable: ${app.captions.reason}`;
      break;
    default:
      notice = `Captions were refused (${code}${text ? ': ' + text : ''}).`;
  }
  showBanner('captions', notice, { kind: 'warn' });
  setCaptionsState();
}

// setCaptionsState publishes the state to the test hook and the picker.
function setCaptionsState() {
  const c = app.captions;
  window.sfu.captions = {
    lang: c.choice || '',
    spoken: config.spoken,
    available: c.available,
    reason: c.reason,
    error: c.error,
    last: c.last ? { ...c.last, translations: { ...c.last.translations } } : null,
    finals: c.finals.map((f) => ({ ...f, translations: { ...f.translations } })),
  };
  renderCaptions();
}

function renderCaptions() {
  const select = $('captions-lang');
  if (!select) return;
  const lang = app.captions.choice || '';
  if (!Array.from(select.options).some((o) => o.value === lang)) {
    select.append(new Option(lang, lang)); // a language from the address that the list lacks
  }
  select.value = lang;
  select.disabled = app.stopped;
  const control = $('captions-control');
  control.dataset.on = String(!!lang);
  control.dataset.error = String(!!lang && (!app.captions.available || !!app.captions.error));
  control.title = !lang ? 'Live captions are off: pick a language to read what is said'
    : app.captions.available ? `Live captions in ${languageLabel(lang)}`
      : `Captions unavailable: ${app.captions.reason}`;
  $('btn-transcript').disabled = app.stopped;
}

function languageLabel(tag) {
  const known = CAPTION_LANGUAGES.find((l) => l.tag === tag);
  return known ? known.label : tag;
}

// transcriptToken: the token the page joined with (a fresh one in dev mode between sessions).
async function transcriptToken() {
  if (app.session && app.session.token) return app.session.token;
  if (config.token) return config.token;
  return fetchDevToken();
}

// transcript fetches the room's final captions as WebVTT, translated into lang when the server can (default:
// the captions language; '' as spoken). Rejects with the server's reason when it refuses.
async function transcript(lang) {
  const want = typeof lang === 'string' ? lang : app.captions.choice || '';
  const token = await transcriptToken();
  const query = want ? `?lang=${encodeURIComponent(want)}` : '';
  const res = await fetch(`/transcript/${encodeURIComponent(config.room)}${query}`, {
    headers: { Authorization: `Bearer ${token}` },
    cache: 'no-store',
  });
  const body = await res.text();
  if (!res.ok) throw new Error(`${res.status} ${res.statusText}${body.trim() ? ': ' + body.trim() : ''}`);
  return body;
}

// downloadTranscript saves the transcript as transcript-<room>[-<lang>].vtt through a temporary link.
async function downloadTranscript() {
  const btn = $('btn-transcript');
  btn.disabled = true;
  try {
    const lang = app.captions.choice || '';
    const text = await transcript(lang);
    const url = URL.createObjectURL(new Blob([text], { type: 'text/vtt;charset=utf-8' }));
    const a = document.createElement('a');
    a.href = url;
    a.download = `transcript-${config.room.replace(/[^A-Za-z0-9_-]/g, '_')}${lang ? '-' + lang : ''}.vtt`;
    a.hidden = true;
    document.body.append(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 10000);
    hideBanner('transcript');
    return true;
  } catch (err) {
    console.error('sfu: transcript download failed:', err);
    showBanner('transcript', `Could not download the transcript: ${err.message || err}`, { kind: 'warn' });
    return false;
  } finally {
    renderCaptions();
  }
}

function setupCaptions() {
  const select = $('captions-lang');
  for (const { tag, label } of CAPTION_LANGUAGES) select.append(new Option(label, tag));
  select.addEventListener('change', () => setCaptions(select.value));
  $('btn-transcript').addEventListener('click', downloadTranscript);
}

// ---------------------------------------------------------------------------------------------------------
// Moderation
// ---------------------------------------------------------------------------------------------------------

// A room administrator (a token with the admin claim; joined.you.admin) may mute and kick the others, lock the
// room and end the meeting: the host menu on each remote tile and the Lock and End buttons send admin
// messages. Everyone hears of it: room_state (the lock, shown as a badge), moderation (what a host did to us)
// and bye kicked / room_ended (the page ends and does not reconnect).

function setRoomLocked(locked) {
  app.roomLocked = locked;
  window.sfu.roomLocked = locked;
  $('room-locked').hidden = !locked;
  renderHostControls();
}

function onRoomState(msg) {
  setRoomLocked(msg.locked === true);
}

// adminAction sends an admin message (hosts only): action mute, unmute, kick, lock, unlock, end or set_role.
// Returns true if it went out. The server answers with the effect (room_state, track_muted, participant_left,
// ...) or an error, shown as a toast.
function adminAction(action, participant, extra) {
  const s = app.session;
  if (!app.isAdmin || !s || s.ended || !s.joined) return false;
  const msg = { type: 'admin', action: String(action) };
  if (participant) msg.participant = String(participant);
  if (extra && typeof extra === 'object') Object.assign(msg, extra);
  s.send(msg);
  return true;
}

// ourTrack finds one of our published tracks by id (camera, microphone or screen).
function ourTrack(id) {
  const tracks = app.localStream ? app.localStream.getTracks() : [];
  if (app.screenTrack) tracks.push(app.screenTrack);
  return tracks.find((t) => t.id === id) || null;
}

// onModeration: a host did something to us. Mute: the server stops forwarding the track, so the page shows it
// muted (and will not unmute it) until the host unmutes it. set_role publish false: our tracks come off the
// publish connection and the camera and microphone stop; publish true starts them again.
function onModeration(session, msg) {
  const m = {
    action: typeof msg.action === 'string' ? msg.action : '',
    track_id: typeof msg.track_id === 'string' ? msg.track_id : '',
    publish: msg.publish === true,
    by: typeof msg.by === 'string' ? msg.by : '',
  };
  window.sfu.moderation = m;
  switch (m.action) {
    case 'mute': {
      const track = ourTrack(m.track_id) || (m.track_id ? null : localTrack('audio'));
      if (track) {
        app.adminMuted.add(track.id);
        track.enabled = false; // the server already counts it muted: no mute message needed
      }
      showBanner('moderation', 'Muted by the room\'s host', { kind: 'warn' });
      break;
    }
    case 'unmute': {
      const track = ourTrack(m.track_id);
      if (m.track_id) app.adminMuted.delete(m.track_id);
      else app.adminMuted.clear();
      // We stay muted here until we choose to speak: the button says so.
      const offer = track && !track.enabled && track.readyState === 'live';
      showBanner('moderation', 'Unmuted by the host', {
        kind: 'info',
        action: offer ? {
          label: 'Unmute',
          onClick: () => {
            hideBanner('moderation');
            if (!track.enabled) toggleLocal(track.kind);
          },
        } : null,
      });
      break;
    }
    case 'set_role':
      if (m.publish) {
        showBanner('moderation', 'You may publish again', { kind: 'info' });
        resumePublishing(session);
      } else {
        showBanner('moderation', 'You may no longer publish', { kind: 'warn' });
        revokePublishing(session);
      }
      break;
    default:
      console.warn('sfu: unknown moderation action:', m.action);
  }
  renderLocal();
}

// revokePublishing takes our tracks off the publish connection (no new offer: the server refuses them now) and
// stops the camera, the microphone and the screen share.
function revokePublishing(session) {
  app.publishRevoked = true;
  app.canPublish = false;
  const pc = session && usablePC(session.publishPC);
  if (pc) {
    for (const sender of pc.getSenders()) {
      if (sender.track) pc.removeTrack(sender);
    }
  }
  stopLocalMedia();
  app.localStream = null;
  app.mediaReady = Promise.resolve(null);
  app.denoise.tracks = new Map();
  app.denoise.pending = false;
  setDenoiseState();
  renderLocal();
}

// resumePublishing: the host gave the right to publish back: the camera and microphone start again and go out.
function resumePublishing(session) {
  if (!app.publishRevoked) return;
  app.publishRevoked = false;
  app.canPublish = true;
  hideBanner('media');
  app.mediaReady = startMedia();
  showLocalMedia();
  if (!session || session.ended) return; // the next joined publishes them
  session.startPublishing()
    .then(() => session.negotiatePublish()) // negotiationneeded may not fire again after the skipped offers
    .catch((err) => {
      console.error('sfu: publishing failed:', err);
      showErrorToast(`Could not publish your camera/microphone: ${err.message || err}`);
    });
}

// renderHostControls shows the host's buttons when we are an administrator: Lock/Unlock and End in the controls
// bar, Mute/Kick on each remote tile (CSS shows those when the body has the is-admin class).
function renderHostControls() {
  const host = app.isAdmin && !app.stopped;
  document.body.classList.toggle('is-admin', host);
  const lock = $('btn-lock');
  if (!lock) return;
  lock.hidden = !host;
  lock.setAttribute('aria-pressed', String(app.roomLocked));
  lock.querySelector('.control-label').textContent = app.roomLocked ? 'Unlock room' : 'Lock room';
  lock.title = app.roomLocked ? 'Let newcomers join again' : 'Refuse newcomers (hosts still get in)';
  $('btn-end').hidden = !host;
}

function toggleRoomLock() {
  adminAction(app.roomLocked ? 'unlock' : 'lock');
}

function endForEveryone() {
  if (window.confirm('End the meeting for everyone?')) adminAction('end');
}

// createHostMenu builds the Mute and Kick buttons of a remote participant's tile.
function createHostMenu(p) {
  const menu = document.createElement('div');
  menu.className = 'host-menu';
  const mute = document.createElement('button');
  mute.type = 'button';
  mute.className = 'host-action';
  mute.dataset.action = 'mute';
  mute.textContent = 'Mute';
  mute.addEventListener('click', () => {
    adminAction(sourceState(p, 'audio', 'microphone') === 'off' ? 'unmute' : 'mute', p.id);
  });
  const kick = document.createElement('button');
  kick.type = 'button';
  kick.className = 'host-action danger';
  kick.dataset.action = 'kick';
  kick.textContent = 'Kick';
  kick.addEventListener('click', () => {
    if (window.confirm(`Remove ${p.name} from the room?`)) adminAction('kick', p.id);
  });
  menu.append(mute, kick);
  return { el: menu, mute };
}

function renderHostMenu(p) {
  const mic = sourceState(p, 'audio', 'microphone');
  p.hostMenu.mute.textContent = mic === 'off' ? 'Unmute' : 'Mute';
  p.hostMenu.mute.disabled = mic === 'none';
  p.hostMenu.mute.title = mic === 'off' ? `Unmute ${p.name} for everyone` : `Mute ${p.name} for everyone`;
}

// ---------------------------------------------------------------------------------------------------------
// Remote participants
// ---------------------------------------------------------------------------------------------------------

// A remote participant: info from signaling (name, published tracks with their kind, source and muted flag) plus
// the media that arrived on the subscribe connection. Its main tile plays one MediaStream with the sound and the
// camera; each screen share gets a tile of its own (see placeMedia).
function addParticipant(info) {
  let p = app.participants.get(info.id);
  if (!p) {
    p = {
      id: info.id,
      name: '',
      tracks: new Map(), // published track id -> {kind, muted, source}; source '' until the server says
      media: new Map(), // published track id -> MediaStreamTrack
      stream: new MediaStream(), // what the main tile plays: audio and camera video
      tile: createTile({ label: '', local: false }),
      screens: new Map(), // published track id of a screen share -> {tile, stream, seq}
    };
    p.tile.el.dataset.participantId = p.id;
    setTileTranscribed(p.tile, app.transcribed.has(p.id));
    p.hostMenu = createHostMenu(p);
    p.tile.el.append(p.hostMenu.el);
    app.participants.set(p.id, p);
    $('grid').append(p.tile.el);
    watchTileSize(p);
  }
  const name = info.name || info.identity || p.name || info.id;
  if (name !== p.name) setParticipantName(p, name);
  for (const t of info.tracks || []) {
    if (t && t.id) setTrackInfo(p, t);
  }
  placeMedia(p);
  updateCount();
  return p;
}

function setParticipantName(p, name) {
  p.name = name;
  setTileName(p.tile, name);
  for (const screen of p.screens.values()) setTileName(screen.tile, screenLabel(p));
}

function screenLabel(p) {
  return `${p.name} — screen`;
}

// setTrackInfo records a track object of the protocol. Servers that predate track sources send none: the
// track then keeps what was known, and trackSource falls back to camera or microphone.
function setTrackInfo(p, t) {
  const known = p.tracks.get(t.id);
  p.tracks.set(t.id, {
    kind: t.kind || (known && known.kind) || '',
    muted: !!t.muted,
    source: typeof t.source === 'string' && t.source ? t.source : (known && known.source) || '',
  });
}

// trackSource: what a published track carries. A track whose source is not known (yet) counts as camera or
// microphone, as the protocol says for tracks published without track_source.
function trackSource(p, publishedId, kind) {
  const info = p.tracks.get(publishedId);
  if (info && info.source) return info.source;
  return (kind || (info && info.kind)) === 'audio' ? 'microphone' : 'camera';
}

// placeMedia puts each received track of p where it is shown: a screen-share video in a tile of its own, the
// rest (camera video and all sound) in the main tile. It runs again whenever tracks or their sources change,
// so a screen share first taken for a camera (its track_published came after the track) moves to its own tile.
function placeMedia(p) {
  const main = [];
  const screens = new Map(); // published track id -> MediaStreamTrack
  for (const [publishedId, track] of p.media) {
    if (track.kind === 'video' && trackSource(p, publishedId, 'video') === 'screen') {
      screens.set(publishedId, track);
    } else {
      main.push(track);
    }
  }
  for (const publishedId of Array.from(p.screens.keys())) {
    if (!screens.has(publishedId)) removeScreenTile(p, publishedId);
  }
  setStreamTracks(p.tile, p.stream, main);
  for (const track of main) app.trackTiles.set(track, p.tile);
  for (const [publishedId, track] of screens) {
    const screen = p.screens.get(publishedId) || addScreenTile(p, publishedId);
    setStreamTracks(screen.tile, screen.stream, [track]);
    app.trackTiles.set(track, screen.tile);
  }
  renderParticipant(p);
  updateLayout();
}

// setStreamTracks makes stream hold exactly tracks, and reloads the tile if that changed anything.
function setStreamTracks(tile, stream, tracks) {
  let changed = false;
  for (const t of stream.getTracks()) {
    if (!tracks.includes(t)) {
      stream.removeTrack(t);
      changed = true;
    }
  }
  for (const t of tracks) {
    if (!stream.getTracks().includes(t)) {
      stream.addTrack(t);
      changed = true;
    }
  }
  if (changed) reloadTile(tile, stream);
}

function addScreenTile(p, publishedId) {
  const tile = createTile({ label: screenLabel(p), screen: true });
  tile.el.dataset.participantId = p.id;
  tile.el.dataset.trackId = publishedId;
  const screen = { tile, stream: new MediaStream(), seq: ++app.screenSeq };
  p.screens.set(publishedId, screen);
  p.tile.el.after(tile.el); // next to the participant's camera
  tileObserver.observe(tile.video);
  return screen;
}

function removeScreenTile(p, publishedId) {
  const screen = p.screens.get(publishedId);
  if (!screen) return;
  p.screens.delete(publishedId);
  tileObserver.unobserve(screen.tile.video);
  screen.tile.video.srcObject = null;
  screen.tile.el.remove();
}

// videoTileOf: the tile that shows the received video track publishedId of p.
function videoTileOf(p, publishedId) {
  const screen = p.screens.get(publishedId);
  return screen ? screen.tile : p.tile;
}

// Tile sizes: the SFU sends each remote video at the smallest simulcast layer that fills its tile, so the page
// tells it the size (in device pixels) at which it shows each video, and 0x0 when the tile is hidden. Each
// video track is measured in its own element: the main tile for cameras, the screen tile for screen shares.
const tileObserver = new ResizeObserver((entries) => {
  for (const entry of entries) {
    const p = app.participants.get(entry.target.closest('.tile')?.dataset.participantId);
    if (p) scheduleTileReport(p);
  }
});

function watchTileSize(p) {
  p.reported = new Map(); // published video track id -> "WxH" last sent
  tileObserver.observe(p.tile.video);
}

function scheduleTileReport(p) {
  clearTimeout(p.tileTimer);
  p.tileTimer = setTimeout(() => reportTileSize(p), TILE_REPORT_DELAY_MS);
}

// shownSize: the size of a video element in device pixels, 0x0 when it is not seen.
function shownSize(video) {
  const rect = video.getBoundingClientRect();
  const dpr = window.devicePixelRatio || 1;
  const hidden = document.hidden || rect.width === 0 || rect.height === 0;
  return {
    width: hidden ? 0 : Math.min(16384, Math.round(rect.width * dpr)),
    height: hidden ? 0 : Math.min(16384, Math.round(rect.height * dpr)),
  };
}

function reportTileSize(p) {
  const session = app.session;
  if (!session || session.ended || !app.participants.has(p.id)) return;
  for (const [trackId, track] of p.media) {
    if (track.kind !== 'video') continue;
    const { width, height } = shownSize(videoTileOf(p, trackId).video);
    const size = `${width}x${height}`;
    if (p.reported.get(trackId) === size) continue;
    p.reported.set(trackId, size);
    session.send({ type: 'subscription', track: trackId, width, height });
  }
}

document.addEventListener('visibilitychange', () => {
  for (const p of app.participants.values()) scheduleTileReport(p);
});

function removeParticipant(id) {
  const p = app.participants.get(id);
  if (!p) return;
  tileObserver.unobserve(p.tile.video);
  clearTimeout(p.tileTimer);
  clearTimeout(p.tile.caption.timer);
  for (const publishedId of Array.from(p.screens.keys())) removeScreenTile(p, publishedId);
  for (const track of p.media.values()) app.trackTiles.delete(track);
  p.tile.video.srcObject = null;
  p.tile.el.remove();
  app.participants.delete(id);
  if (app.stageHolder === id) releaseStage();
  updateCount();
}

function clearRemoteParticipants() {
  clearCaptionLines();
  for (const id of Array.from(app.participants.keys())) removeParticipant(id);
  app.goneIds.clear();
  app.trackTiles.clear();
  setSpeakers([]);
  releaseStage();
  hideBanner('autoplay');
}

// sourceState: 'on', 'off' (all muted) or 'none' for the published tracks of p that carry source.
function sourceState(p, kind, source) {
  const tracks = Array.from(p.tracks.entries())
    .filter(([id, t]) => t.kind === kind && trackSource(p, id, kind) === source)
    .map(([, t]) => t);
  if (tracks.length === 0) return 'none';
  return tracks.some((t) => !t.muted) ? 'on' : 'off';
}

function renderParticipant(p) {
  setTileIndicators(p.tile, sourceState(p, 'audio', 'microphone'), sourceState(p, 'video', 'camera'));
  renderHostMenu(p);
  for (const [publishedId, screen] of p.screens) {
    const info = p.tracks.get(publishedId);
    setTileIndicators(screen.tile, 'none', info && info.muted ? 'off' : 'on');
  }
}

function attachRemoteTrack(p, publishedId, track) {
  p.media.set(publishedId, track);
  if (!p.tracks.has(publishedId)) p.tracks.set(publishedId, { kind: track.kind, muted: false, source: '' });
  placeMedia(p);
  if (track.kind === 'video') {
    p.reported.delete(publishedId);
    scheduleTileReport(p);
  }
}

function detachRemoteTrack(p, publishedId) {
  const track = p.media.get(publishedId);
  if (!track) return;
  p.media.delete(publishedId);
  p.reported.delete(publishedId);
  if (!Array.from(p.media.values()).includes(track)) app.trackTiles.delete(track);
  placeMedia(p);
}

function detachRemoteTrackObject(p, track) {
  for (const [publishedId, t] of p.media) {
    if (t === track) detachRemoteTrack(p, publishedId);
  }
}

// remoteIds finds the publishing participant and the published track id of a received track: the msid of its
// m-section is "<participant id> <track id>". Browsers that ignore the msid track id (Firefox) still get it.
function remoteIds(pc, ev) {
  let participantId = ev.streams && ev.streams[0] ? ev.streams[0].id : '';
  let trackId = ev.track.id;
  const mid = ev.transceiver && ev.transceiver.mid;
  const sdp = pc.remoteDescription && pc.remoteDescription.sdp;
  if (mid != null && sdp) {
    for (const section of sdp.split(/\r?\nm=/).slice(1)) {
      const lines = section.split(/\r?\n/);
      if (!lines.includes(`a=mid:${mid}`)) continue;
      const msid = lines.find((l) => l.startsWith('a=msid:'));
      if (msid) {
        const [streamId, id] = msid.slice('a=msid:'.length).trim().split(/\s+/);
        if (id) trackId = id;
        if (!participantId && streamId && streamId !== '-') participantId = streamId;
      }
      break;
    }
  }
  return { participantId, trackId };
}

// ---------------------------------------------------------------------------------------------------------
// Active speakers and layout
// ---------------------------------------------------------------------------------------------------------

// setSpeakers applies an active_speakers list (loudest first): the speakers' tiles get an outline, the
// loudest a stronger one, and the loudest remote speaker takes the stage. Silence (an empty list) keeps the
// last one on the stage for STAGE_HOLD_MS.
function setSpeakers(list) {
  const speakers = (Array.isArray(list) ? list : [])
    .filter((s) => s && typeof s.participant_id === 'string' && s.participant_id)
    .map((s) => ({ participant_id: s.participant_id, level: Number(s.level) || 0 }));
  app.speakers = speakers;
  window.sfu.speakers = speakers;

  for (const tile of allTiles()) tile.el.classList.remove('speaking', 'speaking-first');
  speakers.forEach((s, i) => {
    const tile = speakerTile(s.participant_id);
    if (!tile) return;
    tile.el.classList.add('speaking');
    if (i === 0) tile.el.classList.add('speaking-first');
  });

  // We never put ourselves on the stage: the loudest of the others does. While only we speak, the stage stays.
  const first = speakers.find((s) => app.participants.has(s.participant_id));
  if (first) {
    clearTimeout(app.stageTimer);
    app.stageTimer = null;
    app.stageHolder = first.participant_id;
  } else if (speakers.length === 0 && app.stageHolder && !app.stageTimer) {
    app.stageTimer = setTimeout(releaseStage, STAGE_HOLD_MS);
  }
  updateLayout();
}

function releaseStage() {
  clearTimeout(app.stageTimer);
  app.stageTimer = null;
  app.stageHolder = null;
  updateLayout();
}

// speakerTile: the camera tile of a participant id (ours included), or null.
function speakerTile(participantId) {
  if (participantId === window.sfu.participantId) return app.localTile;
  const p = app.participants.get(participantId);
  return p ? p.tile : null;
}

// allTiles: every tile on the page, ours first.
function allTiles() {
  const tiles = app.localTile ? [app.localTile] : [];
  for (const p of app.participants.values()) {
    tiles.push(p.tile);
    for (const screen of p.screens.values()) tiles.push(screen.tile);
  }
  return tiles;
}

// stageTile: the tile shown large, or null for the plain grid. A remote screen share always takes the stage
// (the latest one if there are several); otherwise the stage holder does, once there are 3 tiles or more.
function stageTile(count) {
  let latest = null;
  for (const p of app.participants.values()) {
    for (const screen of p.screens.values()) {
      if (!latest || screen.seq > latest.seq) latest = screen;
    }
  }
  if (latest) return latest.tile;
  if (count < 3 || !app.stageHolder) return null;
  const p = app.participants.get(app.stageHolder);
  return p ? p.tile : null;
}

// updateLayout switches between the plain grid and the stage (one large tile, the others in a strip below).
// Tiles are never moved in the document (that could pause their videos): CSS places them. Their new sizes
// reach the SFU through the ResizeObserver.
function updateLayout() {
  const grid = $('grid');
  const tiles = allTiles();
  const onStage = stageTile(tiles.length);
  grid.dataset.count = String(tiles.length);
  grid.classList.toggle('stage', !!onStage);
  const fit = Math.floor(grid.clientWidth / STRIP_MIN_TILE_PX) || STRIP_MAX_COLS;
  const cols = Math.max(1, Math.min(tiles.length - 1, STRIP_MAX_COLS, fit));
  grid.style.setProperty('--strip-cols', String(cols));
  for (const tile of tiles) tile.el.classList.toggle('on-stage', tile === onStage);
}

window.addEventListener('resize', updateLayout);

// ---------------------------------------------------------------------------------------------------------
// Session: one WebSocket and its two peer connections
// ---------------------------------------------------------------------------------------------------------

// pageWsURL: the signaling WebSocket of the node that served the page.
function pageWsURL() {
  const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
  return `${scheme}//${location.host}/ws`;
}

// signalingURL reads a WebSocket URL the server sent (redirect, joined.nodes): the URL, or '' if it is not a
// ws: or wss: URL (or ws: from an https page, which the browser would refuse).
function signalingURL(value) {
  if (typeof value !== 'string' || !value) return '';
  let u;
  try {
    u = new URL(value, location.href);
  } catch (err) {
    return '';
  }
  if (u.protocol !== 'wss:' && u.protocol !== 'ws:') return '';
  if (u.protocol === 'ws:' && location.protocol === 'https:') return '';
  return u.href;
}

// signalingURLs: where a new session may go, in the order reconnect attempts take them: the node of the last
// joined session (or the page's own), then the region's other nodes it listed.
function signalingURLs() {
  const urls = [];
  for (const u of [app.joinedURL || pageWsURL(), ...app.nodes]) {
    if (u && !urls.includes(u)) urls.push(u);
  }
  return urls;
}

// nextSignalingURL: the URL for the next (re)connect attempt, round robin over signalingURLs.
function nextSignalingURL() {
  const urls = signalingURLs();
  const url = urls[app.attempt % urls.length];
  app.attempt++;
  return url;
}

class Session {
  constructor(token, url) {
    this.token = token;
    this.url = url || pageWsURL();
    this.openTimeoutMs = OPEN_TIMEOUT_MS; // a socket not open after this long is given up
    this.redirected = false; // the session follows a redirect (see followRedirect)
    this.opened = false; // the socket opened
    this.ws = null;
    this.ended = false;
    this.joined = false;
    this.iceServers = [];
    this.pcs = { publish: null, subscribe: null };
    this.pendingCandidates = { publish: [], subscribe: [] }; // held until the pc has a remote description
    this.queue = Promise.resolve(); // messages are handled one at a time, in arrival order
    this.makingOffer = false;
    this.offerAgain = false;
    this.publishAnswered = false;
    this.pingSeq = 0;
    this.lastPongId = 0;
    this.pingTimer = null;
    this.pongTimer = null;
    this.openTimer = null;
    this.busyTimer = null; // the next try of a join refused as busy
    this.joinSentAt = 0; // when the last join went out
    this.publishRestartPending = false; // the next publish offer restarts ICE
    this.publishOfferRestarts = false; // the publish offer waiting for its answer restarts ICE
    // ICE restart state per connection (see requestIceRestart).
    this.ice = { publish: newIceState(), subscribe: newIceState() };
  }

  get publishPC() { return this.pcs.publish; }
  get subscribePC() { return this.pcs.subscribe; }

  open() {
    window.sfu.wsURL = this.url;
    let ws;
    try {
      ws = new WebSocket(this.url);
    } catch (err) {
      // A URL the browser refuses (e.g. mixed content): as good as a node that does not answer.
      console.error(`sfu: cannot open ${this.url}:`, err);
      setTimeout(() => this.lost(), 0);
      return;
    }
    this.ws = ws;
    this.openTimer = setTimeout(() => {
      if (ws.readyState === WebSocket.CONNECTING) this.lost();
    }, this.openTimeoutMs);
    ws.onopen = () => {
      this.opened = true;
      clearTimeout(this.openTimer);
      // join must be the first message: the server refuses anything else (even ping) before it.
      this.sendJoin();
      this.pingTimer = setInterval(() => this.ping(), PING_INTERVAL_MS);
    };
    ws.onmessage = (ev) => this.receive(ev.data);
    ws.onerror = () => {}; // a close event always follows; it is handled there
    ws.onclose = () => {
      if (this.ended) return;
      if (this.redirected && !this.opened) {
        // The browser does not say why; a node of another origin that does not allow this page's is one cause.
        console.error(`sfu: the redirect target ${this.url} refused the WebSocket (is ${location.origin} among ` +
          'its allowed origins?)');
      }
      this.lost();
    };
  }

  send(msg) {
    if (this.ws && this.ws.readyState === WebSocket.OPEN) this.ws.send(JSON.stringify(msg));
  }

  sendJoin() {
    this.joinSentAt = Date.now();
    this.send({ type: 'join', token: this.token });
  }

  // close ends the session for good: socket, peer connections and timers. Idempotent.
  close() {
    if (this.ended) return;
    this.ended = true;
    clearTimeout(this.openTimer);
    clearInterval(this.pingTimer);
    clearTimeout(this.pongTimer);
    clearTimeout(this.busyTimer);
    for (const st of Object.values(this.ice)) clearIceTimers(st);
    if (this.ws) {
      this.ws.onclose = null;
      this.ws.onmessage = null;
      try { this.ws.close(1000); } catch (err) { /* already closed */ }
    }
    for (const name of Object.keys(this.pcs)) {
      const pc = this.pcs[name];
      if (pc) {
        pc.onicecandidate = null;
        pc.ontrack = null;
        pc.onnegotiationneeded = null;
        pc.onconnectionstatechange = null;
        pc.oniceconnectionstatechange = null;
        pc.close();
      }
    }
  }

  // lost: the connection died unexpectedly; start over with a new session after a backoff.
  lost(notice) {
    if (this.ended) return;
    this.close();
    onSessionLost(this, notice);
  }

  // ---- keepalive ----

  ping() {
    // Before joined the server refuses anything but join (a join refused as busy waits for its retry): no ping,
    // but a join left unanswered as long as a ping would be means the connection is dead.
    if (!this.joined) {
      if (Date.now() - this.joinSentAt > PONG_TIMEOUT_MS) {
        console.error(`sfu: no answer to join within ${PONG_TIMEOUT_MS / 1000}s, reconnecting`);
        this.lost();
      }
      return;
    }
    const id = ++this.pingSeq;
    this.send({ type: 'ping', id });
    if (this.pongTimer) return; // an earlier ping is still being watched; it fails first
    this.pongTimer = setTimeout(() => {
      this.pongTimer = null;
      if (this.lastPongId < id) {
        console.error(`sfu: no pong to ping ${id} within ${PONG_TIMEOUT_MS / 1000}s, reconnecting`);
        this.lost();
      }
    }, PONG_TIMEOUT_MS);
  }

  onPong(msg) {
    const id = Number(msg.id) || 0;
    if (id > this.lastPongId) this.lastPongId = id;
    if (this.pongTimer && this.lastPongId >= this.pingSeq) {
      clearTimeout(this.pongTimer);
      this.pongTimer = null;
    }
  }

  // ---- incoming messages ----

  receive(data) {
    let msg;
    try {
      msg = JSON.parse(data);
    } catch (err) {
      console.error('sfu: unreadable message from the server:', err);
      return;
    }
    if (!msg || typeof msg.type !== 'string') return;
    // Not queued: keepalive must not wait behind SDP work, and error/bye must be seen before the socket's close
    // event (a "replaced" session must not reconnect; a refused token must not be retried).
    if (msg.type === 'pong') return this.onPong(msg);
    if (msg.type === 'error') return this.onError(msg);
    if (msg.type === 'bye') return this.onBye(msg);
    if (msg.type === 'redirect') return this.onRedirect(msg);
    // Offers, answers and candidates must be applied in the order they came, each after the previous one's
    // asynchronous work is done, hence the promise chain.
    this.queue = this.queue
      .then(() => (this.ended ? undefined : this.handle(msg)))
      .catch((err) => {
        console.error(`sfu: handling "${msg.type}" failed:`, err);
        if (!this.ended) showErrorToast(`Client error while handling "${msg.type}": ${err.message || err}`);
      });
  }

  handle(msg) {
    switch (msg.type) {
      case 'joined': return this.onJoined(msg);
      case 'offer': return this.onOffer(msg);
      case 'answer': return this.onAnswer(msg);
      case 'candidate': return this.onCandidate(msg);
      case 'participant_joined': return this.onParticipantJoined(msg);
      case 'participant_left': return this.onParticipantLeft(msg);
      case 'track_published': return this.onTrackPublished(msg);
      case 'track_unpublished': return this.onTrackUnpublished(msg);
      case 'track_muted': return this.onTrackMuted(msg);
      case 'active_speakers': return setSpeakers(msg.speakers);
      case 'layers': return this.onLayers(msg);
      case 'audio_processing': return onAudioProcessing(msg);
      case 'caption': return onCaption(msg);
      case 'captions_status': return onCaptionsStatus(msg);
      case 'transcription': return onTranscription(msg);
      case 'room_state': return onRoomState(msg);
      case 'moderation': return onModeration(this, msg);
      case 'token': return onToken(this, msg);
      default: return undefined; // unknown types are ignored
    }
  }

  // onLayers: the SFU says which simulcast layers of a track anyone receives; encoding the others would waste
  // this machine's CPU and uplink, so they are paused until a later message lists them again.
  async onLayers(msg) {
    const pc = this.publishPC;
    const wanted = new Set(Array.isArray(msg.rids) ? msg.rids : []);
    const paused = new Set(Array.isArray(msg.paused) ? msg.paused : []);
    if (!pc) return;
    const sender = pc.getSenders().find((s) => s.track && s.track.id === msg.track_id);
    if (!sender) return;
    const params = sender.getParameters();
    if (!params.encodings || params.encodings.length < 2) return;
    let changed = false;
    for (const enc of params.encodings) {
      if (!enc.rid || (!wanted.has(enc.rid) && !paused.has(enc.rid))) continue; // not known to the server yet
      const active = wanted.has(enc.rid);
      if (enc.active !== active) {
        enc.active = active;
        changed = true;
      }
    }
    if (changed) await sender.setParameters(params);
  }

  onJoined(msg) {
    this.joined = true;
    window.sfu.joins++;
    app.backoffMs = BACKOFF_FIRST_MS;
    app.busyTries = 0;
    // This node is the one to try first should it go away, then the region's others that it lists.
    app.joinedURL = this.url;
    app.nodes = [];
    for (const n of Array.isArray(msg.nodes) ? msg.nodes : []) {
      const u = signalingURL(n);
      if (u && u !== this.url && !app.nodes.includes(u)) app.nodes.push(u);
    }
    window.sfu.nodes = app.nodes.slice();
    app.attempt = 0;
    app.redirectsInRow = 0;
    const you = msg.you || {};
    window.sfu.participantId = you.id || null;
    renderTranscribed(); // our own tile, should the server already have said we are transcribed
    hideBanner('join');
    // Host controls, and the lock as the server tells it next (room_state follows joined while locked).
    app.isAdmin = you.admin === true;
    window.sfu.isAdmin = app.isAdmin;
    app.adminMuted = new Set();
    setRoomLocked(false);
    if (you.name && you.name !== app.localName) {
      app.localName = you.name;
      setTileName(app.localTile, `You (${you.name})`);
    }
    if (msg.room) $('room-name').textContent = msg.room;
    this.iceServers = Array.isArray(msg.ice_servers) ? msg.ice_servers : [];
    hideBanner('conn');

    for (const p of msg.participants || []) {
      if (p && p.id && p.id !== you.id) addParticipant(p);
    }
    setState('joined');

    this.ensureSubscribePC();
    // A host that took away our right to publish meant it for this page, reconnects included, until it gives it back.
    app.canPublish = you.publish !== false && !app.publishRevoked;
    // A new session: the server tells again what runs on the tracks we are about to publish. Our choice goes
    // before the tracks do, so that they start with it.
    app.denoise.tracks = new Map();
    app.denoise.pending = false;
    if (app.canPublish) sendDenoise(this);
    setDenoiseState();
    // Captions too: our choice (and the language we speak) goes again on every new session.
    sendCaptions(this, false);
    setCaptionsState();
    renderLocal();
    if (app.publishRevoked) {
      stopScreen();
    } else if (!app.canPublish) {
      showBanner('media', 'Your token does not allow publishing: you joined as a viewer.', { kind: 'info' });
      stopScreen(); // a share started before the token said so cannot go anywhere
    } else {
      // Not awaited: the camera permission prompt may still be open, and messages must keep flowing meanwhile.
      this.startPublishing().catch((err) => {
        console.error('sfu: publishing failed:', err);
        showErrorToast(`Could not publish your camera/microphone: ${err.message || err}`);
      });
    }
  }

  onParticipantJoined(msg) {
    const info = msg.participant;
    if (!info || !info.id || info.id === window.sfu.participantId) return;
    app.goneIds.delete(info.id);
    addParticipant(info);
  }

  onParticipantLeft(msg) {
    const info = msg.participant;
    if (!info || !info.id) return;
    app.goneIds.add(info.id);
    removeParticipant(info.id);
  }

  onTrackPublished(msg) {
    const t = msg.track;
    if (!msg.participant_id || !t || !t.id) return;
    const p = app.participants.get(msg.participant_id);
    if (!p) return;
    setTrackInfo(p, t);
    placeMedia(p); // its source may move an already received video to a screen tile
  }

  onTrackUnpublished(msg) {
    const t = msg.track;
    const p = msg.participant_id && app.participants.get(msg.participant_id);
    if (!p || !t || !t.id) return;
    p.tracks.delete(t.id);
    detachRemoteTrack(p, t.id);
    renderParticipant(p);
  }

  onTrackMuted(msg) {
    const t = msg.track;
    const p = msg.participant_id && app.participants.get(msg.participant_id);
    if (!p || !t || !t.id) return;
    setTrackInfo(p, t);
    placeMedia(p);
  }

  onError(msg) {
    const code = msg.code || 'error';
    const text = msg.message || '';
    // A server that predates track_source refuses it as unknown_type. Harmless: its tracks then count as camera
    // and microphone (screen shares included), so say it once in the console rather than in a toast per track.
    if (code === 'unknown_type' && text.includes('track_source')) {
      if (!app.warnedTrackSource) console.warn('sfu: the server does not know track_source:', text);
      app.warnedTrackSource = true;
      return;
    }
    // A refused denoise request gets its own notice (and the button its state) rather than a generic toast.
    if (msg.ref === 'denoise') return onDenoiseError(msg);
    if (msg.ref === 'captions') return onCaptionsError(msg);
    if (msg.ref === 'join' && ['busy', 'room_locked', 'room_full'].includes(code)) return this.onJoinRefused(msg);
    if (code === 'residency') return this.onResidency(msg);
    // A publish offer refused (e.g. the host took away the right to publish meanwhile): drop it, so that the
    // connection is stable again and a later offer can go.
    if (msg.ref === 'offer' && code === 'forbidden') this.rollbackPublishOffer();
    console.error(`sfu: server error ${code}${msg.ref ? ` (in reply to "${msg.ref}")` : ''}: ${text}`);
    showErrorToast(`${code}: ${text}`);
    // These close the socket; retrying with the same token cannot help. An expired dev token is simply
    // replaced by a fresh one when the socket closes and the page reconnects.
    if (code === 'unauthorized' || code === 'token_expired') app.token = ''; // a dev page fetches a fresh one
    if (code === 'unauthorized') {
      if (!usingDevToken) forgetToken();
      fail(`The server refused the token (unauthorized): ${text}`);
    } else if (code === 'token_expired' && !usingDevToken) {
      forgetToken();
      fail('The token has expired (token_expired): open the link with a fresh ?token=...');
    }
  }

  // onJoinRefused: the server refused our join for a room rule or a limit; the socket stays open. A busy server
  // gets the join again on the same socket after BUSY_RETRY_MS, up to BUSY_RETRY_MAX times in all (should the
  // server close the socket meanwhile, the page reconnects and the count goes on); a locked or full
  // room ends the attempt (retrying would only knock at the same door) with a banner that offers to try again.
  onJoinRefused(msg) {
    const code = msg.code;
    console.error(`sfu: join refused (${code}): ${msg.message || ''}`);
    if (code === 'busy' && app.busyTries < BUSY_RETRY_MAX) {
      app.busyTries++;
      showBanner('join', `The server is busy; trying to join again (${app.busyTries}/${BUSY_RETRY_MAX})…`,
        { kind: 'warn', dismissable: false });
      clearTimeout(this.busyTimer);
      this.busyTimer = setTimeout(() => {
        if (!this.ended && !this.joined) this.sendJoin();
      }, BUSY_RETRY_MS);
      return;
    }
    const texts = {
      busy: 'The server is too busy to let you in right now. Try again in a moment.',
      room_locked: 'This room is locked by its host: nobody else can join for now.',
      room_full: 'This room is full: it already has as many participants as the server allows.',
    };
    this.close();
    refuseJoin(code, texts[code]);
  }

  // onResidency: this node's region may not host the room (the token's regions claim). Any node of this region
  // would say the same, so the page stops here with a banner rather than retry.
  onResidency(msg) {
    const detail = msg.message || 'the room\'s region policy does not allow this server\'s region';
    console.error(`sfu: join refused (residency): ${detail}`);
    this.close();
    window.sfu.joinError = 'residency';
    shutdownPage();
    setState('error');
    showBanner('join', `This room is kept in another region (${detail}). This server cannot host it: open the ` +
      'meeting link of the room\'s region.', { kind: 'error', dismissable: false });
  }

  // onRedirect: the room lives on another node of the region (reason "room_owner"; "room_moved" in the middle of
  // a meeting, when another node took the room's lease), or this node is shutting down (reason "draining"). The same join goes to that node at once, with the same token; the page keeps its
  // media and choices. More than MAX_REDIRECTS in a row is a loop: the page stops with a banner.
  onRedirect(msg) {
    if (this.ended) return;
    const url = signalingURL(msg.url);
    const reason = typeof msg.reason === 'string' ? msg.reason : '';
    if (!url) {
      console.error('sfu: redirect to an unusable URL:', msg.url);
      this.lost();
      return;
    }
    app.redirectsInRow++;
    window.sfu.redirects++;
    console.info(`sfu: redirected (${reason || 'no reason'}) from ${this.url} to ${url}`);
    this.close();
    followRedirect(this, url, reason);
  }

  onBye(msg) {
    window.sfu.byeReason = typeof msg.reason === 'string' ? msg.reason : '';
    switch (msg.reason) {
      case 'kicked':
        // Never reconnect: the host removed us.
        this.close();
        endMeeting('You were removed from the room');
        break;
      case 'room_ended':
        this.close();
        endMeeting('The meeting has ended');
        break;
      case 'replaced':
        this.close();
        endMeeting('You joined from another tab');
        break;
      case 'shutdown':
        this.lost('The server is restarting; reconnecting…');
        break;
      case 'failed':
        this.lost('The media connection failed; reconnecting…');
        break;
      case 'left':
        // The answer to our own leave. Should it come unasked, the server has ended our session all the same.
        this.close();
        if (!app.stopped) endMeeting('You left the meeting');
        break;
      default:
        // Unknown reason: the socket closes right after and the close handler reconnects.
        break;
    }
  }

  // ---- peer connections ----

  createPC(name) {
    let pc;
    try {
      pc = new RTCPeerConnection({ iceServers: this.iceServers });
    } catch (err) {
      console.error('sfu: ice_servers refused by the browser, using none:', err);
      pc = new RTCPeerConnection();
    }
    this.pcs[name] = pc;
    pc.onicecandidate = (ev) => {
      // A null candidate (or an empty one) marks the end of gathering; the protocol lets us skip it.
      if (ev.candidate && ev.candidate.candidate) {
        this.send({ type: 'candidate', pc: name, candidate: ev.candidate.toJSON() });
      }
    };
    pc.onconnectionstatechange = () => {
      // ICE failures are mended by an ICE restart (see onIceState); anything else (DTLS) by a new session.
      if (pc.connectionState === 'failed' && pc.iceConnectionState !== 'failed' && !this.ended) {
        console.error(`sfu: the ${name} connection failed, reconnecting`);
        this.lost('The media connection failed; reconnecting…');
      }
    };
    pc.oniceconnectionstatechange = () => this.onIceState(name, pc);
    this.renderIce();
    return pc;
  }

  // ---- ICE restart ----
  //
  // A connection whose ICE is "disconnected" for ICE_DISCONNECTED_GRACE_MS, or "failed", or any connection after
  // the network changed (online, navigator.connection change), gets new ICE credentials without a new session:
  // the publish connection by an offer made with iceRestart, the subscribe connection by asking the server for
  // one (ice_restart). Tracks, tiles and the session carry on. One restart at a time per connection; a restart
  // not connected within ICE_RESTART_TIMEOUT_MS has failed, and the next one waits 2 s, 4 s, 8 s ... 30 s. After
  // ICE_RESTART_MAX_ATTEMPTS failed ones the session is thrown away and a new one joins (Session.lost).

  onIceState(name, pc) {
    if (this.ended || this.pcs[name] !== pc) return;
    const st = this.ice[name];
    const state = pc.iceConnectionState;
    if (state !== 'disconnected') {
      clearTimeout(st.graceTimer);
      st.graceTimer = null;
    }
    if (state === 'connected' || state === 'completed') {
      if (st.inFlight) {
        this.iceRestartDone(name, true);
      } else if (st.retryTimer) {
        clearTimeout(st.retryTimer); // it mended itself while waiting for the next try
        st.retryTimer = null;
        st.attempts = 0;
        hideBanner('ice');
      }
    } else if (state === 'disconnected') {
      if (!st.graceTimer && !st.inFlight) {
        st.graceTimer = setTimeout(() => {
          st.graceTimer = null;
          if (!this.ended && pc.iceConnectionState === 'disconnected') this.requestIceRestart(name, 'disconnected');
        }, ICE_DISCONNECTED_GRACE_MS);
      }
    } else if (state === 'failed') {
      if (st.inFlight) this.iceRestartDone(name, false);
      else this.requestIceRestart(name, 'failed');
    }
    this.renderIce();
  }

  // restartIce restarts both connections (the network changed, or the test hook). force: now, even while
  // waiting to retry a failed restart. Returns true if any restart started.
  restartIce(reason, force) {
    let started = false;
    for (const name of ['publish', 'subscribe']) {
      const st = this.ice[name];
      if (force && st.retryTimer) {
        clearTimeout(st.retryTimer);
        st.retryTimer = null;
      }
      if (this.requestIceRestart(name, reason)) started = true;
    }
    return started;
  }

  // requestIceRestart starts an ICE restart of one connection unless one is in flight or waiting to be retried,
  // or the connection cannot restart (none yet, never negotiated, or we may not publish).
  requestIceRestart(name, reason) {
    const st = this.ice[name];
    if (this.ended || !this.joined || st.inFlight || st.retryTimer) return false;
    const pc = usablePC(this.pcs[name]);
    if (!pc || !pc.remoteDescription) return false;
    if (name === 'publish' && !app.canPublish) return false; // the server refuses our offers
    console.warn(`sfu: restarting ICE on the ${name} connection (${reason}, attempt ${st.attempts + 1})`);
    st.inFlight = true;
    st.ufrag = iceUfrag(pc.remoteDescription);
    st.reason = reason;
    window.sfu.iceRestarts++;
    if (reason !== 'forced') {
      showBanner('ice', 'The network connection changed; restoring the media…', { kind: 'info', dismissable: false });
    }
    clearTimeout(st.attemptTimer);
    st.attemptTimer = setTimeout(() => {
      st.attemptTimer = null;
      const state = pc.iceConnectionState;
      this.iceRestartDone(name, state === 'connected' || state === 'completed');
    }, ICE_RESTART_TIMEOUT_MS);
    if (name === 'publish') {
      this.publishRestartPending = true;
      this.negotiatePublish();
    } else {
      this.send({ type: 'ice_restart' }); // the server answers with a subscribe offer (see onOffer)
    }
    this.renderIce();
    return true;
  }

  // iceRestartExchanged: the new credentials are in place on both sides. A connection that never stopped
  // working (a forced restart, a network change that did not cut it) stays "connected" throughout: done.
  iceRestartExchanged(name) {
    const st = this.ice[name];
    const pc = this.pcs[name];
    this.renderIce();
    if (!st.inFlight || !pc) return;
    if (pc.iceConnectionState === 'connected' || pc.iceConnectionState === 'completed') this.iceRestartDone(name, true);
  }

  iceRestartDone(name, ok) {
    const st = this.ice[name];
    if (!st.inFlight || this.ended) return;
    st.inFlight = false;
    clearTimeout(st.attemptTimer);
    st.attemptTimer = null;
    if (ok) {
      st.attempts = 0;
      if (!this.ice.publish.inFlight && !this.ice.subscribe.inFlight) hideBanner('ice');
      this.renderIce();
      return;
    }
    st.attempts++;
    console.error(`sfu: ICE restart ${st.attempts} of the ${name} connection failed`);
    if (st.attempts >= ICE_RESTART_MAX_ATTEMPTS) {
      hideBanner('ice');
      this.lost('The media connection was lost; reconnecting…');
      return;
    }
    const delay = Math.min(ICE_RESTART_BACKOFF_FIRST_MS * 2 ** (st.attempts - 1), ICE_RESTART_BACKOFF_MAX_MS);
    st.retryTimer = setTimeout(() => {
      st.retryTimer = null;
      const pc = this.pcs[name];
      const state = pc ? pc.iceConnectionState : 'closed';
      if (state !== 'connected' && state !== 'completed') this.requestIceRestart(name, 'retry');
      else st.attempts = 0;
    }, delay);
    this.renderIce();
  }

  // renderIce publishes both connections' ICE state to the test hook.
  renderIce() {
    if (this !== app.session) return;
    for (const name of ['publish', 'subscribe']) {
      const pc = this.pcs[name];
      const st = this.ice[name];
      window.sfu.ice[name] = pc ? {
        state: pc.iceConnectionState,
        restarting: st.inFlight,
        attempts: st.attempts,
        ufrag: iceUfrag(pc.remoteDescription),
      } : null;
    }
  }

  ensureSubscribePC() {
    if (this.subscribePC) return this.subscribePC;
    const pc = this.createPC('subscribe');
    pc.ontrack = (ev) => this.onRemoteTrack(pc, ev);
    return pc;
  }

  onRemoteTrack(pc, ev) {
    const { participantId, trackId } = remoteIds(pc, ev);
    if (!participantId) {
      console.error('sfu: received a track without a participant id:', ev.track.id);
      return;
    }
    if (participantId === window.sfu.participantId || app.goneIds.has(participantId)) return;
    const p = app.participants.get(participantId) || addParticipant({ id: participantId });
    attachRemoteTrack(p, trackId, ev.track);

    const track = ev.track;
    track.addEventListener('ended', () => detachRemoteTrackObject(p, track));
    if (ev.streams[0]) {
      ev.streams[0].addEventListener('removetrack', (e) => {
        if (e.track === track) detachRemoteTrackObject(p, track);
      });
    }
  }

  // startPublishing waits for the camera/microphone, then adds them (and a running screen share, e.g. after a
  // reconnect) to the publish connection. Adding the transceivers fires negotiationneeded, which sends the offer.
  async startPublishing() {
    const stream = await app.mediaReady;
    if (this.ended) return;
    const tracks = stream ? stream.getTracks().filter((t) => t.readyState === 'live') : [];
    for (const track of tracks) {
      const init = { direction: 'sendonly', streams: [stream] };
      if (track.kind === 'video') {
        track.contentHint = 'detail';
        if (config.simulcast) init.sendEncodings = simulcastEncodings();
      }
      const transceiver = this.publishTrack(track, track.kind === 'video' ? 'camera' : 'microphone', init);
      if (transceiver && track.kind === 'video') {
        preferCodec(transceiver, config.codec);
        preferResolution(transceiver.sender);
      }
    }
    this.publishScreen();
  }

  ensurePublishPC() {
    if (this.publishPC) return this.publishPC;
    const pc = this.createPC('publish');
    pc.onnegotiationneeded = () => this.negotiatePublish();
    return pc;
  }

  // publishTrack says what the track carries, then adds it to the publish connection. Order matters: the server
  // must have the track_source before the offer with the track, and that offer is made only once
  // negotiationneeded fires, after this task. Returns the transceiver, or null if the track was already there.
  publishTrack(track, source, init) {
    const pc = this.ensurePublishPC();
    if (pc.getSenders().some((s) => s.track === track)) return null;
    this.send({ type: 'track_source', track: track.id, source });
    return pc.addTransceiver(track, init);
  }

  // publishScreen adds our running screen share, if any, to the publish connection: in its own MediaStream, as one
  // encoding (no simulcast). Before joined it does nothing: startPublishing calls it again then.
  publishScreen() {
    const track = app.screenTrack;
    if (!track || track.readyState !== 'live' || !app.screenStream) return;
    if (this.ended || !this.joined || !app.canPublish) return;
    const init = {
      direction: 'sendonly',
      streams: [app.screenStream],
      sendEncodings: [{ maxBitrate: SCREEN_MAX_BITRATE }],
    };
    const transceiver = this.publishTrack(track, 'screen', init);
    if (transceiver) {
      preferCodec(transceiver, config.codec);
      preferResolution(transceiver.sender);
    }
  }

  // unpublishTrack takes a track off the publish connection; removeTrack fires negotiationneeded, and the next
  // offer no longer sends it.
  unpublishTrack(track) {
    const pc = usablePC(this.publishPC);
    if (!pc || this.ended) return;
    const sender = pc.getSenders().find((s) => s.track === track);
    if (sender) pc.removeTrack(sender);
  }

  // negotiatePublish: createOffer -> setLocalDescription -> send. The answer comes back as an "answer" message.
  // An ICE restart (publishRestartPending) goes with the next offer: this one, or the one after the pending answer.
  async negotiatePublish() {
    const pc = this.publishPC;
    if (!pc || this.ended) return;
    if (!app.canPublish) return; // the server would refuse the offer; "You may publish again" offers anew
    if (this.makingOffer || pc.signalingState !== 'stable') {
      this.offerAgain = true; // offer again once the pending answer has been applied
      return;
    }
    this.makingOffer = true;
    const iceRestart = this.publishRestartPending;
    this.publishRestartPending = false;
    try {
      const offer = await pc.createOffer(iceRestart ? { iceRestart: true } : undefined);
      if (this.ended) return;
      await pc.setLocalDescription(offer);
      if (this.ended) return;
      this.publishOfferRestarts = iceRestart;
      this.send({ type: 'offer', pc: 'publish', sdp: pc.localDescription.sdp });
    } catch (err) {
      if (this.ended) return;
      console.error('sfu: publish offer failed:', err);
      showErrorToast(`Could not create the publish offer: ${err.message || err}`);
      if (iceRestart) this.iceRestartDone('publish', false);
    } finally {
      this.makingOffer = false;
    }
  }

  async onAnswer(msg) {
    if (msg.pc !== 'publish') {
      console.error(`sfu: unexpected answer for pc "${msg.pc}"`);
      return;
    }
    const pc = this.publishPC;
    if (!pc || pc.signalingState !== 'have-local-offer') {
      console.error('sfu: publish answer with no offer pending');
      return;
    }
    await pc.setRemoteDescription({ type: 'answer', sdp: msg.sdp });
    await this.flushCandidates('publish');
    if (this.publishOfferRestarts) {
      this.publishOfferRestarts = false;
      this.iceRestartExchanged('publish');
    }
    if (!this.publishAnswered) {
      this.publishAnswered = true;
      this.syncMuteState();
      // Some browsers accept sender parameters only once negotiated: try again now.
      for (const sender of pc.getSenders()) {
        if (sender.track && sender.track.kind === 'video') preferResolution(sender);
      }
    }
    if (this.offerAgain) {
      this.offerAgain = false;
      this.negotiatePublish();
    }
  }

  // syncMuteState tells the server about tracks that were muted before they were published (e.g. before a
  // reconnect).
  syncMuteState() {
    const pc = this.publishPC;
    if (!pc) return;
    for (const sender of pc.getSenders()) {
      if (sender.track && !sender.track.enabled) {
        this.send({ type: 'mute', track: sender.track.id, muted: true });
      }
    }
  }

  // onOffer: the server (re)negotiates the subscribe connection:
  // setRemoteDescription -> held candidates -> createAnswer -> setLocalDescription -> send answer.
  async onOffer(msg) {
    if (msg.pc !== 'subscribe') {
      console.error(`sfu: unexpected offer for pc "${msg.pc}"`);
      return;
    }
    const pc = this.ensureSubscribePC();
    await pc.setRemoteDescription({ type: 'offer', sdp: msg.sdp });
    await this.flushCandidates('subscribe');
    const answer = await pc.createAnswer();
    if (this.ended) return;
    await pc.setLocalDescription(answer);
    if (this.ended) return;
    this.send({ type: 'answer', pc: 'subscribe', sdp: pc.localDescription.sdp });
    const st = this.ice.subscribe;
    if (st.inFlight && iceUfrag(pc.remoteDescription) !== st.ufrag) this.iceRestartExchanged('subscribe');
  }

  // rollbackPublishOffer drops a publish offer the server refused, so that the connection can offer again.
  async rollbackPublishOffer() {
    const pc = usablePC(this.publishPC);
    if (!pc || pc.signalingState !== 'have-local-offer') return;
    if (this.publishOfferRestarts) {
      this.publishOfferRestarts = false;
      this.iceRestartDone('publish', false);
    }
    try {
      await pc.setLocalDescription({ type: 'rollback' });
    } catch (err) {
      console.error('sfu: rollback of the publish offer failed:', err);
    }
  }

  async onCandidate(msg) {
    const name = msg.pc;
    if (name !== 'publish' && name !== 'subscribe') return;
    const cand = msg.candidate;
    if (!cand || !cand.candidate) return; // end of gathering
    const pc = this.pcs[name];
    if (!pc || !pc.remoteDescription) {
      this.pendingCandidates[name].push(cand);
      return;
    }
    await addCandidate(pc, cand);
  }

  async flushCandidates(name) {
    const pc = this.pcs[name];
    const held = this.pendingCandidates[name];
    this.pendingCandidates[name] = [];
    for (const cand of held) {
      if (this.ended) return;
      await addCandidate(pc, cand);
    }
  }
}

function newIceState() {
  return {
    inFlight: false, // a restart was started and is not connected yet
    attempts: 0, // failed restarts in a row
    reason: '',
    ufrag: '', // the server's ICE ufrag when the restart started
    graceTimer: null, // "disconnected": restart if it lasts
    attemptTimer: null, // the restart in flight has failed if not connected by then
    retryTimer: null, // the next try after a failed one
  };
}

function clearIceTimers(st) {
  clearTimeout(st.graceTimer);
  clearTimeout(st.attemptTimer);
  clearTimeout(st.retryTimer);
  st.graceTimer = st.attemptTimer = st.retryTimer = null;
}

// iceUfrag: the ICE username fragment of a session description ('' if none).
function iceUfrag(desc) {
  const m = desc && desc.sdp ? /^a=ice-ufrag:(\S+)/m.exec(desc.sdp) : null;
  return m ? m[1] : '';
}

// restartIce (test hook) restarts ICE on both connections of the joined session now.
function restartIce() {
  const s = app.session;
  if (!s || s.ended || !s.joined) return false;
  return s.restartIce('forced', true);
}

// onNetworkChange: the browser went online again or changed networks: the media paths may be gone.
function onNetworkChange() {
  const s = app.session;
  if (!s || s.ended || !s.joined || app.stopped) return;
  s.restartIce('network', true);
}

// simulcastEncodings: three layers for the SFU to choose from per subscriber (rid q, h, f: a quarter, half and
// full size). VP8 carries three temporal layers in each so that the SFU can also lower the frame rate.
function simulcastEncodings() {
  const layers = [
    { rid: 'q', scaleResolutionDownBy: 4, maxBitrate: 150_000 },
    { rid: 'h', scaleResolutionDownBy: 2, maxBitrate: 500_000 },
    { rid: 'f', scaleResolutionDownBy: 1, maxBitrate: 2_500_000 },
  ];
  if (config.codec === 'video/VP8') {
    for (const l of layers) l.scalabilityMode = 'L1T3';
  }
  return layers;
}

// preferCodec puts the chosen video codec first in the offer, when the browser lets the page choose.
function preferCodec(transceiver, mimeType) {
  if (!transceiver.setCodecPreferences || !window.RTCRtpSender || !RTCRtpSender.getCapabilities) return;
  const caps = RTCRtpSender.getCapabilities('video');
  if (!caps) return;
  const wanted = caps.codecs.filter((c) => c.mimeType.toLowerCase() === mimeType.toLowerCase());
  if (wanted.length === 0) return;
  const rest = caps.codecs.filter((c) => c.mimeType.toLowerCase() !== mimeType.toLowerCase());
  try {
    transceiver.setCodecPreferences([...wanted, ...rest]);
  } catch (err) {
    console.error('sfu: cannot prefer', mimeType, err);
  }
}

async function addCandidate(pc, cand) {
  try {
    await pc.addIceCandidate(cand);
  } catch (err) {
    console.error('sfu: addIceCandidate failed:', err, cand);
  }
}

// preferResolution asks the encoder to drop frames rather than resolution. Best effort: not every browser
// supports degradationPreference or accepts parameters before negotiation.
async function preferResolution(sender) {
  try {
    const params = sender.getParameters();
    if (params.degradationPreference === 'maintain-resolution') return;
    params.degradationPreference = 'maintain-resolution';
    await sender.setParameters(params);
  } catch (err) {
    // ignored on purpose
  }
}

// ---------------------------------------------------------------------------------------------------------
// Connecting, reconnecting, leaving
// ---------------------------------------------------------------------------------------------------------

class FatalError extends Error {}

async function fetchDevToken() {
  const url = `/token?room=${encodeURIComponent(config.room)}&name=${encodeURIComponent(config.name)}`;
  const res = await fetch(url, { cache: 'no-store' });
  if (res.status === 404) throw new FatalError('This server needs a token: open the link with ?token=...');
  if (!res.ok) throw new Error(`GET /token answered ${res.status}`);
  const body = await res.json();
  if (!body || typeof body.token !== 'string' || !body.token) throw new Error('GET /token returned no token');
  return body.token;
}

// connect starts a new session: a token (fresh in dev mode), then the socket and join.
async function connect() {
  app.reconnectTimer = null;
  if (app.stopped) return;
  let token = app.token || config.token; // the latest the server sent, else the page's
  if (!token) {
    try {
      token = await fetchDevToken();
    } catch (err) {
      if (err instanceof FatalError) {
        fail(err.message);
      } else {
        console.error('sfu: token request failed:', err.message || err);
        scheduleReconnect();
      }
      return;
    }
  }
  if (app.stopped) return;
  // A node that went away may not even refuse the connection (a dead host): with other nodes to try, wait less.
  const others = signalingURLs().length > 1;
  const s = new Session(token, nextSignalingURL());
  if (others) s.openTimeoutMs = FAILOVER_OPEN_TIMEOUT_MS;
  app.session = s;
  s.open();
}

function onSessionLost(session, notice) {
  if (session !== app.session || app.stopped) return;
  app.session = null;
  scheduleReconnect(notice);
}

// followRedirect replaces the session, which the server redirected, with one on url, at once and with the same
// token (see Session.onRedirect).
function followRedirect(session, url, reason) {
  if (session !== app.session || app.stopped) return;
  if (app.redirectsInRow > MAX_REDIRECTS) {
    app.session = null;
    refuseJoin('redirect_loop', `The servers of this region keep sending the page to one another ` +
      `(${app.redirectsInRow} redirects in a row, the last to ${url}). Try again in a moment.`);
    return;
  }
  if (session.joined) {
    // A draining node sends its participants away: what this session showed goes, the next one shows it again.
    clearSessionView();
    setState('reconnecting');
    showBanner('conn', reason === 'draining' ? 'The server is shutting down; moving to another server…'
      : 'Moving to another server…', { kind: 'warn', dismissable: false });
  }
  const s = new Session(session.token, url);
  s.redirected = true;
  app.session = s;
  s.open();
}

// clearSessionView removes what a session showed and will not show again: remote participants, our id, what
// runs on our tracks, ICE restarts.
function clearSessionView() {
  clearRemoteParticipants();
  window.sfu.participantId = null;
  setTranscribed([]); // the next session's server says again who it transcribes
  app.denoise.tracks = new Map(); // nothing runs for us until the next session says so
  app.denoise.pending = false;
  setDenoiseState();
  hideBanner('ice'); // a new session: no ICE restart runs
}

// scheduleReconnect tears down what the old session showed and tries again after 0.3 s, 0.6 s, 1.2 s ... 10 s,
// each attempt on the next of signalingURLs (the node that went away first, then the region's others).
function scheduleReconnect(notice) {
  if (app.stopped || app.reconnectTimer) return;
  clearSessionView();
  app.redirectsInRow = 0; // a failure breaks a row of redirects: the backoff paces the attempts from here
  setState('reconnecting');

  const delay = app.backoffMs;
  app.backoffMs = Math.min(app.backoffMs * 2, BACKOFF_MAX_MS);
  const deadline = Date.now() + delay;
  const showCountdown = () => {
    const secs = Math.max(1, Math.ceil((deadline - Date.now()) / 1000));
    showBanner('conn', `Cannot reach the server — retrying in ${secs}s`, { kind: 'warn', dismissable: false });
  };
  clearInterval(app.countdownTimer);
  if (notice) {
    showBanner('conn', notice, { kind: 'warn', dismissable: false });
  } else {
    showCountdown();
    app.countdownTimer = setInterval(showCountdown, 1000);
  }
  app.reconnectTimer = setTimeout(() => {
    clearInterval(app.countdownTimer);
    if (!notice) showBanner('conn', 'Cannot reach the server — retrying now…', { kind: 'warn', dismissable: false });
    connect();
  }, delay);
}

function stopReconnecting() {
  clearTimeout(app.reconnectTimer);
  clearInterval(app.countdownTimer);
  app.reconnectTimer = null;
  hideBanner('conn');
}

// shutdownPage ends everything for good: no session, no retries, no media.
function shutdownPage() {
  app.stopped = true;
  stopReconnecting();
  if (app.session) {
    app.session.close();
    app.session = null;
  }
  clearRemoteParticipants();
  stopLocalMedia();
  renderLocal();
}

// fail: an error that retrying cannot fix (no token, token refused, no room).
function fail(message) {
  console.error('sfu:', message);
  shutdownPage();
  setState('error');
  showBanner('fatal', message, { kind: 'error', dismissable: false });
}

// refuseJoin: the server would not let us in (room locked or full, server busy): no retry loop, a banner
// that offers to try again by hand.
function refuseJoin(code, text) {
  console.error('sfu:', text);
  window.sfu.joinError = code;
  shutdownPage();
  setState('error');
  showBanner('join', text, {
    kind: 'error',
    dismissable: false,
    action: { label: 'Try again', onClick: () => location.reload() },
  });
}

function endMeeting(text) {
  shutdownPage();
  setState('left');
  $('ended-text').textContent = text;
  $('rejoin').href = location.href;
  $('ended').hidden = false;
}

function leave() {
  if (app.stopped) return;
  // leave goes out before the socket closes: WebSocket sends queued frames before its close frame.
  if (app.session) app.session.send({ type: 'leave' });
  endMeeting('You left the meeting');
}

// ---------------------------------------------------------------------------------------------------------
// Stats overlay
// ---------------------------------------------------------------------------------------------------------

function toggleStats() {
  app.statsOn = !app.statsOn;
  document.body.classList.toggle('show-stats', app.statsOn);
  clearInterval(app.statsTimer);
  app.statsTimer = null;
  app.statsPrev = new Map();
  for (const tile of allTiles()) tile.statsEl.textContent = '';
  if (app.statsOn) {
    app.statsTimer = setInterval(refreshStats, STATS_INTERVAL_MS);
    refreshStats();
  }
  renderLocal();
}

// refreshStats fills the overlays: each remote video tile from the subscribe connection's inbound-rtp report of
// its track, our own tile from the publish connection's outbound-rtp reports.
async function refreshStats() {
  if (app.statsBusy) return; // a slow getStats: skip a beat rather than pile up
  app.statsBusy = true;
  try {
    const session = app.session;
    if (session !== app.statsSession) {
      app.statsSession = session; // new connections count from zero
      app.statsPrev = new Map();
    }
    const prev = app.statsPrev;
    const next = new Map();
    let texts = new Map(); // tile -> overlay text
    const sub = usablePC(session && session.subscribePC);
    if (sub) texts = inboundStatsTexts(await sub.getStats(), prev, next);
    const pub = usablePC(session && session.publishPC);
    if (pub) texts.set(app.localTile, outboundStatsText(await pub.getStats(), prev, next));
    if (!app.statsOn || session !== app.session) return;
    app.statsPrev = next;
    for (const tile of allTiles()) tile.statsEl.textContent = texts.get(tile) || '';
  } catch (err) {
    console.error('sfu: stats overlay failed:', err);
  } finally {
    app.statsBusy = false;
  }
}

// counterDelta remembers the counters of one report and returns how much each grew since the last refresh,
// with the time between in seconds. Null the first time, or if a counter went back.
function counterDelta(prev, next, key, r, fields) {
  const cur = { timestamp: Number(r.timestamp) || 0 };
  for (const f of fields) cur[f] = Number(r[f]) || 0;
  next.set(key, cur);
  const old = prev.get(key);
  if (!old || !(cur.timestamp > old.timestamp)) return null;
  const d = { seconds: (cur.timestamp - old.timestamp) / 1000 };
  for (const f of fields) {
    d[f] = cur[f] - old[f];
    if (d[f] < 0) return null;
  }
  return d;
}

// fmt rounds a number for the overlay, or shows a dash when there is none yet.
function fmt(v, unit = '') {
  return typeof v === 'number' && Number.isFinite(v) ? `${Math.round(v)}${unit}` : '–';
}

// layerOf guesses the simulcast layer (rid) of a received video from its height.
function layerOf(height) {
  if (!height) return '–';
  if (height <= 300) return 'q';
  if (height <= 600) return 'h';
  return 'f';
}

// roundTripMs: the current round trip time of the connection's selected candidate pair, in ms.
function roundTripMs(report) {
  let pair = null;
  report.forEach((r) => {
    if (r.type === 'transport' && r.selectedCandidatePairId) pair = report.get(r.selectedCandidatePairId) || pair;
  });
  if (!pair) {
    report.forEach((r) => {
      if (!pair && r.type === 'candidate-pair' && r.nominated && r.state === 'succeeded') pair = r;
    });
  }
  return pair && typeof pair.currentRoundTripTime === 'number' ? pair.currentRoundTripTime * 1000 : null;
}

// inboundStatsTexts matches the inbound-rtp video reports to tiles by trackIdentifier, the id of the receiver's
// MediaStreamTrack.
function inboundStatsTexts(report, prev, next) {
  const tilesByTrackId = new Map();
  for (const [track, tile] of app.trackTiles) tilesByTrackId.set(track.id, tile);
  const rtt = roundTripMs(report);
  const texts = new Map();
  report.forEach((r) => {
    if (r.type !== 'inbound-rtp' || (r.kind || r.mediaType) !== 'video') return;
    const tile = tilesByTrackId.get(r.trackIdentifier);
    if (!tile) return;
    const d = counterDelta(prev, next, `in:${r.id}`, r,
      ['bytesReceived', 'framesDecoded', 'jitterBufferDelay', 'jitterBufferEmittedCount']);
    const height = r.frameHeight || 0;
    const size = r.frameWidth && height ? `${r.frameWidth}x${height}` : 'no video';
    const fps = typeof r.framesPerSecond === 'number' ? r.framesPerSecond : d && d.framesDecoded / d.seconds;
    const kbps = d && (d.bytesReceived * 8) / d.seconds / 1000;
    const jitterMs = d && d.jitterBufferEmittedCount > 0
      ? (d.jitterBufferDelay / d.jitterBufferEmittedCount) * 1000 : null;
    const text = [
      `${size}  ${fmt(fps, ' fps')}  layer ${layerOf(height)}`,
      `${fmt(kbps, ' kbps')}  jitter buf ${fmt(jitterMs, ' ms')}`,
      `lost ${fmt(r.packetsLost || 0)}  rtt ${fmt(rtt, ' ms')}`,
    ].join('\n');
    const before = texts.get(tile);
    texts.set(tile, before ? `${before}\n${text}` : text);
  });
  return texts;
}

// outboundStatsText describes what we send: one line per simulcast layer (rid) of the camera, one for the
// screen share, and why the encoder holds back, if it does.
function outboundStatsText(report, prev, next) {
  const screenId = app.screenTrack ? app.screenTrack.id : null;
  const rows = [];
  const limits = { camera: new Set(), screen: new Set() }; // qualityLimitationReason other than 'none'
  report.forEach((r) => {
    if (r.type !== 'outbound-rtp' || (r.kind || r.mediaType) !== 'video') return;
    const source = r.mediaSourceId ? report.get(r.mediaSourceId) : null;
    const screen = !!(source && screenId && source.trackIdentifier === screenId);
    const d = counterDelta(prev, next, `out:${r.id}`, r, ['bytesSent', 'framesEncoded']);
    const fps = typeof r.framesPerSecond === 'number' ? r.framesPerSecond : d && d.framesEncoded / d.seconds;
    const kbps = d && (d.bytesSent * 8) / d.seconds / 1000;
    const size = r.frameWidth && r.frameHeight ? `${r.frameWidth}x${r.frameHeight}` : 'off';
    const label = screen ? 'screen' : r.rid || 'video';
    const order = screen ? 9 : ({ q: 0, h: 1, f: 2 }[r.rid] ?? 3); // the camera's layers first, small to large
    rows.push({ order, text: `${label} ${size} ${fmt(fps, 'fps')} ${fmt(kbps, ' kbps')}` });
    const reason = r.qualityLimitationReason;
    if (reason && reason !== 'none') limits[screen ? 'screen' : 'camera'].add(reason);
  });
  if (rows.length === 0) return '';
  rows.sort((a, b) => a.order - b.order);
  const lines = rows.map((row) => row.text);
  let limit = `limit: ${Array.from(limits.camera).join('+') || 'none'}`;
  if (limits.screen.size > 0) limit += `, screen ${Array.from(limits.screen).join('+')}`;
  lines.push(`${limit}  rtt ${fmt(roundTripMs(report), ' ms')}`);
  return lines.join('\n');
}

// ---------------------------------------------------------------------------------------------------------
// Test hooks
// ---------------------------------------------------------------------------------------------------------

function usablePC(pc) {
  return pc && pc.signalingState !== 'closed' ? pc : null;
}

// subscribeStats: one entry per inbound-rtp report of the subscribe connection.
async function subscribeStats() {
  const out = { video: [], audio: [] };
  const pc = usablePC(app.session && app.session.subscribePC);
  if (!pc) return out;
  const report = await pc.getStats();
  report.forEach((r) => {
    if (r.type !== 'inbound-rtp') return;
    const kind = r.kind || r.mediaType;
    if (kind === 'video') {
      out.video.push({
        trackIdentifier: r.trackIdentifier || '',
        frameWidth: r.frameWidth || 0,
        frameHeight: r.frameHeight || 0,
        framesDecoded: r.framesDecoded || 0,
        framesPerSecond: r.framesPerSecond || 0,
        bytesReceived: r.bytesReceived || 0,
      });
    } else if (kind === 'audio') {
      out.audio.push({
        trackIdentifier: r.trackIdentifier || '',
        packetsReceived: r.packetsReceived || 0,
        bytesReceived: r.bytesReceived || 0,
      });
    }
  });
  return out;
}

// publishStats: the outbound video of the publish connection. The top-level fields are those of the largest
// video stream; `video` lists every outbound-rtp video report.
async function publishStats() {
  const out = { frameWidth: 0, frameHeight: 0, framesEncoded: 0, video: [] };
  const pc = usablePC(app.session && app.session.publishPC);
  if (!pc) return out;
  const report = await pc.getStats();
  report.forEach((r) => {
    if (r.type !== 'outbound-rtp' || (r.kind || r.mediaType) !== 'video') return;
    out.video.push({
      frameWidth: r.frameWidth || 0,
      frameHeight: r.frameHeight || 0,
      framesEncoded: r.framesEncoded || 0,
      framesPerSecond: r.framesPerSecond || 0,
      bytesSent: r.bytesSent || 0,
      qualityLimitationReason: r.qualityLimitationReason || '',
    });
  });
  for (const v of out.video) {
    if (v.frameWidth * v.frameHeight >= out.frameWidth * out.frameHeight) {
      out.frameWidth = v.frameWidth;
      out.frameHeight = v.frameHeight;
      out.framesEncoded = v.framesEncoded;
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------------
// Start
// ---------------------------------------------------------------------------------------------------------

function setupPage() {
  $('room-name').textContent = config.room;
  document.title = `${config.room || 'Meeting'} — SFU`;
  for (const el of document.querySelectorAll('.control-icon[data-icon]')) el.append(icon(el.dataset.icon));
  setupCaptions(); // the picker's options before renderLocal shows the choice in it

  app.localTile = createTile({ label: `You (${config.name})`, local: true });
  app.localTile.el.dataset.participantId = 'local';
  $('grid').append(app.localTile.el);
  renderLocal();

  $('btn-mic').addEventListener('click', () => toggleLocal('audio'));
  $('btn-cam').addEventListener('click', () => toggleLocal('video'));
  $('btn-screen').addEventListener('click', toggleScreen);
  $('btn-stats').addEventListener('click', toggleStats);
  $('btn-denoise').addEventListener('click', toggleDenoise);
  $('btn-leave').addEventListener('click', leave);
  $('btn-lock').addEventListener('click', toggleRoomLock);
  $('btn-end').addEventListener('click', endForEveryone);
  $('rejoin').href = location.href;
  // A new network (or the old one back): restart ICE rather than wait for the connections to fail.
  window.addEventListener('online', onNetworkChange);
  if (navigator.connection && navigator.connection.addEventListener) {
    navigator.connection.addEventListener('change', onNetworkChange);
  }
  // Closing the tab: say goodbye so the others see us leave at once.
  window.addEventListener('pagehide', () => {
    if (app.session && !app.stopped) app.session.send({ type: 'leave' });
  });
}

async function showLocalMedia() {
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

function main() {
  app.denoise.choice = config.denoise || loadDenoiseChoice();
  setDenoiseState();
  app.captions.choice = config.captions !== null ? config.captions : loadCaptionsChoice();
  setupPage();
  setCaptionsState();
  setState('connecting');
  if (!config.room) {
    fail('No room name in the address: open /room/{room}.');
    return;
  }
  // Camera and signaling start together; publishing waits for both (see Session.startPublishing).
  app.mediaReady = startMedia();
  showLocalMedia();
  connect();
}

main();
