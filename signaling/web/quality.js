// @ts-check
// Connection quality: a good / fair / poor icon on each remote tile, and a banner while our own uplink is limited.
// Every QUALITY_INTERVAL_MS the page reads the subscribe connection's inbound stats (packet loss over the last
// seconds, the round trip of its candidate pair, the size of the picture received against the size the tile
// shows) and rates each tile with connectionQuality; it reads the publish connection's outbound stats (why the
// encoder holds back, the bandwidth estimate against what our layers need) and rates the uplink with uplinkLimit.
// Both ratings are pure functions, which the test hook exposes (sfu.qualityOf, sfu.uplinkOf). The stats overlay
// (stats.js) stays for the numbers.

import { t } from './i18n.js';
import { allTiles } from './layout.js';
import { shownSize } from './participants.js';
import { usablePC } from './protocol.js';
import { tileKey } from './stage.js';
import { roundTripMs } from './stats.js';
import { app, expose, hook } from './store.js';
import { hideBanner, showBanner } from './ui.js';

export const QUALITY_INTERVAL_MS = 2000;
export const LOSS_WINDOW_MS = 6000; // packet loss is counted over about this long
export const LOSS_FAIR_PCT = 2; // packet loss from this much is fair...
export const LOSS_POOR_PCT = 8; // ...and from this much poor
export const RTT_FAIR_MS = 250; // round trip from this long is fair...
export const RTT_POOR_MS = 450; // ...and from this long poor
// The picture received against the size the tile shows it at (the larger of the width and height ratios, the
// tile capped at 1920x1080, the largest layer a camera sends): below LAYER_FAIR fair (a layer too small), below
// LAYER_POOR poor (two layers too small: a big tile receiving the smallest layer).
export const LAYER_FAIR = 0.5;
export const LAYER_POOR = 0.25;
export const LAYER_GRACE_MS = 5000; // after a tile changes size the SFU needs a moment to switch layers
// The uplink banner shows after UPLINK_SHOW_AFTER limited samples in a row and goes after as many clean ones.
export const UPLINK_SHOW_AFTER = 2;
export const UPLINK_SHORT = 0.5; // limited when the bandwidth estimate is below this share of what our layers need
// The bandwidth estimate ramps up over the first seconds of sending (the encoder is held back meanwhile): the
// uplink is rated from this long after we started sending video on the session's publish connection.
export const UPLINK_GRACE_MS = 10000;

const LEVELS = /** @type {const} */ (['good', 'fair', 'poor']);

/**
 * @typedef {Object} QualityInput
 * @property {number | null} [lossPct] packets lost over the last seconds, in percent of those sent
 * @property {number | null} [rttMs] the round trip time of the connection
 * @property {number} [wantWidth] the size the tile shows the video at (device pixels; 0 or absent: unknown)
 * @property {number} [wantHeight]
 * @property {number} [gotWidth] the size of the picture received (0 or absent: none yet)
 * @property {number} [gotHeight]
 */

/**
 * connectionQuality rates what a tile receives: the worst of its packet loss, round trip and picture size.
 * @param {QualityInput} input
 * @returns {{level: 'good' | 'fair' | 'poor', reasons: string[]}} reasons: 'loss', 'rtt', 'layer'
 */
export function connectionQuality(input) {
  const x = input || {};
  let rank = 0;
  const reasons = [];
  /** @param {number} r @param {string} why */
  const worse = (r, why) => {
    if (r <= 0) return;
    rank = Math.max(rank, r);
    reasons.push(why);
  };
  const loss = Number(x.lossPct);
  if (x.lossPct !== null && x.lossPct !== undefined && Number.isFinite(loss)) {
    worse(loss >= LOSS_POOR_PCT ? 2 : loss >= LOSS_FAIR_PCT ? 1 : 0, 'loss');
  }
  const rtt = Number(x.rttMs);
  if (x.rttMs !== null && x.rttMs !== undefined && Number.isFinite(rtt)) {
    worse(rtt >= RTT_POOR_MS ? 2 : rtt >= RTT_FAIR_MS ? 1 : 0, 'rtt');
  }
  const wantW = Math.min(Number(x.wantWidth) || 0, 1920);
  const wantH = Math.min(Number(x.wantHeight) || 0, 1080);
  const gotW = Number(x.gotWidth) || 0;
  const gotH = Number(x.gotHeight) || 0;
  if (wantW > 0 && wantH > 0 && gotW > 0 && gotH > 0) {
    const ratio = Math.max(gotW / wantW, gotH / wantH);
    worse(ratio < LAYER_POOR ? 2 : ratio < LAYER_FAIR ? 1 : 0, 'layer');
  }
  return { level: LEVELS[rank], reasons };
}

