// @ts-check
// Server-side noise suppression: the user's choice, what the server says runs, the button.

import { t } from './i18n.js';
import { localTrack, localTrackState } from './media.js';
import { app, expose, hook } from './store.js';
import { $, hideBanner, showBanner } from './ui.js';

// The server denoises our microphone when asked with a denoise message; it answers with an audio_processing
// message per microphone track (which processors run on it), or with an error whose ref is "denoise". The
// user's last choice is kept in localStorage and sent again after each joined, so a reload or a reconnect keeps
// it. ?denoise= in the address wins over the stored choice.

export const DENOISE_STORAGE_KEY = 'sfu.denoise';

export function loadDenoiseChoice() {
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

export function saveDenoiseChoice(choice) {
  try {
    localStorage.setItem(DENOISE_STORAGE_KEY, JSON.stringify(choice));
  } catch (err) {
    // storage may be disabled: the choice then lasts as long as the page
  }
}

// setDenoise is the user's choice (the button, or the test hook): remember it and tell the server. engine
// picks a denoiser by name ('rnnoise', 'speex'); undefined keeps the last one chosen, '' the room's default.
// Returns true if the request went out now, false if it waits for the next joined.
export function setDenoise(enabled, engine) {
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
export function sendDenoise(session) {
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
export function confirmedProcessors() {
  const out = [];
  for (const procs of app.denoise.tracks.values()) {
    for (const name of procs) {
      if (!out.includes(name)) out.push(name);
    }
  }
  return out;
}

// onAudioProcessing: the server says which processors now run on one of our tracks.
export function onAudioProcessing(msg) {
  if (typeof msg.track_id !== 'string' || !msg.track_id) return;
  const procs = (Array.isArray(msg.processors) ? msg.processors : []).filter((x) => typeof x === 'string');
  app.denoise.tracks.set(msg.track_id, procs);
  app.denoise.pending = false;
  const choice = app.denoise.choice;
  if (msg.error) {
    app.denoise.error = String(msg.error);
    console.error('sfu: noise suppression refused:', msg.error);
    showBanner('denoise', t('denoise.notRunning', { error: msg.error }), { kind: 'warn' });
  } else if (procs.length > 0 || !choice || !choice.enabled) {
    // What was asked for runs (or the room's default does): any earlier complaint is over.
    app.denoise.error = '';
    app.denoise.refused = '';
    hideBanner('denoise');
  }
  setDenoiseState();
}

// onDenoiseError: the server refused a denoise request (error message with ref "denoise").
export function onDenoiseError(msg) {
  const code = msg.code || 'error';
  const text = msg.message || '';
  console.error(`sfu: denoise refused (${code}): ${text}`);
  app.denoise.pending = false;
  app.denoise.error = text ? `${code}: ${text}` : code;
  let notice;
  switch (code) {
    case 'e2ee':
      notice = t('denoise.noticeE2ee');
      app.denoise.refused = code;
      break;
    case 'unavailable':
      notice = t('denoise.noticeUnavailable', { detail: text || code });
      app.denoise.refused = code;
      break;
    case 'bad_request':
      notice = t('denoise.noticeBadRequest', { detail: text || code });
      // Most likely an engine the server does not know: the next click asks for the room's default instead.
      if (app.denoise.choice && app.denoise.choice.engine) {
        app.denoise.choice = { enabled: app.denoise.choice.enabled, engine: '' };
        saveDenoiseChoice(app.denoise.choice);
      }
      break;
    default:
      notice = t('denoise.noticeFailed', { detail: `${code}${text ? ': ' + text : ''}` });
  }
  showBanner('denoise', notice, { kind: 'warn' });
  setDenoiseState();
}

// setDenoiseState publishes the state to the test hook and the button.
export function setDenoiseState() {
  const processors = confirmedProcessors();
  const choice = app.denoise.choice;
  expose({ denoise: {
    enabled: processors.length > 0,
    processors,
    error: app.denoise.error,
    pending: app.denoise.pending,
    requested: choice ? choice.enabled : null,
    engine: choice ? choice.engine : '',
  } });
  renderDenoise();
}

export function renderDenoise() {
  const btn = $('btn-denoise');
  if (!btn) return;
  const state = hook.denoise;
  const refused = app.denoise.refused;
  btn.disabled = app.stopped || !app.canPublish || localTrackState('audio') === 'none' || !!refused;
  btn.setAttribute('aria-pressed', String(state.enabled));
  btn.dataset.pending = String(state.pending);
  btn.dataset.error = String(!!state.error);
  let title;
  if (refused === 'e2ee') {
    title = t('denoise.titleE2ee');
  } else if (refused) {
    title = t('denoise.titleUnavailable');
  } else if (state.pending) {
    title = t('denoise.titlePending');
  } else if (state.enabled) {
    title = t('denoise.titleOn', { processors: state.processors.join(', ') });
  } else {
    title = t('denoise.titleOff');
  }
  btn.title = title;
}

// toggleDenoise: the button asks for the opposite of what it shows (of what was asked, while waiting).
export function toggleDenoise() {
  const state = hook.denoise;
  const on = state.pending && state.requested !== null ? state.requested : state.enabled;
  setDenoise(!on);
}
