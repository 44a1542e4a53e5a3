// @ts-check
// What the page does with a session's events (protocol.js) and how a meeting ends.

import {
  onCaption, onCaptionsError, onCaptionsStatus, onTranscription, renderTranscribed, sendCaptions, setCaptionsState,
  setTranscribed,
} from './captions.js';
import { bindChat, onChatError } from './chat.js';
import { onJoinRefused, onJoinedNode, onResidency, onTokenError, stopReconnecting } from './connection.js';
import { bindEncryption, onEncryptionRefused } from './encryption.js';
import { onAudioProcessing, onDenoiseError, sendDenoise, setDenoiseState } from './denoise.js';
import { setSpeakers } from './layout.js';
import { renderLocal, stopLocalMedia, stopScreen } from './media.js';
import { onModeration, onRoomState, setRoomLocked } from './moderation.js';
import {
  addParticipant, attachRemoteTrack, clearRemoteParticipants, detachRemoteTrack, detachRemoteTrackObject, placeMedia,
  removeParticipant, renderParticipant, setTrackInfo,
} from './participants.js';
import { bindPeople } from './people.js';
import { app, count, expose, hook, setAdmin } from './store.js';
import { t } from './i18n.js';
import { setTileName } from './tiles.js';
import { $, hideBanner, setState, showBanner, showErrorToast } from './ui.js';

// bindSession makes the page show what a session says. Events of a session that is no longer the page's (it
// was replaced meanwhile) change nothing but that session.
export function bindSession(s) {
  const current = () => s === app.session;
  s.on('joined', (msg) => onJoined(s, msg));
  s.on('participant_joined', (msg) => {
    const info = msg.participant;
    if (!info || !info.id || info.id === hook.participantId) return;
    app.goneIds.delete(info.id);
    addParticipant(info);
  });
  s.on('participant_left', (msg) => {
    const info = msg.participant;
    if (!info || !info.id) return;
    app.goneIds.add(info.id);
    removeParticipant(info.id);
  });
  s.on('track_published', (msg) => {
    const t = msg.track;
    if (!msg.participant_id || !t || !t.id) return;
    const p = app.participants.get(msg.participant_id);
    if (!p) return;
    setTrackInfo(p, t);
    placeMedia(p); // its source may move an already received video to a screen tile
  });
  s.on('track_unpublished', (msg) => {
    const t = msg.track;
    const p = msg.participant_id && app.participants.get(msg.participant_id);
    if (!p || !t || !t.id) return;
    p.tracks.delete(t.id);
    detachRemoteTrack(p, t.id);
    renderParticipant(p);
  });
  s.on('track_muted', (msg) => {
    const t = msg.track;
    const p = msg.participant_id && app.participants.get(msg.participant_id);
    if (!p || !t || !t.id) return;
    setTrackInfo(p, t);
    placeMedia(p);
  });
  s.on('track', ({ participantId, trackId, track }) => {
    if (participantId === hook.participantId || app.goneIds.has(participantId)) return;
    const p = app.participants.get(participantId) || addParticipant({ id: participantId });
    attachRemoteTrack(p, trackId, track);
  });
  s.on('track_ended', ({ participantId, track }) => {
    const p = app.participants.get(participantId);
    if (p) detachRemoteTrackObject(p, track);
  });
  s.on('active_speakers', (msg) => setSpeakers(msg.speakers));
  s.on('audio_processing', onAudioProcessing);
  s.on('caption', onCaption);
  s.on('captions_status', onCaptionsStatus);
  s.on('transcription', onTranscription);
  s.on('room_state', onRoomState);
  s.on('moderation', (msg) => onModeration(s, msg));
  s.on('error', (msg) => onServerError(s, msg));
  s.on('bye', ({ reason }) => onBye(reason));
  s.on('client_error', ({ message, code, detail }) => showErrorToast(code ? t(`error.${code}`, detail) : message));
  s.on('ice', (view) => {
    if (current()) expose({ ice: view });
  });
  s.on('ice_restart', ({ reason }) => {
    count('iceRestarts');
    if (reason !== 'forced') {
      showBanner('ice', t('conn.networkChanged'), { kind: 'info', dismissable: false });
    }
  });
  s.on('ice_settled', () => hideBanner('ice'));
  // After the handlers above: the participants are up to date when these run.
  bindChat(s);
  bindPeople(s);
  bindEncryption(s);
}

