// @ts-check
// Live captions: the choice of language, captions over the tiles and in the strip, the transcript.

import {
  CAPTION_CLEAR_MS, CAPTION_FADE_MS, CAPTION_FINALS_KEPT, CAPTION_LANGUAGES, CAPTION_STALE_MS, UI_CAPTIONS, config,
  normalizeLanguage,
} from './config.js';
import { t } from './i18n.js';
import { fetchDevToken } from './connection.js';
import { allTiles } from './layout.js';
import { app, expose, hook } from './store.js';
import { setTileTranscribed } from './tiles.js';
import { $, hideBanner, showBanner } from './ui.js';

// The server transcribes everyone's speech for the participants that read captions: a captions message says in
// which language we read them ([] off) and, optionally, which language we speak (?spoken=). Captions come as
// caption messages, partial ones while an utterance goes on and a final one (with translations into our
// language, when the server can translate) when it ends. Each shows over the speaker's tile, or in the caption
// strip at the bottom of the stage for speakers without a tile (ourselves). As with noise suppression, the
// user's last choice is kept in localStorage and sent again after each joined; ?captions= wins over it.

export const CAPTIONS_STORAGE_KEY = 'sfu.captions';

export function loadCaptionsChoice() {
  try {
    const v = JSON.parse(localStorage.getItem(CAPTIONS_STORAGE_KEY) || 'null');
    if (v && typeof v.lang === 'string') return normalizeLanguage(v.lang);
  } catch (err) {
    // storage disabled or garbage in it: no stored choice
  }
  return null;
}

export function saveCaptionsChoice(lang) {
  try {
    localStorage.setItem(CAPTIONS_STORAGE_KEY, JSON.stringify({ lang }));
  } catch (err) {
    // storage may be disabled: the choice then lasts as long as the page
  }
}

