// @ts-check
// Pin / spotlight, the speaker and grid views, and full screen for a tile.
// - A pinned tile takes the stage and keeps it (over the active speaker and screen shares) until it is unpinned;
//   pinning another tile moves the pin. The stage tile is large, so the size the page reports for it asks the
//   SFU for the large simulcast layer (see participants.js reportTileSize).
// - Speaker view: one tile on the stage and the others in a strip (layout.js). Grid view: all tiles equal. The
//   choice comes from ?view=grid|speaker, else the last one picked (localStorage), else speaker view.
// - Full screen: a tile's button asks the browser to show that tile alone (Escape leaves, as everywhere).
// The test hook shows the pinned tile, the view and the full-screen tile (sfu.stage), and every remote published
// track with its source (sfu.remoteTracks: how a test sees that a screen share's sound arrived as screen_audio).

import { config } from './config.js';
import { t } from './i18n.js';
import { allTiles, updateLayout } from './layout.js';
import { app, expose } from './store.js';
import { $ } from './ui.js';

const VIEW_STORAGE_KEY = 'sfu.view';

const STAGE_ICONS = {
  pin: 'M16 3v2h-1v5.5l3 3V16h-5v5l-1 1-1-1v-5H6v-2.5l3-3V5H8V3h8z',
  fullscreen: 'M4 4h6v2H6v4H4V4zm10 0h6v6h-2V6h-4V4zM4 14h2v4h4v2H4v-6zm14 0h2v6h-6v-2h4v-4z',
  exitFullscreen: 'M8 4h2v6H4V8h4V4zm6 0h2v4h4v2h-6V4zM4 14h6v6H8v-4H4v-2zm10 0h6v2h-4v4h-2v-6z',
  grid: 'M4 4h7v7H4V4zm9 0h7v7h-7V4zM4 13h7v7H4v-7zm9 0h7v7h-7v-7z',
};

/**
 * @param {keyof typeof STAGE_ICONS} name
 * @returns {SVGSVGElement}
 */
function stageIcon(name) {
  const ns = 'http://www.w3.org/2000/svg';
  const svg = /** @type {SVGSVGElement} */ (document.createElementNS(ns, 'svg'));
  svg.setAttribute('viewBox', '0 0 24 24');
  svg.setAttribute('aria-hidden', 'true');
  svg.classList.add('icon');
  const path = document.createElementNS(ns, 'path');
  path.setAttribute('d', STAGE_ICONS[name]);
  svg.append(path);
  return svg;
}

/**
 * tileKey names a tile for the test hook: 'local', a participant id (camera tile), or "id:track" (screen tile).
 * @param {any} tile
 * @returns {string}
 */
export function tileKey(tile) {
  if (!tile) return '';
  const { participantId = '', trackId = '' } = tile.el.dataset;
  return trackId ? `${participantId}:${trackId}` : participantId;
}

// pinnedTile: the pinned tile while it is still on the page (a participant that left takes its pin along).
export function pinnedTile() {
  const pinned = app.stage.pinned;
  if (pinned && !allTiles().includes(pinned)) {
    app.stage.pinned = null;
    renderStage();
  }
  return app.stage.pinned;
}

// gridView: true when every tile shows the same size (no stage).
export function gridView() {
  return app.stage.view === 'grid';
}

/**
 * addTileActions puts the pin and full-screen buttons on a tile (shown on hover and keyboard focus).
 * @param {any} tile
 */
export function addTileActions(tile) {
  const bar = document.createElement('div');
  bar.className = 'tile-actions';
  const pin = document.createElement('button');
  pin.type = 'button';
  pin.className = 'tile-action tile-pin';
  pin.append(stageIcon('pin'));
  pin.addEventListener('click', () => togglePin(tile));
  const full = document.createElement('button');
  full.type = 'button';
  full.className = 'tile-action tile-fullscreen';
  full.append(stageIcon('fullscreen'), stageIcon('exitFullscreen'));
  full.addEventListener('click', () => toggleFullscreen(tile));
  if (!document.fullscreenEnabled) full.hidden = true;
  bar.append(pin, full);
  tile.el.append(bar);
  tile.pinBtn = pin;
  tile.fullscreenBtn = full;
  renderTileActions(tile);
}

/** @param {any} tile */
function renderTileActions(tile) {
  if (!tile.pinBtn) return;
  const pinned = app.stage.pinned === tile;
  tile.el.classList.toggle('pinned', pinned);
  tile.pinBtn.setAttribute('aria-pressed', String(pinned));
  setLabel(tile.pinBtn, t(pinned ? 'stage.unpin' : 'stage.pin'));
  const full = document.fullscreenElement === tile.el;
  tile.fullscreenBtn.classList.toggle('on', full);
  setLabel(tile.fullscreenBtn, t(full ? 'stage.exitFullscreen' : 'stage.fullscreen'));
}

