// @ts-check
// The stats overlay on the tiles and the test hook's stats (sfu.stats, sfu.publishStats).

import { STATS_INTERVAL_MS } from './config.js';
import { t } from './i18n.js';
import { allTiles } from './layout.js';
import { renderLocal } from './media.js';
import { usablePC } from './protocol.js';
import { app } from './store.js';

export function toggleStats() {
  app.statsOn = !app.statsOn;
  document.body.classList.toggle('show-stats', app.statsOn);
  clearInterval(app.statsTimer);
  app.statsTimer = null;
  app.statsPrev = new Map();
  for (const tile of allTiles()) tile.statsEl.textContent = '';
  if (app.statsOn) {
    app.statsTimer = setInterval(refreshStats, STATS_INTERVAL_MS);
    refreshStats();
  }
  renderLocal();
}

// refreshStats fills the overlays: each remote video tile from the subscribe connection's inbound-rtp report of
// its track, our own tile from the publish connection's outbound-rtp reports.
export async function refreshStats() {
  if (app.statsBusy) return; // a slow getStats: skip a beat rather than pile up
  app.statsBusy = true;
  try {
    const session = app.session;
    if (session !== app.statsSession) {
      app.statsSession = session; // new connections count from zero
      app.statsPrev = new Map();
    }
    const prev = app.statsPrev;
    const next = new Map();
    let texts = new Map(); // tile -> overlay text
    const sub = usablePC(session && session.subscribePC);
    if (sub) texts = inboundStatsTexts(await sub.getStats(), prev, next);
    const pub = usablePC(session && session.publishPC);
    if (pub) texts.set(app.localTile, outboundStatsText(await pub.getStats(), prev, next));
    if (!app.statsOn || session !== app.session) return;
    app.statsPrev = next;
    for (const tile of allTiles()) tile.statsEl.textContent = texts.get(tile) || '';
  } catch (err) {
    console.error('sfu: stats overlay failed:', err);
  } finally {
    app.statsBusy = false;
  }
}

// counterDelta remembers the counters of one report and returns how much each grew since the last refresh,
// with the time between in seconds. Null the first time, or if a counter went back.
export function counterDelta(prev, next, key, r, fields) {
  const cur = { timestamp: Number(r.timestamp) || 0 };
  for (const f of fields) cur[f] = Number(r[f]) || 0;
  next.set(key, cur);
  const old = prev.get(key);
  if (!old || !(cur.timestamp > old.timestamp)) return null;
  const d = { seconds: (cur.timestamp - old.timestamp) / 1000 };
  for (const f of fields) {
    d[f] = cur[f] - old[f];
    if (d[f] < 0) return null;
  }
  return d;
}

// fmt rounds a number for the overlay, or shows a dash when there is none yet.
export function fmt(v, unit = '') {
  return typeof v === 'number' && Number.isFinite(v) ? `${Math.round(v)}${unit}` : '–';
}

// layerOf guesses the simulcast layer (rid) of a received video from its height.
export function layerOf(height) {
  if (!height) return '–';
  if (height <= 300) return 'q';
  if (height <= 600) return 'h';
  return 'f';
}

// roundTripMs: the current round trip time of the connection's selected candidate pair, in ms.
export function roundTripMs(report) {
  let pair = null;
  report.forEach((r) => {
    if (r.type === 'transport' && r.selectedCandidatePairId) pair = report.get(r.selectedCandidatePairId) || pair;
  });
  if (!pair) {
    report.forEach((r) => {
      if (!pair && r.type === 'candidate-pair' && r.nominated && r.state === 'succeeded') pair = r;
    });
  }
  return pair && typeof pair.currentRoundTripTime === 'number' ? pair.currentRoundTripTime * 1000 : null;
}

