// @ts-check
// The page's state: one store. `app` holds everything that outlives a single session; `hook` is the test hook
// (window.sfu) that the automated browser tests read, and only this module writes it: the others call expose,
// count or set. Fields both hold (state, isAdmin, roomLocked, nodes) are written once, through set.

import { config, BACKOFF_FIRST_MS } from './config.js';

/** @typedef {{[key: string]: any}} Bag */

// Everything that outlives a single session.
export const app = {
  state: 'connecting',
  session: /** @type {import('./protocol.js').Session | null} */ (null), // the current Session, or null between attempts
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
  screenAudioTrack: null, // the shared tab's or system's sound, when the browser gave it with the share
  screenStarting: null, // Promise<boolean> while the browser's screen picker is open
  participants: new Map(), // participant id -> remote participant (see addParticipant)
  goneIds: new Set(), // participants that left during this session; late tracks of theirs are ignored
  screenSeq: 0, // numbers remote screen tiles in order of arrival: the latest one takes the stage
  speakers: [], // the last active_speakers list
  stageHolder: null, // participant id of the speaker on the stage, kept STAGE_HOLD_MS after silence
  stageTimer: null,
  // Pin, view and full screen (stage.js): the pinned tile (null: none), 'speaker' or 'grid', full-screen requests.
  stage: { pinned: null, view: 'speaker', fullscreenRequests: 0 },
  // Connection quality (quality.js): per-stats-report history of the loss counters, the uplink's state, and a
  // test's synthetic uplink sample (null: the live stats).
  quality: { history: new Map(), session: null, tiles: new Map(), uplink: { limited: false, reason: '', streak: 0, sample: null },
    uplinkOverride: null, sendingSince: 0, timer: null, busy: false },
  trackTiles: new Map(), // received MediaStreamTrack -> the tile it is shown in (for the stats overlay)
  statsOn: false,
  statsTimer: null,
  statsBusy: false,
  statsSession: null, // the session whose counters statsPrev holds
  statsPrev: new Map(), // stats report key -> counters at the previous refresh
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
  // Chat (chat.js): the last CHAT_KEPT messages (this page, reconnects included), how many came while the panel
  // was closed, whether it is open, the last error ('' none).
  chat: { messages: [], unread: 0, open: false, error: '' },
  // People panel and raised hands (people.js): the hands queue as the server last said it (ids, first raised
  // first), whether the panel is open.
  people: { hands: [], open: false, admins: new Set() }, // admins: ids of the others that are administrators
  // End-to-end encryption (encryption.js): the page's E2EE (e2ee.js) once it has a passphrase, else null.
  e2ee: /** @type {import('./e2ee.js').E2EE | null} */ (null),
  e2eeRenderTimer: /** @type {any} */ (null), // a rendering of its state is due (encryption.js)
  // Background blur (blur.js): what the user asked for (address, last choice, the buttons), the segmentation model
  // (a Promise of it once asked for: loaded once per page), the pipelines running (each owns its loop) and the
  // queue that applies the choice one change at a time.
  blur: { choice: false, model: null, pipelines: new Set(),
    queue: /** @type {Promise<unknown>} */ (Promise.resolve()), error: '', loading: false },
  busyTries: 0, // joins refused as busy since the last joined (on any socket: the server closes one that has
  // not joined within 10 s, and the page then tries on a new one)
};

