// Browser client of the SFU meeting page (room.html).
//
// One WebSocket carries the signaling described in signaling/PROTOCOL.md. Two peer connections per session:
//   publish   – we offer, the server answers; carries our camera and microphone.
//   subscribe – the server offers, we answer; carries every remote participant's tracks.
// A "session" is one WebSocket plus its two peer connections. When the socket is lost the session is thrown
// away whole and a new one is started with exponential backoff, re-publishing the same local MediaStream.
'use strict';

const PING_INTERVAL_MS = 5000;
const PONG_TIMEOUT_MS = 10000;
const OPEN_TIMEOUT_MS = 10000;
const BACKOFF_FIRST_MS = 1000;
const BACKOFF_MAX_MS = 10000;
const MAX_ERROR_TOASTS = 4;
const TILE_REPORT_DELAY_MS = 200; // tile size reports wait for resizing to settle

const VIDEO_SIZES = {
  '720': { width: 1280, height: 720 },
  '1080': { width: 1920, height: 1080 },
};

// ---------------------------------------------------------------------------------------------------------
// Configuration from the URL: /room/{room}?name=N&token=T&res=720|1080&simulcast=0&codec=h264&publish=0
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

  let name = (params.get('name') || '').trim();
  if (!name) {
    name = 'Guest-' + String(Math.floor(Math.random() * 10000)).padStart(4, '0');
    // Keep the chosen name in the address so that a reload or "Rejoin" keeps it.
    params.set('name', name);
    history.replaceState(null, '', `${location.pathname}?${params}${location.hash}`);
  }

  return {
    room,
    name,
    token: params.get('token') || '',
    res: params.get('res') === '720' ? '720' : '1080',
    simulcast: params.get('simulcast') !== '0',
    publish: params.get('publish') !== '0',
    codec: (params.get('codec') || 'vp8').toLowerCase() === 'h264' ? 'video/H264' : 'video/VP8',
  };
}

const config = readConfig();
const usingDevToken = !config.token;

// Everything that outlives a single session.
const app = {
  state: 'connecting',
  session: null, // the current Session, or null between attempts
  stopped: false, // left, replaced or a fatal error: never reconnect again
  backoffMs: BACKOFF_FIRST_MS,
  reconnectTimer: null,
  countdownTimer: null,
  localStream: null,
  mediaReady: null, // Promise<MediaStream|null>, started once per page
  localTile: null,
  localName: config.name,
  participants: new Map(), // participant id -> remote participant (see addParticipant)
  goneIds: new Set(), // participants that left during this session; late tracks of theirs are ignored
  errorToasts: [],
};

