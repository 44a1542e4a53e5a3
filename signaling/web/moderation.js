// @ts-check
// Moderation: the host's controls (mute, kick, lock, end) and what a host did to us.

import { setDenoiseState } from './denoise.js';
import { t } from './i18n.js';
import { localTrack, renderLocal, showLocalMedia, startMedia, stopLocalMedia, toggleLocal } from './media.js';
import { sourceState } from './participants.js';
import { usablePC } from './protocol.js';
import { app, expose, set } from './store.js';
import { $, hideBanner, makeButton, showBanner, showErrorToast } from './ui.js';

// A room administrator (a token with the admin claim; joined.you.admin) may mute and kick the others, lock the
// room and end the meeting: the host menu on each remote tile and the Lock and End buttons send admin
// messages. Everyone hears of it: room_state (the lock, shown as a badge), moderation (what a host did to us)
// and bye kicked / room_ended (the page ends and does not reconnect).

export function setRoomLocked(locked) {
  set({ roomLocked: locked });
  $('room-locked').hidden = !locked;
  renderHostControls();
}

export function onRoomState(msg) {
  setRoomLocked(msg.locked === true);
}

// adminAction sends an admin message (hosts only): action mute, unmute, kick, lock, unlock, end or set_role.
// Returns true if it went out. The server answers with the effect (room_state, track_muted, participant_left,
// ...) or an error, shown as a toast.
export function adminAction(action, participant, extra) {
  const s = app.session;
  if (!app.isAdmin || !s || s.ended || !s.joined) return false;
  const msg = { type: 'admin', action: String(action) };
  if (participant) msg.participant = String(participant);
  if (extra && typeof extra === 'object') Object.assign(msg, extra);
  s.send(msg);
  return true;
}

// ourTrack finds one of our published tracks by id (camera, microphone or screen).
export function ourTrack(id) {
  const tracks = app.localStream ? app.localStream.getTracks() : [];
  if (app.screenTrack) tracks.push(app.screenTrack);
  // After a device switch (Session.replaceTrack) the server knows the track by the id of the one it replaced.
  return tracks.find((t) => t.id === id || (app.session && app.session.wireId(t) === id)) || null;
}

// onModeration: a host did something to us. Mute: the server stops forwarding the track, so the page shows it
// muted (and will not unmute it) until the host unmutes it. set_role publish false: our tracks come off the
// publish connection and the camera and microphone stop; publish true starts them again.
export function onModeration(session, msg) {
  const m = {
    action: typeof msg.action === 'string' ? msg.action : '',
    track_id: typeof msg.track_id === 'string' ? msg.track_id : '',
    publish: msg.publish === true,
    by: typeof msg.by === 'string' ? msg.by : '',
  };
  expose({ moderation: m });
  switch (m.action) {
    case 'mute': {
      const track = ourTrack(m.track_id) || (m.track_id ? null : localTrack('audio'));
      if (track) {
        app.adminMuted.add(app.session ? app.session.wireId(track) : track.id);
        track.enabled = false; // the server already counts it muted: no mute message needed
      }
      showBanner('moderation', t('mod.mutedByHost'), { kind: 'warn' });
      break;
    }
    case 'unmute': {
      const track = ourTrack(m.track_id);
      if (m.track_id) app.adminMuted.delete(m.track_id);
      else app.adminMuted.clear();
      // We stay muted here until we choose to speak: the button says so.
      const offer = track && !track.enabled && track.readyState === 'live';
      showBanner('moderation', t('mod.unmutedByHost'), {
        kind: 'info',
        action: offer ? {
          label: t('mod.unmute'),
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
        showBanner('moderation', t('mod.mayPublish'), { kind: 'info' });
        resumePublishing(session);
      } else {
        showBanner('moderation', t('mod.mayNotPublish'), { kind: 'warn' });
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
export function revokePublishing(session) {
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
export function resumePublishing(session) {
  if (!app.publishRevoked) return;
  app.publishRevoked = false;
  app.canPublish = true;
  if (session) session.mayPublish = true; // the host allows it, whatever the token said
  hideBanner('media');
  app.mediaReady = startMedia();
  showLocalMedia();
  if (!session || session.ended) return; // the next joined publishes them
  session.startPublishing()
    .then(() => session.negotiatePublish()) // negotiationneeded may not fire again after the skipped offers
    .catch((err) => {
      console.error('sfu: publishing failed:', err);
      showErrorToast(t('media.publishFailed', { error: err.message || err }));
    });
}

// renderHostControls shows the host's buttons when we are an administrator: Lock/Unlock and End in the controls
// bar, Mute/Kick on each remote tile (CSS shows those when the body has the is-admin class).
export function renderHostControls() {
  const host = app.isAdmin && !app.stopped;
  document.body.classList.toggle('is-admin', host);
  const lock = $('btn-lock');
  if (!lock) return;
  lock.hidden = !host;
  lock.setAttribute('aria-pressed', String(app.roomLocked));
  lock.querySelector('.control-label').textContent = t(app.roomLocked ? 'controls.unlock' : 'controls.lock');
  lock.title = t(app.roomLocked ? 'controls.unlockTitle' : 'controls.lockTitle');
  $('btn-end').hidden = !host;
}

export function toggleRoomLock() {
  adminAction(app.roomLocked ? 'unlock' : 'lock');
}

export function endForEveryone() {
  if (window.confirm(t('controls.endConfirm'))) adminAction('end');
}

// createHostMenu builds the Mute and Kick buttons of a remote participant's tile.
export function createHostMenu(p) {
  const menu = document.createElement('div');
  menu.className = 'host-menu';
  menu.setAttribute('role', 'group');
  const mute = makeButton('host-action', t('mod.mute'), () => {
    adminAction(sourceState(p, 'audio', 'microphone') === 'off' ? 'unmute' : 'mute', p.id);
  });
  mute.dataset.action = 'mute';
  const kick = makeButton('host-action danger', t('mod.kick'), () => {
    if (window.confirm(t('mod.kickConfirm', { name: p.name }))) adminAction('kick', p.id);
  });
  kick.dataset.action = 'kick';
  menu.append(mute, kick);
  return { el: menu, mute, kick };
}

export function renderHostMenu(p) {
  const mic = sourceState(p, 'audio', 'microphone');
  p.hostMenu.mute.textContent = t(mic === 'off' ? 'mod.unmute' : 'mod.mute');
  p.hostMenu.mute.disabled = mic === 'none';
  p.hostMenu.mute.title = t(mic === 'off' ? 'mod.unmuteTitle' : 'mod.muteTitle', { name: p.name });
  p.hostMenu.kick.title = t('mod.kickTitle', { name: p.name });
  p.hostMenu.el.setAttribute('aria-label', t('mod.menu', { name: p.name }));
}
