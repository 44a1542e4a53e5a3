// @ts-check
// Connecting and reconnecting: which node to try (redirects, failover over the region's nodes), reconnects
// with jittered exponential backoff, and the token (the latest the server sent, kept in sessionStorage).

import {
  BACKOFF_FIRST_MS, BACKOFF_MAX_MS, BUSY_RETRY_MAX, BUSY_RETRY_MS, FAILOVER_OPEN_TIMEOUT_MS, MAX_REDIRECTS,
  TOKEN_STORAGE_PREFIX, config, usingDevToken,
} from './config.js';
import { bindSession, clearSessionView, fail, refuseJoin, shutdownPage } from './meeting.js';
import { t } from './i18n.js';
import { Session, pageWsURL, signalingURL } from './protocol.js';
import { app, count, expose, setNodes } from './store.js';
import { hideBanner, setState, showBanner } from './ui.js';

// signalingURLs: where a new session may go, in the order reconnect attempts take them: the node of the last
// joined session (or the page's own), then the region's other nodes it listed.
export function signalingURLs() {
  const urls = [];
  for (const u of [app.joinedURL || pageWsURL(), ...app.nodes]) {
    if (u && !urls.includes(u)) urls.push(u);
  }
  return urls;
}

// nextSignalingURL: the URL for the next (re)connect attempt, round robin over signalingURLs.
export function nextSignalingURL() {
  const urls = signalingURLs();
  const url = urls[app.attempt % urls.length];
  app.attempt++;
  return url;
}

// onJoinedNode: a session joined on session.url: that node is the one to try first should it go away, then the
// region's others that it lists (joined.nodes). The backoff and the counts start over.
export function onJoinedNode(session, msg) {
  app.backoffMs = BACKOFF_FIRST_MS;
  app.busyTries = 0;
  app.joinedURL = session.url;
  const nodes = [];
  for (const n of Array.isArray(msg.nodes) ? msg.nodes : []) {
    const u = signalingURL(n);
    if (u && u !== session.url && !nodes.includes(u)) nodes.push(u);
  }
  setNodes(nodes);
  app.attempt = 0;
  app.redirectsInRow = 0;
}

// onToken keeps a fresh token the server sent: reconnects (and, but in dev mode, a reload) join with it. The
// session already took it for a redirect of its own.
export function onToken(msg) {
  if (typeof msg.token !== 'string' || !msg.token) return;
  app.token = msg.token;
  count('tokenRefreshes');
  if (usingDevToken) return;
  try {
    sessionStorage.setItem(TOKEN_STORAGE_PREFIX + config.room, msg.token);
  } catch (err) {
    // Storage may be disabled.
  }
}

// forgetToken drops the kept token once the server has refused it: a reload asks for a fresh link.
export function forgetToken() {
  try {
    sessionStorage.removeItem(TOKEN_STORAGE_PREFIX + config.room);
  } catch (err) {
    // Storage may be disabled.
  }
}

// onTokenError: the server refused the token (unauthorized, token_expired); the socket closes after it.
// Retrying with the same token cannot help: a dev page fetches a fresh one on the reconnect, any other page stops.
export function onTokenError(code, text) {
  if (code === 'unauthorized' || code === 'token_expired') app.token = ''; // a dev page fetches a fresh one
  if (code === 'unauthorized') {
    if (!usingDevToken) forgetToken();
    fail(t('conn.tokenRefused', { text }));
  } else if (code === 'token_expired' && !usingDevToken) {
    forgetToken();
    fail(t('conn.tokenExpired'));
  }
}

// onJoinRefused: the server refused our join for a room rule or a limit; the socket stays open. A busy server
// gets the join again on the same socket after BUSY_RETRY_MS, up to BUSY_RETRY_MAX times in all (should the
// server close the socket meanwhile, the page reconnects and the count goes on); a locked or full
// room ends the attempt (retrying would only knock at the same door) with a banner that offers to try again.
export function onJoinRefused(session, msg) {
  const code = msg.code;
  console.error(`sfu: join refused (${code}): ${msg.message || ''}`);
  if (code === 'busy' && app.busyTries < BUSY_RETRY_MAX) {
    app.busyTries++;
    showBanner('join', t('conn.busyRetry', { n: app.busyTries, max: BUSY_RETRY_MAX }),
      { kind: 'warn', dismissable: false });
    session.retryJoinAfter(BUSY_RETRY_MS);
    return;
  }
  const texts = {
    busy: t('conn.busy'),
    room_locked: t('conn.roomLocked'),
    room_full: t('conn.roomFull'),
  };
  session.close();
  refuseJoin(code, texts[code]);
}