// inboundStatsTexts matches the inbound-rtp video reports to tiles by trackIdentifier, the id of the receiver's
// MediaStreamTrack.
export function inboundStatsTexts(report, prev, next) {
  const tilesByTrackId = new Map();
  for (const [track, tile] of app.trackTiles) tilesByTrackId.set(track.id, tile);
  const rtt = roundTripMs(report);
  const texts = new Map();
  report.forEach((r) => {
    if (r.type !== 'inbound-rtp' || (r.kind || r.mediaType) !== 'video') return;
    const tile = tilesByTrackId.get(r.trackIdentifier);
    if (!tile) return;
    const d = counterDelta(prev, next, `in:${r.id}`, r,
      ['bytesReceived', 'framesDecoded', 'jitterBufferDelay', 'jitterBufferEmittedCount']);
    const height = r.frameHeight || 0;
    const size = r.frameWidth && height ? `${r.frameWidth}x${height}` : t('stats.noVideo');
    const fps = typeof r.framesPerSecond === 'number' ? r.framesPerSecond : d && d.framesDecoded / d.seconds;
    const kbps = d && (d.bytesReceived * 8) / d.seconds / 1000;
    const jitterMs = d && d.jitterBufferEmittedCount > 0
      ? (d.jitterBufferDelay / d.jitterBufferEmittedCount) * 1000 : null;
    const text = [
      `${size}  ${fmt(fps, ' fps')}  ${t('stats.layer')} ${layerOf(height)}`,
      `${fmt(kbps, ' kbps')}  ${t('stats.jitter')} ${fmt(jitterMs, ' ms')}`,
      `${t('stats.lost')} ${fmt(r.packetsLost || 0)}  RTT ${fmt(rtt, ' ms')}`,
    ].join('\n');
    const before = texts.get(tile);
    texts.set(tile, before ? `${before}\n${text}` : text);
  });
  return texts;
}

// outboundStatsText describes what we send: one line per simulcast layer (rid) of the camera, one for the
// screen share, and why the encoder holds back, if it does.
export function outboundStatsText(report, prev, next) {
  const screenId = app.screenTrack ? app.screenTrack.id : null;
  const rows = [];
  const limits = { camera: new Set(), screen: new Set() }; // qualityLimitationReason other than 'none'
  report.forEach((r) => {
    if (r.type !== 'outbound-rtp' || (r.kind || r.mediaType) !== 'video') return;
    const source = r.mediaSourceId ? report.get(r.mediaSourceId) : null;
    const screen = !!(source && screenId && source.trackIdentifier === screenId);
    const d = counterDelta(prev, next, `out:${r.id}`, r, ['bytesSent', 'framesEncoded']);
    const fps = typeof r.framesPerSecond === 'number' ? r.framesPerSecond : d && d.framesEncoded / d.seconds;
    const kbps = d && (d.bytesSent * 8) / d.seconds / 1000;
    const size = r.frameWidth && r.frameHeight ? `${r.frameWidth}x${r.frameHeight}` : t('stats.off');
    const label = screen ? t('stats.screen') : r.rid || t('stats.video');
    const order = screen ? 9 : ({ q: 0, h: 1, f: 2 }[r.rid] ?? 3); // the camera's layers first, small to large
    rows.push({ order, text: `${label} ${size} ${fmt(fps, 'fps')} ${fmt(kbps, ' kbps')}` });
    const reason = r.qualityLimitationReason;
    if (reason && reason !== 'none') limits[screen ? 'screen' : 'camera'].add(reason);
  });
  if (rows.length === 0) return '';
  rows.sort((a, b) => a.order - b.order);
  const lines = rows.map((row) => row.text);
  const reasons = (set) => Array.from(set, (r) => (['cpu', 'bandwidth', 'other'].includes(r) ? t(`stats.reason.${r}`) : r))
    .join('+');
  let limit = `${t('stats.limit')}: ${reasons(limits.camera) || t('stats.none')}`;
  if (limits.screen.size > 0) limit += `, ${t('stats.screen')} ${reasons(limits.screen)}`;
  lines.push(`${limit}  RTT ${fmt(roundTripMs(report), ' ms')}`);
  return lines.join('\n');
}

// ---------------------------------------------------------------------------------------------------------
// Test hooks
// ---------------------------------------------------------------------------------------------------------

// subscribeStats: one entry per inbound-rtp report of the subscribe connection.
export async function subscribeStats() {
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
        keyFramesDecoded: r.keyFramesDecoded || 0,
        pliCount: r.pliCount || 0,
        freezeCount: r.freezeCount || 0,
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
export async function publishStats() {
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
      rid: r.rid || '',
      keyFramesEncoded: r.keyFramesEncoded || 0,
      pliCount: r.pliCount || 0,
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