// Test hook used by the automated browser tests; keep the shape stable.
/** @type {Bag} */
export const hook = { // functions are set by main.js (expose)
  state: app.state,
  participantId: null,
  stats: null, // () => Promise<object[]>: one entry per inbound-rtp report of the subscribe connection
  publishStats: null, // () => Promise<object|null>: the outbound video of the publish connection
  speakers: [], // the last active_speakers list: [{participant_id, level}], loudest first
  shareScreen: null, // () => Promise<boolean>: true once sharing (false: refused or failed, with a banner)
  stopScreen: null, // () => Promise<boolean>: true if a share was stopped
  // Server-side noise suppression as the server last confirmed it: enabled when processors is non-empty;
  // error says why the last request was refused ('' if it was not). See setDenoiseState.
  denoise: { enabled: false, processors: [], error: '', pending: false, requested: null, engine: '' },
  setDenoise: null, // (enabled, engine?) => boolean: asks for noise suppression; true if sent now, false if at join
  // Live captions: lang is what we read ('' off); defaultLang the picker's first language (the interface's: en,
  // zh-HK or zh-Hans); last is the last caption received ({participant, text, final, translations, shown}), finals
  // the last 50 final ones. See setCaptionsState.
  captions: { lang: '', defaultLang: '', spoken: '', available: true, reason: '', error: '', last: null, finals: [] },
  setCaptions: null, // (lang) => boolean: reads captions in lang ('' off); true if sent now, false if at join
  transcript: null, // (lang?) => Promise<string>: the room's transcript as WebVTT, fetched as the download button does
  downloadTranscript: null, // () => Promise<boolean>: saves the transcript as a .vtt file; false (with a notice) if not
  transcribed: [], // participant ids the server transcribes now, as its last transcription message said (this session)
  joins: 0, // joined messages received since the page opened (a full reconnect joins again)
  // ICE restarts started (each connection counts apart) and each connection's ICE state: {state, restarting,
  // attempts, ufrag (the server's ICE username fragment, new after each restart)}. See Session.renderIce.
  iceRestarts: 0,
  ice: { publish: null, subscribe: null },
  restartIce: null, // () => boolean: restarts ICE on both connections now; false if none could restart
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
  admin: null, // (action, participant?, extra?) => boolean: sends an admin message (hosts only)
  // Chat (chat.js): messages [{from, name, to, toName, text, time, own, private}] oldest first (the last 200),
  // unread (received while the panel was closed), open, error (the panel's error line, '' none).
  chat: { messages: [], unread: 0, open: false, error: '' },
  sendChat: null, // (text, to?) => boolean: sends a chat message (to a participant id: privately); true if sent
  toggleChat: null, // (open?) => boolean: opens or closes the chat panel; true if open now
  // People panel (people.js): hands is the raised-hands queue (participant ids, first raised first); people is
  // everyone in the room, us first: [{id, name, self, admin, mic, cam, hand (1-based queue position, 0 down)}].
  hands: [],
  people: [],
  peopleOpen: false,
  raiseHand: null, // (raised) => boolean: raises or lowers our hand; true if sent
  togglePeople: null, // (open?) => boolean: opens or closes the people panel; true if open now
  dropSocket: null, // () => boolean: closes the signaling socket as a network drop would (the page reconnects)
  // Our camera and microphone: 'on', 'off' (muted) or 'none' (see renderLocal).
  local: { mic: 'none', cam: 'none' },
  // The pre-join screen (prejoin.js): shown while it is up; level is the microphone's level now (0..1), peak the
  // highest since it showed. joined once Join was pressed (or the screen was skipped: skipped true). blurred: the
  // preview shows the camera with its background blurred (blur.js).
  prejoin: { shown: false, skipped: false, joined: false, level: 0, peak: 0, blurred: false },
  // Devices (devices.js): the chosen deviceIds ('' default) and the switches made in the meeting (replaceTrack).
  devices: { camera: '', microphone: '', speaker: '', switches: 0, sinkSupported: false },
  switchDevice: null, // (kind: 'videoinput'|'audioinput'|'audiooutput', deviceId) => Promise<boolean>
  helpOpen: false, // the keyboard shortcuts dialog is open (shortcuts.js)
  // Pin and views (stage.js): the view ('speaker' or 'grid'), the pinned tile's key ('' none; keys: 'local', a
  // participant id, "id:track" for a screen tile), the full-screen tile's key, full-screen requests made.
  stage: { view: 'speaker', pinned: '', fullscreen: '', fullscreenRequests: 0 },
  pin: null, // (key) => boolean: pins that tile ('' unpins)
  setView: null, // ('speaker'|'grid') => void
  remoteTracks: null, // () => [{participant, id, kind, source, received}]: remote published tracks
  // Connection quality (quality.js): tiles maps a tile's key to 'good'|'fair'|'poor' (details: what it was rated
  // on), uplink says whether our sending is limited (the banner shows), why, and the last sample it was rated on.
  quality: { tiles: {}, details: {}, uplink: { limited: false, reason: '', sample: null } },
  qualityOf: null, // (input) => {level, reasons}: the pure function that rates a tile (see connectionQuality)
  uplinkOf: null, // (input) => '' | 'bandwidth' | 'cpu': the pure function that rates our uplink
  feedUplink: null, // (sample|null) => void: replaces the uplink's live stats by a synthetic sample (null: live)
  // End-to-end encryption (encryption.js): on once the page encrypts; epoch is the newest key epoch held, sending
  // the one our frames are sealed with; members and strangers count the others whose passphrase matches ours or
  // not; leader is who sends new keys; tiles maps a participant id to how its frames open ('ok', 'failed', '');
  // prompt: the passphrase dialog is open; transforms counts each sender's and receiver's frames sealed or opened
  // (ok) and not (failed): [{id, pid, kind, side, state, ok, failed}].
  e2ee: { on: false, epoch: 0, sending: 0, members: 0, strangers: 0, leader: '', tiles: {}, prompt: false, transforms: [] },
  // Background blur (blur.js): requested (the user's choice), on (our camera is sent blurred now), loading (the
  // model is being loaded), error (why blur fell back to none, '' if it did not), frames processed, fps (frames
  // per second out of the pipeline), msPerFrame (average processing time a frame, the latency it adds; both over
  // the last 30 frames), totalMs (processing time of all its frames).
  blur: { requested: false, on: false, loading: false, error: '', frames: 0, fps: 0, msPerFrame: 0, totalMs: 0 },
  setBlur: null, // (on) => Promise<boolean>: turns background blur on or off; resolves to whether it is on
  sentVideo: null, // () => MediaStreamTrack | null: the camera track on the publish connection now (what is sent)
};
/** @type {any} */ (window).sfu = hook;

// Fields of app that the hook shows as they are (arrays as copies).
const MIRRORED = ['state', 'isAdmin', 'roomLocked', 'nodes'];

// set writes fields of app, and their copies in the hook.
/** @param {Bag} patch */
export function set(patch) {
  for (const [key, value] of Object.entries(patch)) {
    app[key] = value;
    if (MIRRORED.includes(key)) hook[key] = Array.isArray(value) ? value.slice() : value;
  }
}

// expose writes fields of the hook only (what the tests read and the page keeps elsewhere, or not at all):
// values, and at start the hook's functions.
/** @param {Bag} patch */
export function expose(patch) {
  Object.assign(hook, patch);
}

// count adds one to a counter of the hook (joins, redirects, iceRestarts, tokenRefreshes).
/** @param {string} key */
export function count(key) {
  hook[key]++;
}

/** @param {boolean} on */
export function setAdmin(on) { set({ isAdmin: on }); }
/** @param {string[]} nodes */
export function setNodes(nodes) { set({ nodes }); }