// onResidency: this node's region may not host the room (the token's regions claim). Any node of this region
// would say the same, so the page stops here with a banner rather than retry.
export function onResidency(session, msg) {
  const detail = msg.message || t('conn.residencyDefault');
  console.error(`sfu: join refused (residency): ${detail}`);
  session.close();
  expose({ joinError: 'residency' });
  shutdownPage();
  setState('error');
  showBanner('join', t('conn.residency', { detail }), { kind: 'error', dismissable: false });
}

export class FatalError extends Error {}

export async function fetchDevToken() {
  const url = `/token?room=${encodeURIComponent(config.room)}&name=${encodeURIComponent(config.name)}`;
  const res = await fetch(url, { cache: 'no-store' });
  if (res.status === 404) throw new FatalError(t('conn.needsToken'));
  if (!res.ok) throw new Error(`GET /token answered ${res.status}`);
  const body = await res.json();
  if (!body || typeof body.token !== 'string' || !body.token) throw new Error('GET /token returned no token');
  return body.token;
}

// startSession makes the page's session on url (see meeting.js for what the page does with its events) and
// opens it.
export function startSession(token, url, extra) {
  const s = new Session({
    token,
    url,
    media: () => app.mediaReady || Promise.resolve(null),
    screen: () => (app.screenTrack && app.screenStream
      ? { track: app.screenTrack, stream: app.screenStream, audio: app.screenAudioTrack } : null),
    allowPublish: () => !app.publishRevoked,
    simulcast: config.simulcast,
    codec: config.codec,
    e2ee: app.e2ee || undefined,
    ...extra,
  });
  bindSession(s);
  s.on('lost', ({ notice, code }) => onSessionLost(s, code ? t(`conn.${code}`) : notice));
  s.on('redirect', ({ url: to, reason }) => {
    app.redirectsInRow++;
    count('redirects');
    followRedirect(s, to, reason);
  });
  s.on('token', onToken);
  app.session = s;
  expose({ wsURL: s.url });
  s.open();
  return s;
}

// connect starts a new session: a token (fresh in dev mode), then the socket and join.
export async function connect() {
  app.reconnectTimer = null;
  if (app.stopped) return;
  let token = app.token || config.token; // the latest the server sent, else the page's
  if (!token) {
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
  // A node that went away may not even refuse the connection (a dead host): with other nodes to try, wait less.
  const others = signalingURLs().length > 1;
  startSession(token, nextSignalingURL(), others ? { openTimeoutMs: FAILOVER_OPEN_TIMEOUT_MS } : {});
}

export function onSessionLost(session, notice) {
  if (session !== app.session || app.stopped) return;
  app.session = null;
  scheduleReconnect(notice);
}

// followRedirect replaces the session, which the server redirected, with one on url, at once and with the same
// token (see Session.onRedirect).
export function followRedirect(session, url, reason) {
  if (session !== app.session || app.stopped) return;
  if (app.redirectsInRow > MAX_REDIRECTS) {
    app.session = null;
    refuseJoin('redirect_loop', t('conn.redirectLoop', { n: app.redirectsInRow, url }));
    return;
  }
  if (session.joined) {
    // A draining node sends its participants away: what this session showed goes, the next one shows it again.
    clearSessionView();
    setState('reconnecting');
    showBanner('conn', t(reason === 'draining' ? 'conn.draining' : 'conn.moving'), { kind: 'warn', dismissable: false });
  }
  startSession(session.token, url, { redirected: true });
}

// scheduleReconnect tears down what the old session showed and tries again after 0.3 s, 0.6 s, 1.2 s ... 10 s
// (each delay drawn between 75 % and 100 % of that, so that the participants of a node that died do not all
// come back at once), each attempt on the next of signalingURLs (the node that went away first, then the
// region's others).
export function scheduleReconnect(notice) {
  if (app.stopped || app.reconnectTimer) return;
  clearSessionView();
  app.redirectsInRow = 0; // a failure breaks a row of redirects: the backoff paces the attempts from here
  setState('reconnecting');

  const delay = Math.round(app.backoffMs * (0.75 + Math.random() * 0.25));
  app.backoffMs = Math.min(app.backoffMs * 2, BACKOFF_MAX_MS);
  const deadline = Date.now() + delay;
  const showCountdown = () => {
    const secs = Math.max(1, Math.ceil((deadline - Date.now()) / 1000));
    showBanner('conn', t('conn.retryIn', { secs }), { kind: 'warn', dismissable: false });
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
    if (!notice) showBanner('conn', t('conn.retryNow'), { kind: 'warn', dismissable: false });
    connect();
  }, delay);
}

export function stopReconnecting() {
  clearTimeout(app.reconnectTimer);
  clearInterval(app.countdownTimer);
  app.reconnectTimer = null;
  hideBanner('conn');
}