// Test hook used by the automated browser tests; keep the shape stable.
window.sfu = {
  state: app.state,
  participantId: null,
  stats: subscribeStats,
  publishStats,
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
  $('grid').dataset.count = String(n);
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

function createTile({ label, local }) {
  const el = document.createElement('div');
  el.className = local ? 'tile local' : 'tile';

  const video = document.createElement('video');
  video.autoplay = true;
  video.playsInline = true;
  video.muted = !!local; // self-view never plays our own microphone

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
  plate.append(nameEl, indicators);

  el.append(video, avatar, plate);
  const tile = { el, video, avatar, nameEl, micEl, camEl, reloadPending: false };
  setTileName(tile, label);
  setTileIndicators(tile, 'none', 'none');
  return tile;
}

function setTileName(tile, label) {
  tile.nameEl.textContent = label;
  tile.avatar.textContent = initials(label);
  tile.el.title = label;
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

  $('btn-leave').disabled = app.stopped;
}

// toggleLocal mutes or unmutes our track of the given kind and tells the others.
function toggleLocal(kind) {
  const track = localTrack(kind);
  if (!track) return;
  track.enabled = !track.enabled;
  const s = app.session;
  // Before the first publish answer the server does not know the track yet; Session.syncMuteState sends it then.
  if (s && s.publishAnswered) s.send({ type: 'mute', track: track.id, muted: !track.enabled });
  renderLocal();
}

function stopLocalMedia() {
  if (!app.localStream) return;
  for (const t of app.localStream.getTracks()) t.stop();
  app.localTile.video.srcObject = null;
}

// ---------------------------------------------------------------------------------------------------------
// Remote participants
// ---------------------------------------------------------------------------------------------------------

// A remote participant: info from signaling (name, published tracks and their muted flags) plus the media
// that arrived on the subscribe connection, all in one MediaStream played by the tile's <video>.
function addParticipant(info) {
  let p = app.participants.get(info.id);
  if (!p) {
    p = {
      id: info.id,
      name: '',
      tracks: new Map(), // published track id -> {kind, muted}
      media: new Map(), // published track id -> MediaStreamTrack
      stream: new MediaStream(),
      tile: createTile({ label: '', local: false }),
    };
    p.tile.el.dataset.participantId = p.id;
    app.participants.set(p.id, p);
    $('grid').append(p.tile.el);
    watchTileSize(p);
  }
  const name = info.name || info.identity || p.name || info.id;
  if (name !== p.name) {
    p.name = name;
    setTileName(p.tile, name);
  }
  for (const t of info.tracks || []) {
    if (t && t.id) p.tracks.set(t.id, { kind: t.kind, muted: !!t.muted });
  }
  renderParticipant(p);
  updateCount();
  return p;
}

// Tile sizes: the SFU sends each remote video at the smallest simulcast layer that fills its tile, so the page
// tells it the size (in device pixels) at which it shows each video, and 0x0 when the tile is hidden.
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

function reportTileSize(p) {
  const session = app.session;
  if (!session || session.ended || !app.participants.has(p.id)) return;
  const rect = p.tile.video.getBoundingClientRect();
  const dpr = window.devicePixelRatio || 1;
  const hidden = document.hidden || rect.width === 0 || rect.height === 0;
  const width = hidden ? 0 : Math.min(16384, Math.round(rect.width * dpr));
  const height = hidden ? 0 : Math.min(16384, Math.round(rect.height * dpr));
  for (const [trackId, track] of p.media) {
    if (track.kind !== 'video') continue;
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
  p.tile.video.srcObject = null;
  p.tile.el.remove();
  app.participants.delete(id);
  updateCount();
}

function clearRemoteParticipants() {
  for (const id of Array.from(app.participants.keys())) removeParticipant(id);
  app.goneIds.clear();
  hideBanner('autoplay');
}

function kindState(p, kind) {
  const tracks = Array.from(p.tracks.values()).filter((t) => t.kind === kind);
  if (tracks.length === 0) return 'none';
  return tracks.some((t) => !t.muted) ? 'on' : 'off';
}

function renderParticipant(p) {
  setTileIndicators(p.tile, kindState(p, 'audio'), kindState(p, 'video'));
}

function attachRemoteTrack(p, publishedId, track) {
  const old = p.media.get(publishedId);
  if (old && old !== track) p.stream.removeTrack(old);
  p.media.set(publishedId, track);
  if (!p.stream.getTrackById(track.id)) p.stream.addTrack(track);
  if (!p.tracks.has(publishedId)) p.tracks.set(publishedId, { kind: track.kind, muted: false });
  renderParticipant(p);
  reloadTile(p.tile, p.stream);
  if (track.kind === 'video') {
    p.reported.delete(publishedId);
    scheduleTileReport(p);
  }
}

function detachRemoteTrack(p, publishedId) {
  const track = p.media.get(publishedId);
  if (!track) return;
  p.media.delete(publishedId);
  const stillUsed = Array.from(p.media.values()).includes(track);
  if (!stillUsed && p.stream.getTrackById(track.id)) p.stream.removeTrack(track);
  reloadTile(p.tile, p.stream);
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
// Session: one WebSocket and its two peer connections
// ---------------------------------------------------------------------------------------------------------

function wsURL() {
  const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
  return `${scheme}//${location.host}/ws`;
}

class Session {
  constructor(token) {
    this.token = token;
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
  }

  get publishPC() { return this.pcs.publish; }
  get subscribePC() { return this.pcs.subscribe; }

  open() {
    const ws = new WebSocket(wsURL());
    this.ws = ws;
    this.openTimer = setTimeout(() => {
      if (ws.readyState === WebSocket.CONNECTING) this.lost();
    }, OPEN_TIMEOUT_MS);
    ws.onopen = () => {
      clearTimeout(this.openTimer);
      // join must be the first message: the server refuses anything else (even ping) before it.
      this.send({ type: 'join', token: this.token });
      this.pingTimer = setInterval(() => this.ping(), PING_INTERVAL_MS);
    };
    ws.onmessage = (ev) => this.receive(ev.data);
    ws.onerror = () => {}; // a close event always follows; it is handled there
    ws.onclose = () => {
      if (!this.ended) this.lost();
    };
  }

  send(msg) {
    if (this.ws && this.ws.readyState === WebSocket.OPEN) this.ws.send(JSON.stringify(msg));
  }

  // close ends the session for good: socket, peer connections and timers. Idempotent.
  close() {
    if (this.ended) return;
    this.ended = true;
    clearTimeout(this.openTimer);
    clearInterval(this.pingTimer);
    clearTimeout(this.pongTimer);
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
      default: return undefined; // unknown types are ignored
    }
  }

  onJoined(msg) {
    this.joined = true;
    app.backoffMs = BACKOFF_FIRST_MS;
    const you = msg.you || {};
    window.sfu.participantId = you.id || null;
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
    if (you.publish === false) {
      showBanner('media', 'Your token does not allow publishing: you joined as a viewer.', { kind: 'info' });
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
    p.tracks.set(t.id, { kind: t.kind, muted: !!t.muted });
    renderParticipant(p);
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
    const known = p.tracks.get(t.id);
    p.tracks.set(t.id, { kind: t.kind || (known && known.kind), muted: !!t.muted });
    renderParticipant(p);
  }

  onError(msg) {
    const code = msg.code || 'error';
    const text = msg.message || '';
    console.error(`sfu: server error ${code}${msg.ref ? ` (in reply to "${msg.ref}")` : ''}: ${text}`);
    showErrorToast(`${code}: ${text}`);
    // These close the socket; retrying with the same token cannot help. An expired dev token is simply
    // replaced by a fresh one when the socket closes and the page reconnects.
    if (code === 'unauthorized') {
      fail(`The server refused the token (unauthorized): ${text}`);
    } else if (code === 'token_expired' && !usingDevToken) {
      fail('The token has expired (token_expired): open the link with a fresh ?token=...');
    }
  }

  onBye(msg) {
    switch (msg.reason) {
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
      if (pc.connectionState === 'failed' && !this.ended) {
        console.error(`sfu: the ${name} connection failed, reconnecting`);
        this.lost('The media connection failed; reconnecting…');
      }
    };
    return pc;
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

  // startPublishing waits for the camera/microphone, then adds them to a new publish connection. Adding the
  // transceivers fires negotiationneeded, which sends the offer.
  async startPublishing() {
    const stream = await app.mediaReady;
    if (this.ended || !stream) return;
    const tracks = stream.getTracks().filter((t) => t.readyState === 'live');
    if (tracks.length === 0) return;

    const pc = this.createPC('publish');
    pc.onnegotiationneeded = () => this.negotiatePublish();
    for (const track of tracks) {
      const init = { direction: 'sendonly', streams: [stream] };
      if (track.kind === 'video') {
        track.contentHint = 'detail';
        if (config.simulcast) init.sendEncodings = simulcastEncodings();
      }
      const transceiver = pc.addTransceiver(track, init);
      if (track.kind === 'video') {
        preferCodec(transceiver, config.codec);
        preferResolution(transceiver.sender);
      }
    }
  }

  // negotiatePublish: createOffer -> setLocalDescription -> send. The answer comes back as an "answer" message.
  async negotiatePublish() {
    const pc = this.publishPC;
    if (!pc || this.ended) return;
    if (this.makingOffer || pc.signalingState !== 'stable') {
      this.offerAgain = true; // offer again once the pending answer has been applied
      return;
    }
    this.makingOffer = true;
    try {
      const offer = await pc.createOffer();
      if (this.ended) return;
      await pc.setLocalDescription(offer);
      if (this.ended) return;
      this.send({ type: 'offer', pc: 'publish', sdp: pc.localDescription.sdp });
    } catch (err) {
      if (this.ended) return;
      console.error('sfu: publish offer failed:', err);
      showErrorToast(`Could not create the publish offer: ${err.message || err}`);
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
  let token = config.token;
  if (usingDevToken) {
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
  const s = new Session(token);
  app.session = s;
  s.open();
}

function onSessionLost(session, notice) {
  if (session !== app.session || app.stopped) return;
  app.session = null;
  scheduleReconnect(notice);
}

// scheduleReconnect tears down what the old session showed and tries again after 1 s, 2 s, 4 s ... 10 s.
function scheduleReconnect(notice) {
  if (app.stopped || app.reconnectTimer) return;
  clearRemoteParticipants();
  window.sfu.participantId = null;
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

  app.localTile = createTile({ label: `You (${config.name})`, local: true });
  app.localTile.el.dataset.participantId = 'local';
  $('grid').append(app.localTile.el);
  renderLocal();

  $('btn-mic').addEventListener('click', () => toggleLocal('audio'));
  $('btn-cam').addEventListener('click', () => toggleLocal('video'));
  $('btn-leave').addEventListener('click', leave);
  $('rejoin').href = location.href;
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
  setupPage();
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
