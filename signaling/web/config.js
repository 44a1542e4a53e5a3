// @ts-check
// The page's configuration: constants, and what the address asks for (/room/{room}?name=N&token=T...).

import { chooseLanguage, setLanguage, t } from './i18n.js';

export const FAILOVER_OPEN_TIMEOUT_MS = 4000; // ...shorter while other nodes of the region wait their turn
export const BACKOFF_FIRST_MS = 300; // the first retry is quick: in a region another node can take over at once
export const BACKOFF_MAX_MS = 10000;
export const MAX_ERROR_TOASTS = 4;
export const TILE_REPORT_DELAY_MS = 200; // tile size reports wait for resizing to settle
export const STAGE_HOLD_MS = 3000; // after silence the last speaker keeps the stage this long, so the layout does not flicker
export const STRIP_MAX_COLS = 6; // stage layout: tiles per row of the strip under the stage...
export const STRIP_MIN_TILE_PX = 180; // ...fewer when the page is too narrow for them to be this wide
export const STATS_INTERVAL_MS = 1000;
export const CAPTION_CLEAR_MS = 5000; // a final caption stays this long after the last one of its speaker...
export const CAPTION_FADE_MS = 600; // ...then fades out over this long (see .caption.fading in style.css)
export const CAPTION_STALE_MS = 10000; // a partial caption with no news for this long is cleared (the final never came)
export const CAPTION_FINALS_KEPT = 50; // final captions kept in the test hook (sfu.captions.finals)
export const BUSY_RETRY_MS = 2000; // a join refused as busy is tried again after this long...
export const BUSY_RETRY_MAX = 5; // ...this many times
export const MAX_REDIRECTS = 3; // redirects followed in a row (with no join and no failure between them): more is a loop

// Languages the captions picker offers, each with the catalogue key of its name (i18n.js); '' turns captions
// off. The server translates into those it can.
export const CAPTION_LANGUAGES = [
  { tag: '', key: 'captions.off' },
  { tag: 'en', key: 'captions.lang.en' },
  { tag: 'zh-HK', key: 'captions.lang.zh-HK' },
  { tag: 'zh-Hant', key: 'captions.lang.zh-Hant' },
  { tag: 'zh-Hans', key: 'captions.lang.zh-Hans' },
  { tag: 'zh', key: 'captions.lang.zh' },
  { tag: 'es', key: 'captions.lang.es' },
  { tag: 'ja', key: 'captions.lang.ja' },
  { tag: 'ko', key: 'captions.lang.ko' },
  { tag: 'fr', key: 'captions.lang.fr' },
];
// The captions language that goes with each interface language: the picker's first language, and what
// ?captions=auto reads in.
export const UI_CAPTIONS = { en: 'en', 'zh-HK': 'zh-HK', 'zh-CN': 'zh-Hans' };
// A BCP 47 language tag as the server accepts it (sfu/captions.go).
export const LANGUAGE_TAG = /^[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8}){0,2}$/;

// The screen share asks for the shared tab's or system's sound too; browsers that cannot share it give video only.
// systemAudio 'include' offers the whole system's sound where the browser can (Chromium on Windows and ChromeOS).
export const SCREEN_CONSTRAINTS = {
  video: { frameRate: 15, width: { ideal: 1920 }, height: { ideal: 1080 } },
  audio: true,
  systemAudio: 'include',
};

// The tab's sessionStorage keeps the token it was opened with under this prefix and the room's name (the
// address does not: see takeToken).
export const TOKEN_STORAGE_PREFIX = 'sfu.token:';

export const VIDEO_SIZES = {
  '720': { width: 1280, height: 720 },
  '1080': { width: 1920, height: 1080 },
};

// ---------------------------------------------------------------------------------------------------------
// Configuration from the URL: /room/{room}?name=N&token=T&res=720|1080&simulcast=0&codec=h264&publish=0
//   &denoise=1|0|rnnoise|speex (server-side noise suppression on, off, or on with that engine)
//   &captions=LANG|off|auto (live captions in that language from the start; auto: the interface's, see
//   UI_CAPTIONS) &spoken=LANG (the language we speak)
//   &lang=en|zh-HK|zh-CN (the page's language, see i18n.js; default: the one picked before, else the browser's)
//   &prejoin=1|0 (the pre-join screen, or not; default: shown when the address names no one, so that a link with
//   ?name= joins at once as it always has, DESIGN.md)
//   &view=speaker|grid (speaker view: a stage and a strip; grid view: all tiles equal; default: the one picked
//   before, else speaker; see stage.js)
//   &blur=1|0 (background blur of our camera on or off from the start; default: the one picked before; blur.js)
// and in the fragment, which the browser never sends to the server: #e2ee=PASSPHRASE (end-to-end encryption with
// that passphrase, URL-encoded; see e2ee.js; an E2EE room asks for it when the address has none)
// ---------------------------------------------------------------------------------------------------------