/**
 * @typedef {Object} UplinkInput
 * @property {string[]} [reasons] the qualityLimitationReason of each video encoding we send
 * @property {number | null} [availableKbps] the publish connection's availableOutgoingBitrate
 * @property {number} [neededKbps] what the active encodings may use together (their maxBitrate)
 */

/**
 * uplinkLimit says why our sending is limited: 'cpu', 'bandwidth', or '' when it is not.
 * @param {UplinkInput} input
 * @returns {'' | 'bandwidth' | 'cpu'}
 */
export function uplinkLimit(input) {
  const x = input || {};
  const reasons = Array.isArray(x.reasons) ? x.reasons : [];
  if (reasons.includes('bandwidth')) return 'bandwidth';
  if (reasons.includes('cpu')) return 'cpu';
  const available = Number(x.availableKbps);
  const needed = Number(x.neededKbps) || 0;
  if (x.availableKbps !== null && x.availableKbps !== undefined && Number.isFinite(available) && needed > 0 &&
    available < needed * UPLINK_SHORT) {
    return 'bandwidth';
  }
  return '';
}

// ---------------------------------------------------------------------------------------------------------
// The badge on a tile
// ---------------------------------------------------------------------------------------------------------

const BARS = [
  { x: 4, y: 14, h: 6 },
  { x: 10, y: 9, h: 11 },
  { x: 16, y: 4, h: 16 },
];

/**
 * addQualityBadge puts the (hidden until rated) quality icon on a remote tile.
 * @param {any} tile
 */
export function addQualityBadge(tile) {
  const el = document.createElement('span');
  el.className = 'quality-badge';
  el.setAttribute('role', 'img');
  el.hidden = true;
  const ns = 'http://www.w3.org/2000/svg';
  const svg = document.createElementNS(ns, 'svg');
  svg.setAttribute('viewBox', '0 0 24 24');
  svg.setAttribute('aria-hidden', 'true');
  for (const [i, b] of BARS.entries()) {
    const rect = document.createElementNS(ns, 'rect');
    for (const [k, v] of Object.entries({ x: b.x, y: b.y, width: 4, height: b.h, rx: 1 })) {
      rect.setAttribute(k, String(v));
    }
    rect.classList.add(`bar-${i + 1}`);
    svg.append(rect);
  }
  el.append(svg);
  tile.el.append(el);
  tile.qualityEl = el;
}

/**
 * renderBadge shows a tile's rating: the icon's colour and bars, and its label (what a screen reader says and the
 * tooltip shows): the level and why.
 * @param {any} tile
 * @param {{level: string, reasons: string[], lossPct: number | null, rttMs: number | null} | null} q
 */
function renderBadge(tile, q) {
  const el = tile.qualityEl;
  if (!el) return;
  if (!q) {
    el.hidden = true;
    delete tile.el.dataset.quality;
    return;
  }
  const why = q.reasons.map((r) => {
    if (r === 'loss') return t('quality.loss', { pct: Math.round(q.lossPct || 0) });
    if (r === 'rtt') return t('quality.rtt', { ms: Math.round(q.rttMs || 0) });
    return t('quality.layer');
  });
  let label = t('quality.label', { level: t(`quality.${q.level}`) });
  if (why.length > 0) label += t('quality.because', { reasons: why.join(t('quality.separator')) });
  el.hidden = false;
  el.dataset.level = q.level;
  tile.el.dataset.quality = q.level;
  el.setAttribute('aria-label', label);
  el.title = label;
}

// ---------------------------------------------------------------------------------------------------------
// The periodic check
// ---------------------------------------------------------------------------------------------------------

export function startQuality() {
  expose({
    qualityOf: connectionQuality,
    uplinkOf: uplinkLimit,
    feedUplink,
  });
  clearInterval(app.quality.timer);
  app.quality.timer = setInterval(refreshQuality, QUALITY_INTERVAL_MS);
}