// setCaptions is the user's choice (the picker, or the test hook): read captions in lang ('' or 'off': no
// captions). Returns true if the request went out now, false if it waits for the next joined (or lang is not a
// language tag).
export function setCaptions(lang) {
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
export function sendCaptions(session, explicit) {
  const lang = app.captions.choice || '';
  if (!session || session.ended || !session.joined) return false;
  if (!explicit && !lang && !config.spoken) return false;
  const msg = { type: 'captions', languages: lang ? [lang] : [] };
  if (config.spoken) msg.spoken = config.spoken;
  session.send(msg);
  return true;
}

// translationIn finds the translation into lang (tags compare without regard to case).
export function translationIn(translations, lang) {
  const want = lang.toLowerCase();
  for (const [k, v] of Object.entries(translations)) {
    if (k.toLowerCase() === want && v) return v;
  }
  return '';
}

// onCaption shows a caption message: a partial replaces the speaker's line as it comes, a final sets it (in our
// language when the server translated it, else as spoken) and stays CAPTION_CLEAR_MS.
export function onCaption(msg) {
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
export function captionLine(participantId) {
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
  line.speakerEl.textContent = participantId && participantId === hook.participantId
    ? t('tile.you', { name: app.localName }) : participantId || t('captions.someone');
  return line;
}

export function showCaption(participantId, text, final) {
  if (!final && !text) return; // nothing heard yet: leave the last caption as it is
  const line = captionLine(participantId);
  clearTimeout(line.timer);
  line.el.classList.toggle('partial', !final);
  line.el.classList.remove('fading');
  line.textEl.textContent = text;
  line.el.hidden = !text;
  line.timer = setTimeout(() => fadeCaption(line), final ? CAPTION_CLEAR_MS : CAPTION_STALE_MS);
}

export function fadeCaption(line) {
  line.el.classList.add('fading');
  line.timer = setTimeout(() => clearCaption(line), CAPTION_FADE_MS);
}

export function clearCaption(line) {
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
export function clearCaptionLines() {
  for (const tile of allTiles()) clearCaption(tile.caption);
  for (const line of Array.from(app.captions.strip.values())) clearCaption(line);
}

// onCaptionsStatus: the server's captions engine stopped working, or works again.
// transcribedIds is the list of a transcription message (signaling/PROTOCOL.md): the participant ids whose
// speech the server transcribes now, without duplicates; anything not a string is left out. DOM-free.
export function transcribedIds(msg) {
  const list = msg && Array.isArray(msg.transcribed) ? msg.transcribed : [];
  return Array.from(new Set(list.filter((id) => typeof id === 'string' && id !== '')));
}

// onTranscription: the server says whose microphone it transcribes for live captions (security finding 7: the
// page shows it, on each of their tiles, ours included).
export function onTranscription(msg) {
  setTranscribed(transcribedIds(msg));
}

export function setTranscribed(ids) {
  app.transcribed = new Set(ids);
  expose({ transcribed: ids.slice() });
  renderTranscribed();
}

// renderTranscribed badges the tile of each participant the server transcribes, and only those: the main tile
// (the microphone's), not screen shares; our own tile when our id is in the list.
export function renderTranscribed() {
  for (const p of app.participants.values()) setTileTranscribed(p.tile, app.transcribed.has(p.id));
  if (app.localTile) {
    const self = hook.participantId;
    setTileTranscribed(app.localTile, !!self && app.transcribed.has(self));
  }
}

export function onCaptionsStatus(msg) {
  app.captions.available = msg.available !== false;
  app.captions.reason = app.captions.available ? '' : String(msg.reason || t('captions.reasonBroken'));
  if (app.captions.available) {
    hideBanner('captions');
  } else {
    console.error('sfu: captions unavailable:', app.captions.reason);
    if (app.captions.choice) showBanner('captions', t('captions.unavailable', { reason: app.captions.reason }), { kind: 'warn' });
  }
  setCaptionsState();
}

// onCaptionsError: the server refused a captions request (error message with ref "captions").
export function onCaptionsError(msg) {
  const code = msg.code || 'error';
  const text = msg.message || '';
  console.error(`sfu: captions refused (${code}): ${text}`);
  app.captions.error = text ? `${code}: ${text}` : code;
  let notice;
  switch (code) {
    case 'e2ee':
      app.captions.available = false;
      app.captions.reason = t('captions.reasonE2ee');
      notice = t('captions.unavailable', { reason: app.captions.reason });
      break;
    case 'unavailable':
      app.captions.available = false;
      app.captions.reason = text || t('captions.reasonNoEngine');
      notice = t('captions.unavailable', { reason: app.captions.reason });
      break;
    default:
      notice = t('captions.refused', { detail: `${code}${text ? ': ' + text : ''}` });
  }
  showBanner('captions', notice, { kind: 'warn' });
  setCaptionsState();
}

// setCaptionsState publishes the state to the test hook and the picker.
export function setCaptionsState() {
  const c = app.captions;
  expose({ captions: {
    lang: c.choice || '',
    defaultLang: defaultCaptionsLanguage(),
    spoken: config.spoken,
    available: c.available,
    reason: c.reason,
    error: c.error,
    last: c.last ? { ...c.last, translations: { ...c.last.translations } } : null,
    finals: c.finals.map((f) => ({ ...f, translations: { ...f.translations } })),
  } });
  renderCaptions();
}

export function renderCaptions() {
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
  control.title = !lang ? t('captions.titleOff')
    : app.captions.available ? t('captions.titleOn', { lang: languageLabel(lang) })
      : t('captions.unavailable', { reason: app.captions.reason });
  $('btn-transcript').disabled = app.stopped;
}

export function languageLabel(tag) {
  const known = CAPTION_LANGUAGES.find((l) => l.tag === tag);
  return known ? t(known.key) : tag;
}

// defaultCaptionsLanguage: the captions language that goes with the interface's (zh-HK: zh-HK, zh-CN: zh-Hans,
// en: en). It is the picker's first language, right after Off; captions still start off unless the address or
// the person's last choice says otherwise (?captions=auto reads in it from the start).
export function defaultCaptionsLanguage() {
  return UI_CAPTIONS[config.ui] || 'en';
}

// transcriptToken: the token the page joined with (a fresh one in dev mode between sessions).
export async function transcriptToken() {
  if (app.session && app.session.token) return app.session.token;
  if (config.token) return config.token;
  return fetchDevToken();
}

// transcript fetches the room's final captions as WebVTT, translated into lang when the server can (default:
// the captions language; '' as spoken). Rejects with the server's reason when it refuses.
export async function transcript(lang) {
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
export async function downloadTranscript() {
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
    showBanner('transcript', t('captions.transcriptFailed', { error: err.message || err }), { kind: 'warn' });
    return false;
  } finally {
    renderCaptions();
  }
}

export function setupCaptions() {
  const select = $('captions-lang');
  // Off, then the interface's language, then the others in their usual order.
  const first = defaultCaptionsLanguage();
  const ordered = [
    ...CAPTION_LANGUAGES.filter((l) => l.tag === ''),
    ...CAPTION_LANGUAGES.filter((l) => l.tag === first),
    ...CAPTION_LANGUAGES.filter((l) => l.tag !== '' && l.tag !== first),
  ];
  for (const { tag, key } of ordered) select.append(new Option(t(key), tag));
  select.addEventListener('change', () => setCaptions(select.value));
  $('btn-transcript').addEventListener('click', downloadTranscript);
}
