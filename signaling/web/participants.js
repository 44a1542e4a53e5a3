// @ts-check
// Remote participants: their tiles and media, and the size at which each video shows (for the SFU).

import { clearCaptionLines } from './captions.js';
import { TILE_REPORT_DELAY_MS } from './config.js';
import { releaseStage, setSpeakers, updateLayout } from './layout.js';
import { createHostMenu, renderHostMenu } from './moderation.js';
import { t } from './i18n.js';
import { app } from './store.js';
import { createTile, reloadTile, setTileIndicators, setTileName, setTileTranscribed } from './tiles.js';
import { $, hideBanner, updateCount } from './ui.js';

// A remote participant: info from signaling (name, published tracks with their kind, source and muted flag) plus
// the media that arrived on the subscribe connection. Its main tile plays one MediaStream with the sound and the
// camera; each screen share gets a tile of its own (see placeMedia).
export function addParticipant(info) {
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

export function setParticipantName(p, name) {
  p.name = name;
  setTileName(p.tile, name);
  for (const screen of p.screens.values()) setTileName(screen.tile, screenLabel(p));
}

export function screenLabel(p) {
  return t('tile.screen', { name: p.name });
}

// setTrackInfo records a track object of the protocol. Servers that predate track sources send none: the
// track then keeps what was known, and trackSource falls back to camera or microphone.
export function setTrackInfo(p, t) {
  const known = p.tracks.get(t.id);
  p.tracks.set(t.id, {
    kind: t.kind || (known && known.kind) || '',
    muted: !!t.muted,
    source: typeof t.source === 'string' && t.source ? t.source : (known && known.source) || '',
  });
}

// trackSource: what a published track carries. A track whose source is not known (yet) counts as camera or
// microphone, as the protocol says for tracks published without track_source.
export function trackSource(p, publishedId, kind) {
  const info = p.tracks.get(publishedId);
  if (info && info.source) return info.source;
  return (kind || (info && info.kind)) === 'audio' ? 'microphone' : 'camera';
}

// placeMedia puts each received track of p where it is shown: a screen-share video in a tile of its own, the
// rest (camera video and all sound) in the main tile. It runs again whenever tracks or their sources change,
// so a screen share first taken for a camera (its track_published came after the track) moves to its own tile.
export function placeMedia(p) {
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
export function setStreamTracks(tile, stream, tracks) {
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

export function addScreenTile(p, publishedId) {
  const tile = createTile({ label: screenLabel(p), screen: true });
  tile.el.dataset.participantId = p.id;
  tile.el.dataset.trackId = publishedId;
  const screen = { tile, stream: new MediaStream(), seq: ++app.screenSeq };
  p.screens.set(publishedId, screen);
  p.tile.el.after(tile.el); // next to the participant's camera
  tileObserver.observe(tile.video);
  return screen;
}

export function removeScreenTile(p, publishedId) {
  const screen = p.screens.get(publishedId);
  if (!screen) return;
  p.screens.delete(publishedId);
  tileObserver.unobserve(screen.tile.video);
  screen.tile.video.srcObject = null;
  screen.tile.el.remove();
}

// videoTileOf: the tile that shows the received video track publishedId of p.
export function videoTileOf(p, publishedId) {
  const screen = p.screens.get(publishedId);
  return screen ? screen.tile : p.tile;
}

// Tile sizes: the SFU sends each remote video at the smallest simulcast layer that fills its tile, so the page
// tells it the size (in device pixels) at which it shows each video, and 0x0 when the tile is hidden. Each
// video track is measured in its own element: the main tile for cameras, the screen tile for screen shares.
export const tileObserver = new ResizeObserver((entries) => {
  for (const entry of entries) {
    const p = app.participants.get(/** @type {HTMLElement | null} */ (entry.target.closest('.tile'))?.dataset.participantId);
    if (p) scheduleTileReport(p);
  }
});

export function watchTileSize(p) {
  p.reported = new Map(); // published video track id -> "WxH" last sent
  tileObserver.observe(p.tile.video);
}

export function scheduleTileReport(p) {
  clearTimeout(p.tileTimer);
  p.tileTimer = setTimeout(() => reportTileSize(p), TILE_REPORT_DELAY_MS);
}

// shownSize: the size of a video element in device pixels, 0x0 when it is not seen.
export function shownSize(video) {
  const rect = video.getBoundingClientRect();
  const dpr = window.devicePixelRatio || 1;
  const hidden = document.hidden || rect.width === 0 || rect.height === 0;
  return {
    width: hidden ? 0 : Math.min(16384, Math.round(rect.width * dpr)),
    height: hidden ? 0 : Math.min(16384, Math.round(rect.height * dpr)),
  };
}

export function reportTileSize(p) {
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

export function removeParticipant(id) {
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

export function clearRemoteParticipants() {
  clearCaptionLines();
  for (const id of Array.from(app.participants.keys())) removeParticipant(id);
  app.goneIds.clear();
  app.trackTiles.clear();
  setSpeakers([]);
  releaseStage();
  hideBanner('autoplay');
}

// sourceState: 'on', 'off' (all muted) or 'none' for the published tracks of p that carry source.
export function sourceState(p, kind, source) {
  const tracks = Array.from(p.tracks.entries())
    .filter(([id, t]) => t.kind === kind && trackSource(p, id, kind) === source)
    .map(([, t]) => t);
  if (tracks.length === 0) return 'none';
  return tracks.some((t) => !t.muted) ? 'on' : 'off';
}

export function renderParticipant(p) {
  setTileIndicators(p.tile, sourceState(p, 'audio', 'microphone'), sourceState(p, 'video', 'camera'));
  renderHostMenu(p);
  for (const [publishedId, screen] of p.screens) {
    const info = p.tracks.get(publishedId);
    setTileIndicators(screen.tile, 'none', info && info.muted ? 'off' : 'on');
  }
}

export function attachRemoteTrack(p, publishedId, track) {
  p.media.set(publishedId, track);
  if (!p.tracks.has(publishedId)) p.tracks.set(publishedId, { kind: track.kind, muted: false, source: '' });
  placeMedia(p);
  if (track.kind === 'video') {
    p.reported.delete(publishedId);
    scheduleTileReport(p);
  }
}

export function detachRemoteTrack(p, publishedId) {
  const track = p.media.get(publishedId);
  if (!track) return;
  p.media.delete(publishedId);
  p.reported.delete(publishedId);
  if (!Array.from(p.media.values()).includes(track)) app.trackTiles.delete(track);
  placeMedia(p);
}

export function detachRemoteTrackObject(p, track) {
  for (const [publishedId, t] of p.media) {
    if (t === track) detachRemoteTrack(p, publishedId);
  }
}