// refreshQuality rates every remote tile and our uplink from a fresh look at both connections' stats.
export async function refreshQuality() {
  const q = app.quality;
  if (q.busy) return; // a slow getStats: skip a beat
  q.busy = true;
  try {
    const session = app.session;
    if (session !== q.session) {
      q.session = session; // new connections count from zero
      q.history = new Map();
      q.sendingSince = 0;
    }
    const sub = usablePC(session && session.subscribePC);
    const subReport = sub ? await sub.getStats() : null;
    const pub = usablePC(session && session.publishPC);
    const pubReport = pub ? await pub.getStats() : null;
    const needed = pub ? neededKbps(pub) : 0;
    if (session !== app.session) return;
    rateTiles(subReport, performance.now());
    let sample = uplinkSample(pubReport, needed);
    const now = performance.now();
    if (!sample) q.sendingSince = 0;
    else if (!q.sendingSince) q.sendingSince = now;
    if (sample && now - q.sendingSince < UPLINK_GRACE_MS) sample = { reasons: [] }; // ramping up: not rated yet
    rateUplink(q.uplinkOverride || sample);
  } catch (err) {
    console.error('sfu: connection quality failed:', err);
  } finally {
    q.busy = false;
  }
}

/**
 * lossOver keeps the loss counters of one inbound stream and returns the share lost over LOSS_WINDOW_MS (in %),
 * or null before there are two samples or when nothing arrived.
 * @param {string} key
 * @param {any} r an inbound-rtp report
 * @param {number} now
 */
function lossOver(key, r, now) {
  const history = app.quality.history;
  const samples = history.get(key) || [];
  samples.push({ at: now, lost: Math.max(0, Number(r.packetsLost) || 0), received: Number(r.packetsReceived) || 0 });
  while (samples.length > 2 && now - samples[1].at >= LOSS_WINDOW_MS) samples.shift();
  history.set(key, samples);
  if (samples.length < 2) return null;
  const first = samples[0];
  const last = samples[samples.length - 1];
  const lost = last.lost - first.lost;
  const received = last.received - first.received;
  if (lost < 0 || received < 0 || lost + received === 0) return null;
  return (lost / (lost + received)) * 100;
}

/**
 * rateTiles rates each remote tile from the subscribe connection's report (null: no connection).
 * @param {any} report
 * @param {number} now
 */
function rateTiles(report, now) {
  const tilesByTrackId = new Map();
  for (const [track, tile] of app.trackTiles) tilesByTrackId.set(track.id, tile);
  /** @type {Map<any, {lost: number, total: number, gotWidth: number, gotHeight: number}>} */
  const perTile = new Map();
  const rtt = report ? roundTripMs(report) : null;
  if (report) {
    report.forEach((r) => {
      if (r.type !== 'inbound-rtp') return;
      const tile = tilesByTrackId.get(r.trackIdentifier);
      if (!tile) return;
      const acc = perTile.get(tile) || { lost: 0, total: 0, gotWidth: 0, gotHeight: 0 };
      const pct = lossOver(r.id, r, now);
      if (pct !== null) {
        // Weigh each stream of the tile (sound and picture) by its packets: the tile's loss is over them all.
        const samples = app.quality.history.get(r.id);
        const total = samples[samples.length - 1].received - samples[0].received +
          samples[samples.length - 1].lost - samples[0].lost;
        acc.lost += (pct / 100) * total;
        acc.total += total;
      }
      if ((r.kind || r.mediaType) === 'video' && (r.frameWidth || 0) * (r.frameHeight || 0) > acc.gotWidth * acc.gotHeight) {
        acc.gotWidth = r.frameWidth || 0;
        acc.gotHeight = r.frameHeight || 0;
      }
      perTile.set(tile, acc);
    });
  }
  const tiles = {};
  const details = {};
  for (const tile of allTiles()) {
    if (!tile.qualityEl) continue;
    const acc = perTile.get(tile);
    if (!acc) {
      app.quality.tiles.delete(tile);
      renderBadge(tile, null);
      continue;
    }
    const prev = app.quality.tiles.get(tile);
    const want = shownSize(tile.video);
    const wantKey = `${want.width}x${want.height}`;
    const wantSince = prev && prev.wantKey === wantKey ? prev.wantSince : now;
    // The size counts once the tile kept it for a while, and only while its picture is on (not muted or off).
    const layerCounts = now - wantSince >= LAYER_GRACE_MS && tile.el.dataset.cam === 'on';
    const input = {
      lossPct: acc.total > 0 ? (acc.lost / acc.total) * 100 : null,
      rttMs: rtt,
      wantWidth: layerCounts ? want.width : 0,
      wantHeight: layerCounts ? want.height : 0,
      gotWidth: acc.gotWidth,
      gotHeight: acc.gotHeight,
    };
    const rated = { ...connectionQuality(input), lossPct: input.lossPct, rttMs: rtt };
    app.quality.tiles.set(tile, { wantKey, wantSince, level: rated.level });
    renderBadge(tile, rated);
    const key = tileKey(tile);
    tiles[key] = rated.level;
    details[key] = { ...input, ...rated };
  }
  expose({ quality: { tiles, details, uplink: { ...currentUplink() } } });
}