/**
 * @param {HTMLElement} el
 * @param {string} label
 */
function setLabel(el, label) {
  el.setAttribute('aria-label', label);
  el.title = label;
}

/**
 * togglePin pins the tile to the stage, or unpins it if it is the pinned one. Pinning in grid view shows the
 * speaker view (without changing the view remembered for next time).
 * @param {any} tile
 */
export function togglePin(tile) {
  if (app.stage.pinned === tile) {
    app.stage.pinned = null;
  } else {
    app.stage.pinned = tile;
    if (gridView()) app.stage.view = 'speaker';
  }
  renderStage();
  updateLayout();
}

/**
 * pin pins the tile named key (see tileKey), or unpins with ''. For tests and callers without the tile at hand.
 * @param {string} key
 * @returns {boolean} false if no tile has that key
 */
export function pinKey(key) {
  if (!key) {
    if (app.stage.pinned) togglePin(app.stage.pinned);
    return true;
  }
  const tile = allTiles().find((x) => tileKey(x) === key);
  if (!tile) return false;
  if (app.stage.pinned !== tile) togglePin(tile);
  return true;
}

/**
 * setView shows the speaker view ('speaker') or the grid view ('grid'); remember keeps the choice for next time.
 * @param {string} view
 * @param {boolean} [remember]
 */
export function setView(view, remember = true) {
  app.stage.view = view === 'grid' ? 'grid' : 'speaker';
  if (remember) {
    try {
      localStorage.setItem(VIEW_STORAGE_KEY, app.stage.view);
    } catch (err) {
      // Storage may be disabled: the choice lasts as long as the page.
    }
  }
  renderStage();
  updateLayout();
}

export function toggleView() {
  setView(gridView() ? 'speaker' : 'grid');
}

// loadView: ?view= first, then the view picked before, else speaker view.
export function loadView() {
  if (config.view) return config.view;
  try {
    const kept = localStorage.getItem(VIEW_STORAGE_KEY);
    if (kept === 'grid' || kept === 'speaker') return kept;
  } catch (err) {
    // Storage may be disabled.
  }
  return 'speaker';
}

/**
 * toggleFullscreen shows the tile full screen, or leaves full screen if it already is.
 * @param {any} tile
 */
export async function toggleFullscreen(tile) {
  try {
    if (document.fullscreenElement === tile.el) {
      await document.exitFullscreen();
    } else {
      app.stage.fullscreenRequests++;
      renderStage();
      await tile.el.requestFullscreen();
    }
  } catch (err) {
    console.error('sfu: full screen failed:', err);
  }
}

// renderStage shows the pin, view and full-screen state on the buttons and in the test hook.
export function renderStage() {
  for (const tile of allTiles()) renderTileActions(tile);
  const btn = $('btn-view');
  if (btn) btn.setAttribute('aria-pressed', String(gridView()));
  document.body.dataset.view = app.stage.view;
  expose({
    stage: {
      view: app.stage.view,
      pinned: tileKey(app.stage.pinned),
      fullscreen: document.fullscreenElement ? tileKey(allTiles().find((x) => x.el === document.fullscreenElement)) : '',
      fullscreenRequests: app.stage.fullscreenRequests,
    },
  });
}

// remoteTracks: every remote published track with its source, and the id of the MediaStreamTrack it arrived as
// ('' until it did). The test hook's view of the screen share's sound (screen_audio).
export function remoteTracks() {
  const out = [];
  for (const p of app.participants.values()) {
    for (const [id, info] of p.tracks) {
      const track = p.media.get(id);
      out.push({ participant: p.name, id, kind: info.kind, source: info.source, received: track ? track.id : '' });
    }
  }
  return out;
}

// setupStage adds the view button to the controls and starts in the chosen view.
export function setupStage() {
  const btn = document.createElement('button');
  btn.id = 'btn-view';
  btn.type = 'button';
  btn.className = 'control toggle';
  const iconEl = document.createElement('span');
  iconEl.className = 'control-icon';
  iconEl.append(stageIcon('grid'));
  const label = document.createElement('span');
  label.className = 'control-label';
  label.textContent = t('stage.gridView');
  label.dataset.i18n = 'stage.gridView'; // translatePage keeps both in the page's language
  btn.title = t('stage.gridViewTitle');
  btn.dataset.i18nAttr = 'title:stage.gridViewTitle';
  btn.append(iconEl, label);
  btn.addEventListener('click', toggleView);
  $('btn-stats').before(btn);
  document.addEventListener('fullscreenchange', renderStage);
  app.stage.view = loadView();
  expose({ pin: pinKey, setView, remoteTracks });
  renderStage();
  updateLayout();
}