export function readConfig() {
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
  const ui = chooseLanguage(params.get('lang'));
  setLanguage(ui); // before anything is worded (the guest's name)
  let name = (params.get('name') || '').trim();
  const nameGiven = !!name;
  if (!name) {
    name = t('page.guest') + '-' + String(Math.floor(Math.random() * 10000)).padStart(4, '0');
    // Keep the chosen name in the address so that a reload or "Rejoin" keeps it.
    params.set('name', name);
  }
  const query = params.toString();
  history.replaceState(null, '', `${location.pathname}${query ? '?' + query : ''}${location.hash}`);

  return {
    room,
    name,
    nameGiven, // the address named us (?name=); else name was made up, and the pre-join screen offers the last one
    token,
    res: params.get('res') === '720' ? '720' : '1080',
    simulcast: params.get('simulcast') !== '0',
    publish: params.get('publish') !== '0',
    codec: (params.get('codec') || 'vp8').toLowerCase() === 'h264' ? 'video/H264' : 'video/VP8',
    denoise: parseDenoiseParam(params.get('denoise')),
    captions: params.get('captions') === 'auto' ? UI_CAPTIONS[ui] : parseCaptionsParam(params.get('captions')),
    spoken: normalizeLanguage(params.get('spoken')) || '',
    ui,
    // The pre-join screen (prejoin.js): with ?prejoin=1 (the landing page's links), or when the address names no
    // one (a shared link); an address with ?name= joins at once (DESIGN.md's contract), as do ?prejoin=0 and
    // ?publish=0 (nothing to preview: watch only).
    prejoin: params.get('publish') !== '0' &&
      (params.get('prejoin') === '1' || (params.get('prejoin') !== '0' && !nameGiven)),
    view: parseViewParam(params.get('view')),
    e2ee: parseE2EEFragment(location.hash),
    blur: parseSwitchParam(params.get('blur')),
  };
}

// parseE2EEFragment returns the passphrase of an address's #e2ee=... ('' without one).
/** @param {string} hash */
export function parseE2EEFragment(hash) {
  const v = new URLSearchParams(String(hash || '').replace(/^#/, '')).get('e2ee');
  return v ? v.slice(0, 1024) : '';
}

// takeToken takes ?token= out of params and keeps it in this tab's sessionStorage, by room; without one in the
// address it is the token kept before (a reload), or '' (dev mode mints its own).
export function takeToken(params, room) {
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

// normalizeLanguage reads a captions language: '' for off, the tag itself, or null when it is not a tag.
export function normalizeLanguage(value) {
  if (value === null || value === undefined) return null;
  const v = String(value).trim();
  if (['', '0', 'off', 'none', 'false', 'no'].includes(v.toLowerCase())) return '';
  return LANGUAGE_TAG.test(v) ? v : null;
}

// parseCaptionsParam reads ?captions=: null when absent (or not a language tag), '' for off, else the language.
export function parseCaptionsParam(value) {
  if (value === null) return null;
  const lang = normalizeLanguage(value);
  if (lang === null) console.warn('sfu: ?captions= is not a language tag:', value);
  return lang;
}

// parseViewParam reads ?view=: 'grid', 'speaker', or '' when absent or unknown (the page then keeps the last choice).
/** @param {string | null} value */
export function parseViewParam(value) {
  const v = String(value || '').trim().toLowerCase();
  return v === 'grid' || v === 'speaker' ? v : '';
}

// parseSwitchParam reads an on/off parameter (?blur=): null when absent or neither, else true or false.
/** @param {string | null} value @returns {boolean | null} */
export function parseSwitchParam(value) {
  const v = String(value === null ? '' : value).trim().toLowerCase();
  if (['1', 'on', 'true', 'yes'].includes(v)) return true;
  if (['0', 'off', 'false', 'no'].includes(v)) return false;
  return null;
}

// parseDenoiseParam reads ?denoise=: null when absent, else the choice {enabled, engine} it asks for. An engine
// name the server does not know is refused by the server (bad_request), which the page then shows.
export function parseDenoiseParam(value) {
  if (value === null) return null;
  const v = value.trim().toLowerCase();
  if (['0', 'off', 'false', 'no'].includes(v)) return { enabled: false, engine: '' };
  if (['', '1', 'on', 'true', 'yes'].includes(v)) return { enabled: true, engine: '' };
  return { enabled: true, engine: v.slice(0, 32) };
}

export const config = readConfig();
export const usingDevToken = !config.token;