/**
 * neededKbps: what the camera's simulcast layers the SFU asks for may use together (their maxBitrate). The screen
 * share does not count (still content needs far less than its cap), nor a camera turned off (it sends black frames,
 * and the bandwidth estimate does not grow past what is sent).
 * @param {RTCPeerConnection} pc
 */
function neededKbps(pc) {
  let bps = 0;
  const screen = app.screenTrack;
  for (const sender of pc.getSenders()) {
    const track = sender.track;
    if (!track || track.kind !== 'video' || track === screen || !track.enabled || track.readyState !== 'live') continue;
    for (const e of sender.getParameters().encodings || []) {
      if (e.active !== false && e.maxBitrate) bps += e.maxBitrate;
    }
  }
  return bps / 1000;
}

/**
 * uplinkSample reads the publish connection's report: why each video encoding holds back, and the bandwidth
 * estimate of its candidate pair. Null when we send no video.
 * @param {any} report
 * @param {number} needed
 * @returns {UplinkInput | null}
 */
function uplinkSample(report, needed) {
  if (!report) return null;
  const reasons = [];
  let available = null;
  let sending = false;
  report.forEach((r) => {
    if (r.type === 'outbound-rtp' && (r.kind || r.mediaType) === 'video') {
      sending = true;
      if (r.qualityLimitationReason) reasons.push(r.qualityLimitationReason);
    }
    if (r.type === 'candidate-pair' && r.nominated && typeof r.availableOutgoingBitrate === 'number') {
      available = r.availableOutgoingBitrate / 1000;
    }
  });
  if (!sending) return null;
  return { reasons, availableKbps: available, neededKbps: needed };
}

function currentUplink() {
  const u = app.quality.uplink;
  return { limited: u.limited, reason: u.reason, sample: u.sample };
}

/**
 * rateUplink shows the banner once the uplink was limited UPLINK_SHOW_AFTER times in a row, and hides it after as
 * many clean samples (a bandwidth estimate that ramps up at the start does not flash it).
 * @param {UplinkInput | null} sample null: nothing is sent (the banner goes)
 */
function rateUplink(sample) {
  const u = app.quality.uplink;
  const reason = sample ? uplinkLimit(sample) : '';
  u.sample = sample;
  if (!!reason === u.limited) {
    u.streak = 0;
    if (reason && reason !== u.reason) {
      u.reason = reason;
      showUplinkBanner(reason);
    }
  } else if (!sample) {
    u.streak = UPLINK_SHOW_AFTER; // stopped sending: clear at once
  } else {
    u.streak++;
  }
  if (u.streak >= UPLINK_SHOW_AFTER) {
    u.streak = 0;
    u.limited = !!reason;
    u.reason = reason;
    if (reason) showUplinkBanner(reason);
    else hideBanner('uplink');
  }
  expose({ quality: { ...hook.quality, uplink: currentUplink() } });
}

/** @param {string} reason */
function showUplinkBanner(reason) {
  showBanner('uplink', t(reason === 'cpu' ? 'quality.uplinkCpu' : 'quality.uplinkBandwidth'), { kind: 'warn' });
}

// ---------------------------------------------------------------------------------------------------------
// Test hooks
// ---------------------------------------------------------------------------------------------------------

/**
 * feedUplink makes the uplink check read sample instead of the live stats (null: the live stats again).
 * @param {UplinkInput | null} sample
 */
export function feedUplink(sample) {
  app.quality.uplinkOverride = sample || null;
}