// onJoined: the session joined; the page shows the room and says what it wants (noise suppression, captions)
// before the session publishes our media.
export function onJoined(session, msg) {
  count('joins');
  onJoinedNode(session, msg);
  const you = msg.you || {};
  expose({ participantId: you.id || null });
  renderTranscribed(); // our own tile, should the server already have said we are transcribed
  hideBanner('join');
  // Host controls, and the lock as the server tells it next (room_state follows joined while locked).
  setAdmin(you.admin === true);
  app.adminMuted = new Set();
  setRoomLocked(false);
  if (you.name && you.name !== app.localName) {
    app.localName = you.name;
    setTileName(app.localTile, t('tile.you', { name: you.name }));
  }
  if (msg.room) $('room-name').textContent = msg.room;
  hideBanner('conn');

  for (const p of msg.participants || []) {
    if (p && p.id && p.id !== you.id) addParticipant(p);
  }
  setState('joined');

  // A host that took away our right to publish meant it for this page, reconnects included, until it gives it back.
  app.canPublish = session.canPublish;
  // A new session: the server tells again what runs on the tracks we are about to publish. Our choice goes
  // before the tracks do, so that they start with it.
  app.denoise.tracks = new Map();
  app.denoise.pending = false;
  if (app.canPublish) sendDenoise(session);
  setDenoiseState();
  // Captions too: our choice (and the language we speak) goes again on every new session.
  sendCaptions(session, false);
  setCaptionsState();
  renderLocal();
  if (app.publishRevoked) {
    stopScreen();
  } else if (!app.canPublish) {
    showBanner('media', t('media.viewerToken'), { kind: 'info' });
    stopScreen(); // a share started before the token said so cannot go anywhere
  }
  // The session publishes our media once this returns, if it may.
}

// onServerError: an error message. Some get their own notice (and state) rather than a generic toast.
export function onServerError(session, msg) {
  const code = msg.code || 'error';
  const text = msg.message || '';
  if (msg.ref === 'denoise') return onDenoiseError(msg);
  if (msg.ref === 'captions') return onCaptionsError(msg);
  if (msg.ref === 'chat') return onChatError(msg);
  if (msg.ref === 'join' && code === 'e2ee') return onEncryptionRefused(session, msg);
  if (msg.ref === 'join' && ['busy', 'room_locked', 'room_full'].includes(code)) return onJoinRefused(session, msg);
  if (code === 'residency') return onResidency(session, msg);
  console.error(`sfu: server error ${code}${msg.ref ? ` (in reply to "${msg.ref}")` : ''}: ${text}`);
  showErrorToast(t('error.server', { code, text }));
  // These close the socket; retrying with the same token cannot help. An expired dev token is simply
  // replaced by a fresh one when the socket closes and the page reconnects.
  onTokenError(code, text);
}

// onBye: the server ended the session (the session already closed, or reports itself lost for shutdown and
// failed: the page then reconnects).
export function onBye(reason) {
  expose({ byeReason: reason });
  switch (reason) {
    case 'kicked':
      // Never reconnect: the host removed us.
      endMeeting(t('ended.kicked'));
      break;
    case 'room_ended':
      endMeeting(t('ended.roomEnded'));
      break;
    case 'replaced':
      endMeeting(t('ended.replaced'));
      break;
    case 'left':
      // The answer to our own leave. Should it come unasked, the server has ended our session all the same.
      if (!app.stopped) endMeeting(t('ended.left'));
      break;
    default:
      break;
  }
}

// restartIce (test hook) restarts ICE on both connections of the joined session now.
export function restartIce() {
  const s = app.session;
  if (!s || s.ended || !s.joined) return false;
  return s.restartIce('forced', true);
}

// dropSocket (test hook) closes the current session's socket as a network drop would; false if there is none.
export function dropSocket() {
  const s = app.session;
  if (!s || !s.ws) return false;
  s.ws.close();
  return true;
}

// onNetworkChange: the browser went online again or changed networks: the media paths may be gone.
export function onNetworkChange() {
  const s = app.session;
  if (!s || s.ended || !s.joined || app.stopped) return;
  s.restartIce('network', true);
}

// clearSessionView removes what a session showed and will not show again: remote participants, our id, what
// runs on our tracks, ICE restarts.
export function clearSessionView() {
  clearRemoteParticipants();
  expose({ participantId: null });
  setTranscribed([]); // the next session's server says again who it transcribes
  app.denoise.tracks = new Map(); // nothing runs for us until the next session says so
  app.denoise.pending = false;
  setDenoiseState();
  hideBanner('ice'); // a new session: no ICE restart runs
}

// shutdownPage ends everything for good: no session, no retries, no media.
export function shutdownPage() {
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
export function fail(message) {
  console.error('sfu:', message);
  shutdownPage();
  setState('error');
  showBanner('fatal', message, { kind: 'error', dismissable: false });
}

// refuseJoin: the server would not let us in (room locked or full, server busy): no retry loop, a banner
// that offers to try again by hand.
export function refuseJoin(code, text) {
  console.error('sfu:', text);
  expose({ joinError: code });
  shutdownPage();
  setState('error');
  showBanner('join', text, {
    kind: 'error',
    dismissable: false,
    action: { label: t('banner.tryAgain'), onClick: () => location.reload() },
  });
}

export function endMeeting(text) {
  shutdownPage();
  setState('left');
  $('ended-text').textContent = text;
  $('rejoin').href = location.href;
  $('ended').hidden = false;
}

export function leave() {
  if (app.stopped) return;
  // leave goes out before the socket closes: WebSocket sends queued frames before its close frame.
  if (app.session) app.session.send({ type: 'leave' });
  endMeeting(t('ended.left'));
}
