// @ts-check
// Active speakers and the layout: the plain grid, or one tile on the stage and the others in a strip.

import { STAGE_HOLD_MS, STRIP_MAX_COLS, STRIP_MIN_TILE_PX } from './config.js';
import { gridView, pinnedTile } from './stage.js';
import { app, expose, hook } from './store.js';
import { $ } from './ui.js';

// setSpeakers applies an active_speakers list (loudest first): the speakers' tiles get an outline, the
// loudest a stronger one, and the loudest remote speaker takes the stage. Silence (an empty list) keeps the
// last one on the stage for STAGE_HOLD_MS.
export function setSpeakers(list) {
  const speakers = (Array.isArray(list) ? list : [])
    .filter((s) => s && typeof s.participant_id === 'string' && s.participant_id)
    .map((s) => ({ participant_id: s.participant_id, level: Number(s.level) || 0 }));
  app.speakers = speakers;
  expose({ speakers });

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

export function releaseStage() {
  clearTimeout(app.stageTimer);
  app.stageTimer = null;
  app.stageHolder = null;
  updateLayout();
}

// speakerTile: the camera tile of a participant id (ours included), or null.
export function speakerTile(participantId) {
  if (participantId === hook.participantId) return app.localTile;
  const p = app.participants.get(participantId);
  return p ? p.tile : null;
}

// allTiles: every tile on the page, ours first.
export function allTiles() {
  const tiles = app.localTile ? [app.localTile] : [];
  for (const p of app.participants.values()) {
    tiles.push(p.tile);
    for (const screen of p.screens.values()) tiles.push(screen.tile);
  }
  return tiles;
}

// stageTile: the tile shown large, or null for the plain grid. In grid view there is no stage. A pinned tile
// keeps the stage (stage.js); else a remote screen share takes it (the latest one if there are several);
// otherwise the stage holder does, once there are 3 tiles or more.
export function stageTile(count) {
  const pinned = pinnedTile(); // (drops the pin of a tile that left, in either view)
  if (gridView()) return null;
  if (pinned) return pinned;
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
export function updateLayout() {
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
