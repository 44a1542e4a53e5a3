// @ts-check
// The SFU's signaling protocol in the browser (signaling/PROTOCOL.md), without any user interface: one Session is
// one WebSocket plus its two peer connections:
//   publish   – we offer, the server answers; carries our camera and microphone, and our screen while we share it.
//   subscribe – the server offers, we answer; carries every remote participant's tracks.
// A Session joins, keeps the socket alive (ping/pong), negotiates both connections, restarts ICE when the network
// changes and says what happens through events (see SessionEvents). It never reconnects by itself: a lost session
// emits "lost" and the caller starts a new one (connection.js does, with backoff and failover). It touches no
// document: the meeting page (main.js) and the example bot (examples/bot.js) both use it.

const PING_INTERVAL_MS = 5000;
const PONG_TIMEOUT_MS = 10000;
export const OPEN_TIMEOUT_MS = 10000;
const ICE_DISCONNECTED_GRACE_MS = 2000; // a connection "disconnected" this long gets an ICE restart
const ICE_RESTART_TIMEOUT_MS = 10000; // an ICE restart not connected after this long has failed
const ICE_RESTART_BACKOFF_FIRST_MS = 2000; // between failed ICE restarts: 2 s, 4 s, 8 s ...
const ICE_RESTART_BACKOFF_MAX_MS = 30000; // ... at most 30 s
const ICE_RESTART_MAX_ATTEMPTS = 3; // then the session is thrown away and a new one joins
export const SCREEN_MAX_BITRATE = 2_500_000; // one encoding, no simulcast: text must stay sharp

/** @typedef {'publish' | 'subscribe'} PCName */

/**
 * What a Session says, by event name, and the detail each listener gets. Server messages that the Session does
 * not handle itself are passed on under their own type with the message as detail: participant_joined,
 * participant_left, track_published, track_unpublished, track_muted, active_speakers, audio_processing, caption,
 * captions_status, transcription, room_state, moderation, token, error (not queued: before a close), and any
 * type added later.
 * @typedef {Object} SessionEvents
 * @property {any} joined the joined message; listeners may set session.mayPublish before publishing starts
 * @property {{participantId: string, trackId: string, track: MediaStreamTrack, stream: MediaStream | undefined}} track
 *   a remote track arrived on the subscribe connection
 * @property {{participantId: string, track: MediaStreamTrack}} track_ended a remote track ended or left its stream
 * @property {{reason: string}} bye the server ends the session (after close, or before "lost" for shutdown/failed)
 * @property {{url: string, reason: string}} redirect the session closed to follow the server to url
 * @property {{notice: string | undefined, code: string | undefined}} lost the session died unexpectedly (it is
 *   closed); notice says why in English, code names it (shutdown, mediaFailed, mediaLost) for a translated page
 * @property {{publish: IceView | null, subscribe: IceView | null}} ice the connections' ICE state changed
 * @property {{name: PCName, reason: string}} ice_restart an ICE restart started
 * @property {{}} ice_settled no ICE restart is running any more (done, mended or given up)
 * @property {{message: string, code: string, detail: Record<string, string>}} client_error something failed here
 *   (not the server's refusal): message in English; code (handling, publish, publishOffer) and detail for a page
 *   that words it itself
 */

/** @typedef {{state: RTCIceConnectionState, restarting: boolean, attempts: number, ufrag: string}} IceView */

/**
 * @typedef {Object} SessionOptions
 * @property {string} token the join token
 * @property {string} url the signaling WebSocket URL
 * @property {number} [openTimeoutMs] a socket not open after this long is given up (default 10 s)
 * @property {boolean} [redirected] the session follows a redirect (only changes a log line)
 * @property {() => Promise<MediaStream | null>} [media] what to publish once joined (camera and microphone)
 * @property {() => ({track: MediaStreamTrack, stream: MediaStream, audio?: MediaStreamTrack | null} | null)} [screen]
 *   a running screen share (audio: its sound, if the browser shared any)
 * @property {() => boolean} [allowPublish] false while the page may not publish (a host revoked it)
 * @property {boolean} [simulcast] camera video in three layers (default true)
 * @property {string} [codec] preferred video codec MIME type (default video/VP8)
 * @property {FrameCrypto} [e2ee] end-to-end encryption: join announces it, and every sender and receiver gets its
 *   transform (the room must be E2EE; video is then VP8, whose header the SFU reads in clear)
 */

/**
 * What a Session needs of end-to-end encryption (e2ee.js implements it): the announcement join carries, and the
 * encoded transforms of each sender and receiver.
 * @typedef {Object} FrameCrypto
 * @property {string} announcement
 * @property {(sender: RTCRtpSender, kind: string) => void} sender
 * @property {(receiver: RTCRtpReceiver, kind: string, participantId: string, trackId: string) => void} receiver
 */

/** @typedef {ReturnType<typeof newIceState>} IceState */

// Emitter is the small event emitter of a Session. Listeners run synchronously and their exceptions reach the
// emitter's caller, so a failing handler of a queued message is reported like any other handling error.
export class Emitter {
  constructor() {
    /** @type {Map<string, Array<(detail: any) => void>>} */
    this.listeners = new Map();
  }

  /**
   * @param {string} type
   * @param {(detail: any) => void} fn
   * @returns {this}
   */
  on(type, fn) {
    const list = this.listeners.get(type) || [];
    list.push(fn);
    this.listeners.set(type, list);
    return this;
  }

  /**
   * @param {string} type
   * @param {any} [detail]
   */
  emit(type, detail) {
    for (const fn of this.listeners.get(type) || []) fn(detail);
  }
}

export class Session extends Emitter {
  /** @param {SessionOptions} opts */
  constructor(opts) {
    super();
    this.token = opts.token;
    this.url = opts.url;
    this.openTimeoutMs = opts.openTimeoutMs || OPEN_TIMEOUT_MS;
    this.redirected = !!opts.redirected;
    this.media = opts.media || (() => Promise.resolve(null));
    this.screen = opts.screen || (() => null);
    this.allowPublish = opts.allowPublish || (() => true);
    this.simulcast = opts.simulcast !== false;
    this.e2ee = opts.e2ee || null;
    this.codec = this.e2ee ? 'video/VP8' : opts.codec || 'video/VP8';
    this.mayPublish = true; // the token allows publishing (joined.you.publish); a joined listener may change it
    this.opened = false; // the socket opened
    /** @type {WebSocket | null} */
    this.ws = null;
    this.ended = false;
    this.joined = false;
    /** @type {RTCIceServer[]} */
    this.iceServers = [];
    /** @type {{publish: RTCPeerConnection | null, subscribe: RTCPeerConnection | null}} */
    this.pcs = { publish: null, subscribe: null };
    /** @type {{publish: RTCIceCandidateInit[], subscribe: RTCIceCandidateInit[]}} */
    this.pendingCandidates = { publish: [], subscribe: [] }; // held until the pc has a remote description
    /** @type {Promise<unknown>} */
    this.queue = Promise.resolve(); // messages are handled one at a time, in arrival order
    this.makingOffer = false;
    this.offerAgain = false;
    this.publishAnswered = false;
    /** @type {WeakMap<MediaStreamTrack, string>} */
    this.wireIds = new WeakMap(); // a track put in place of another by replaceTrack -> the id the server knows
    this.pingSeq = 0;
    this.lastPongId = 0;
    /** @type {any} */
    this.pingTimer = null;
    /** @type {any} */
    this.pongTimer = null;
    /** @type {any} */
    this.openTimer = null;
    /** @type {any} */
    this.joinTimer = null; // a join to send again later (see retryJoinAfter)
    this.joinSentAt = 0; // when the last join went out
    this.publishRestartPending = false; // the next publish offer restarts ICE
    this.publishOfferRestarts = false; // the publish offer waiting for its answer restarts ICE
    this.warnedTrackSource = false;
    // ICE restart state per connection (see requestIceRestart).
    /** @type {{publish: IceState, subscribe: IceState}} */
    this.ice = { publish: newIceState(), subscribe: newIceState() };
  }

  get publishPC() { return this.pcs.publish; }
  get subscribePC() { return this.pcs.subscribe; }
  // canPublish: the server takes our offers (the token allows it and nobody revoked it).
  get canPublish() { return this.mayPublish && this.allowPublish(); }

  open() {
    let ws;
    try {
      ws = new WebSocket(this.url);
    } catch (err) {
      // A URL the browser refuses (e.g. mixed content): as good as a node that does not answer.
      console.error(`sfu: cannot open ${this.url}:`, err);
      setTimeout(() => this.lost(), 0);
      return;
    }
    this.ws = ws;
    this.openTimer = setTimeout(() => {
      if (ws.readyState === WebSocket.CONNECTING) this.lost();
    }, this.openTimeoutMs);
    ws.onopen = () => {
      this.opened = true;
      clearTimeout(this.openTimer);
      // join must be the first message: the server refuses anything else (even ping) before it.
      this.sendJoin();
      this.pingTimer = setInterval(() => this.ping(), PING_INTERVAL_MS);
    };
    ws.onmessage = (ev) => this.receive(ev.data);
    ws.onerror = () => {}; // a close event always follows; it is handled there
    ws.onclose = () => {
      if (this.ended) return;
      if (this.redirected && !this.opened) {
        // The browser does not say why; a node of another origin that does not allow this page's is one cause.
        console.error(`sfu: the redirect target ${this.url} refused the WebSocket (is ${location.origin} among ` +
          'its allowed origins?)');
      }
      this.lost();
    };
  }

  /** @param {Record<string, any>} msg */
  send(msg) {
    if (this.ws && this.ws.readyState === WebSocket.OPEN) this.ws.send(JSON.stringify(msg));
  }

  sendJoin() {
    this.joinSentAt = Date.now();
    this.send(this.e2ee ? { type: 'join', token: this.token, e2ee: this.e2ee.announcement } : { type: 'join', token: this.token });
  }

  // retryJoinAfter sends the join again on this socket after ms, unless the session ended or joined by then
  // (a join refused as busy).
  /** @param {number} ms */
  retryJoinAfter(ms) {
    clearTimeout(this.joinTimer);
    this.joinTimer = setTimeout(() => {
      if (!this.ended && !this.joined) this.sendJoin();
    }, ms);
  }

  // close ends the session for good: socket, peer connections and timers. Idempotent.
  close() {
    if (this.ended) return;
    this.ended = true;
    clearTimeout(this.openTimer);
    clearInterval(this.pingTimer);
    clearTimeout(this.pongTimer);
    clearTimeout(this.joinTimer);
    for (const st of Object.values(this.ice)) clearIceTimers(st);
    if (this.ws) {
      this.ws.onclose = null;
      this.ws.onmessage = null;
      try { this.ws.close(1000); } catch (err) { /* already closed */ }
    }
    for (const pc of Object.values(this.pcs)) {
      if (pc) {
        pc.onicecandidate = null;
        pc.ontrack = null;
        pc.onnegotiationneeded = null;
        pc.onconnectionstatechange = null;
        pc.oniceconnectionstatechange = null;
        pc.close();
      }
    }
  }

  // lost: the connection died unexpectedly: the session closes and says so ("lost"); the caller starts anew.
  /**
   * @param {string} [notice] what to tell the user instead of a countdown (English)
   * @param {string} [code] the notice's code (shutdown, mediaFailed, mediaLost), for a page that words it itself
   */
  lost(notice, code) {
    if (this.ended) return;
    this.close();
    this.emit('lost', { notice, code });
  }

  // ---- keepalive ----

  ping() {
    // Before joined the server refuses anything but join (a join refused as busy waits for its retry): no ping,
    // but a join left unanswered as long as a ping would be means the connection is dead.
    if (!this.joined) {
      if (Date.now() - this.joinSentAt > PONG_TIMEOUT_MS) {
        console.error(`sfu: no answer to join within ${PONG_TIMEOUT_MS / 1000}s, reconnecting`);
        this.lost();
      }
      return;
    }
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

  /** @param {any} msg */
  onPong(msg) {
    const id = Number(msg.id) || 0;
    if (id > this.lastPongId) this.lastPongId = id;
    if (this.pongTimer && this.lastPongId >= this.pingSeq) {
      clearTimeout(this.pongTimer);
      this.pongTimer = null;
    }
  }

  // ---- incoming messages ----

  /** @param {any} data */
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
    if (msg.type === 'redirect') return this.onRedirect(msg);
    // Offers, answers and candidates must be applied in the order they came, each after the previous one's
    // asynchronous work is done, hence the promise chain.
    this.queue = this.queue
      .then(() => (this.ended ? undefined : this.handle(msg)))
      .catch((err) => {
        console.error(`sfu: handling "${msg.type}" failed:`, err);
        if (!this.ended) {
          this.emit('client_error', {
            message: `Client error while handling "${msg.type}": ${err.message || err}`,
            code: 'handling',
            detail: { type: msg.type, error: String(err.message || err) },
          });
        }
      });
  }

  /** @param {any} msg */
  handle(msg) {
    switch (msg.type) {
      case 'joined': return this.onJoined(msg);
      case 'offer': return this.onOffer(msg);
      case 'answer': return this.onAnswer(msg);
      case 'candidate': return this.onCandidate(msg);
      case 'layers': return this.onLayers(msg);
      case 'token':
        if (typeof msg.token === 'string' && msg.token) this.token = msg.token; // a redirect follows with it
        return this.emit('token', msg);
      default: return this.emit(msg.type, msg); // the caller's business (unknown types are ignored)
    }
  }

  // onLayers: the SFU says which simulcast layers of a track anyone receives; encoding the others would waste
  // this machine's CPU and uplink, so they are paused until a later message lists them again.
  /** @param {any} msg */
  async onLayers(msg) {
    const pc = this.publishPC;
    const wanted = new Set(Array.isArray(msg.rids) ? msg.rids : []);
    const paused = new Set(Array.isArray(msg.paused) ? msg.paused : []);
    if (!pc) return;
    const sender = pc.getSenders().find((s) => s.track && s.track.id === msg.track_id);
    if (!sender) return;
    const params = sender.getParameters();
    if (!params.encodings || params.encodings.length < 2) return;
    let changed = false;
    for (const enc of params.encodings) {
      if (!enc.rid || (!wanted.has(enc.rid) && !paused.has(enc.rid))) continue; // not known to the server yet
      const active = wanted.has(enc.rid);
      if (enc.active !== active) {
        enc.active = active;
        changed = true;
      }
    }
    if (changed) await sender.setParameters(params);
  }

  // onJoined: the listeners of "joined" see the message first (and may set mayPublish); then the subscribe
  // connection is ready for the server's offer and, if we may publish, our media goes out.
  /** @param {any} msg */
  onJoined(msg) {
    this.joined = true;
    this.iceServers = Array.isArray(msg.ice_servers) ? msg.ice_servers : [];
    const you = msg.you || {};
    this.mayPublish = you.publish !== false;
    this.emit('joined', msg);
    this.ensureSubscribePC();
    if (!this.canPublish) return;
    // Not awaited: the camera permission prompt may still be open, and messages must keep flowing meanwhile.
    this.startPublishing().catch((err) => {
      console.error('sfu: publishing failed:', err);
      this.emit('client_error', {
        message: `Could not publish your camera/microphone: ${err.message || err}`,
        code: 'publish',
        detail: { error: String(err.message || err) },
      });
    });
  }

  // onError: the server refused something. Errors of the protocol itself are handled here; the others go to the
  // "error" listeners (before the socket closes, if it does).
  /** @param {any} msg */
  onError(msg) {
    const code = msg.code || 'error';
    const text = msg.message || '';
    // A server that predates track_source refuses it as unknown_type. Harmless: its tracks then count as camera
    // and microphone (screen shares included), so say it once in the console rather than in a toast per track.
    if (code === 'unknown_type' && text.includes('track_source')) {
      if (!this.warnedTrackSource) console.warn('sfu: the server does not know track_source:', text);
      this.warnedTrackSource = true;
      return;
    }
    // A publish offer refused (e.g. the host took away the right to publish meanwhile): drop it, so that the
    // connection is stable again and a later offer can go.
    if (msg.ref === 'offer' && code === 'forbidden') this.rollbackPublishOffer();
    this.emit('error', msg);
  }

  // onRedirect: the room lives on another node of the region (reason "room_owner"; "room_moved" in the middle of
  // a meeting, when another node took the room's lease), or this node is shutting down (reason "draining"). The
  // session closes and says where to go ("redirect"): the caller sends the same join there, with the same token.
  /** @param {any} msg */
  onRedirect(msg) {
    if (this.ended) return;
    const url = signalingURL(msg.url);
    const reason = typeof msg.reason === 'string' ? msg.reason : '';
    if (!url) {
      console.error('sfu: redirect to an unusable URL:', msg.url);
      this.lost();
      return;
    }
    console.info(`sfu: redirected (${reason || 'no reason'}) from ${this.url} to ${url}`);
    this.close();
    this.emit('redirect', { url, reason });
  }

  // onBye: the server ends the session. shutdown and failed are losses (a new session may join elsewhere); the
  // others (kicked, room_ended, replaced, left) end it for good; an unknown reason waits for the socket's close.
  /** @param {any} msg */
  onBye(msg) {
    const reason = typeof msg.reason === 'string' ? msg.reason : '';
    switch (reason) {
      case 'shutdown':
        this.emit('bye', { reason });
        this.lost('The server is restarting; reconnecting…', 'shutdown');
        break;
      case 'failed':
        this.emit('bye', { reason });
        this.lost('The media connection failed; reconnecting…', 'mediaFailed');
        break;
      case 'kicked':
      case 'room_ended':
      case 'replaced':
      case 'left':
        this.close();
        this.emit('bye', { reason });
        break;
      default:
        // Unknown reason: the socket closes right after and the close handler reports the loss.
        this.emit('bye', { reason });
        break;
    }
  }

  // ---- peer connections ----

  /** @param {PCName} name */
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
      // ICE failures are mended by an ICE restart (see onIceState); anything else (DTLS) by a new session.
      if (pc.connectionState === 'failed' && pc.iceConnectionState !== 'failed' && !this.ended) {
        console.error(`sfu: the ${name} connection failed, reconnecting`);
        this.lost('The media connection failed; reconnecting…', 'mediaFailed');
      }
    };
    pc.oniceconnectionstatechange = () => this.onIceState(name, pc);
    this.renderIce();
    return pc;
  }

  // ---- ICE restart ----
  //
  // A connection whose ICE is "disconnected" for ICE_DISCONNECTED_GRACE_MS, or "failed", or any connection after
  // the network changed (online, navigator.connection change), gets new ICE credentials without a new session:
  // the publish connection by an offer made with iceRestart, the subscribe connection by asking the server for
  // one (ice_restart). Tracks, tiles and the session carry on. One restart at a time per connection; a restart
  // not connected within ICE_RESTART_TIMEOUT_MS has failed, and the next one waits 2 s, 4 s, 8 s ... 30 s. After
  // ICE_RESTART_MAX_ATTEMPTS failed ones the session is lost (a new one joins).

  /**
   * @param {PCName} name
   * @param {RTCPeerConnection} pc
   */
  onIceState(name, pc) {
    if (this.ended || this.pcs[name] !== pc) return;
    const st = this.ice[name];
    const state = pc.iceConnectionState;
    if (state !== 'disconnected') {
      clearTimeout(st.graceTimer);
      st.graceTimer = null;
    }
    if (state === 'connected' || state === 'completed') {
      if (st.inFlight) {
        this.iceRestartDone(name, true);
      } else if (st.retryTimer) {
        clearTimeout(st.retryTimer); // it mended itself while waiting for the next try
        st.retryTimer = null;
        st.attempts = 0;
        this.emit('ice_settled', {});
      }
    } else if (state === 'disconnected') {
      if (!st.graceTimer && !st.inFlight) {
        st.graceTimer = setTimeout(() => {
          st.graceTimer = null;
          if (!this.ended && pc.iceConnectionState === 'disconnected') this.requestIceRestart(name, 'disconnected');
        }, ICE_DISCONNECTED_GRACE_MS);
      }
    } else if (state === 'failed') {
      if (st.inFlight) this.iceRestartDone(name, false);
      else this.requestIceRestart(name, 'failed');
    }
    this.renderIce();
  }

  // restartIce restarts both connections (the network changed, or the test hook). force: now, even while
  // waiting to retry a failed restart. Returns true if any restart started.
  /**
   * @param {string} reason
   * @param {boolean} force
   */
  restartIce(reason, force) {
    let started = false;
    for (const name of /** @type {PCName[]} */ (['publish', 'subscribe'])) {
      const st = this.ice[name];
      if (force && st.retryTimer) {
        clearTimeout(st.retryTimer);
        st.retryTimer = null;
      }
      if (this.requestIceRestart(name, reason)) started = true;
    }
    return started;
  }

  // requestIceRestart starts an ICE restart of one connection unless one is in flight or waiting to be retried,
  // or the connection cannot restart (none yet, never negotiated, or we may not publish).
  /**
   * @param {PCName} name
   * @param {string} reason
   */
  requestIceRestart(name, reason) {
    const st = this.ice[name];
    if (this.ended || !this.joined || st.inFlight || st.retryTimer) return false;
    const pc = usablePC(this.pcs[name]);
    if (!pc || !pc.remoteDescription) return false;
    if (name === 'publish' && !this.canPublish) return false; // the server refuses our offers
    console.warn(`sfu: restarting ICE on the ${name} connection (${reason}, attempt ${st.attempts + 1})`);
    st.inFlight = true;
    st.ufrag = iceUfrag(pc.remoteDescription);
    st.reason = reason;
    this.emit('ice_restart', { name, reason });
    clearTimeout(st.attemptTimer);
    st.attemptTimer = setTimeout(() => {
      st.attemptTimer = null;
      const state = pc.iceConnectionState;
      this.iceRestartDone(name, state === 'connected' || state === 'completed');
    }, ICE_RESTART_TIMEOUT_MS);
    if (name === 'publish') {
      this.publishRestartPending = true;
      this.negotiatePublish();
    } else {
      this.send({ type: 'ice_restart' }); // the server answers with a subscribe offer (see onOffer)
    }
    this.renderIce();
    return true;
  }

  // iceRestartExchanged: the new credentials are in place on both sides. A connection that never stopped
  // working (a forced restart, a network change that did not cut it) stays "connected" throughout: done.
  /** @param {PCName} name */
  iceRestartExchanged(name) {
    const st = this.ice[name];
    const pc = this.pcs[name];
    this.renderIce();
    if (!st.inFlight || !pc) return;
    if (pc.iceConnectionState === 'connected' || pc.iceConnectionState === 'completed') this.iceRestartDone(name, true);
  }

  /**
   * @param {PCName} name
   * @param {boolean} ok
   */
  iceRestartDone(name, ok) {
    const st = this.ice[name];
    if (!st.inFlight || this.ended) return;
    st.inFlight = false;
    clearTimeout(st.attemptTimer);
    st.attemptTimer = null;
    if (ok) {
      st.attempts = 0;
      if (!this.ice.publish.inFlight && !this.ice.subscribe.inFlight) this.emit('ice_settled', {});
      this.renderIce();
      return;
    }
    st.attempts++;
    console.error(`sfu: ICE restart ${st.attempts} of the ${name} connection failed`);
    if (st.attempts >= ICE_RESTART_MAX_ATTEMPTS) {
      this.emit('ice_settled', {});
      this.lost('The media connection was lost; reconnecting…', 'mediaLost');
      return;
    }
    const delay = Math.min(ICE_RESTART_BACKOFF_FIRST_MS * 2 ** (st.attempts - 1), ICE_RESTART_BACKOFF_MAX_MS);
    st.retryTimer = setTimeout(() => {
      st.retryTimer = null;
      const pc = this.pcs[name];
      const state = pc ? pc.iceConnectionState : 'closed';
      if (state !== 'connected' && state !== 'completed') this.requestIceRestart(name, 'retry');
      else st.attempts = 0;
    }, delay);
    this.renderIce();
  }

  // renderIce says both connections' ICE state ("ice").
  renderIce() {
    /** @type {{publish: IceView | null, subscribe: IceView | null}} */
    const view = { publish: null, subscribe: null };
    for (const name of /** @type {PCName[]} */ (['publish', 'subscribe'])) {
      const pc = this.pcs[name];
      const st = this.ice[name];
      view[name] = pc ? {
        state: pc.iceConnectionState,
        restarting: st.inFlight,
        attempts: st.attempts,
        ufrag: iceUfrag(pc.remoteDescription),
      } : null;
    }
    this.emit('ice', view);
  }

  ensureSubscribePC() {
    if (this.subscribePC) return this.subscribePC;
    const pc = this.createPC('subscribe');
    pc.ontrack = (ev) => this.onRemoteTrack(pc, ev);
    return pc;
  }

  /**
   * @param {RTCPeerConnection} pc
   * @param {RTCTrackEvent} ev
   */
  onRemoteTrack(pc, ev) {
    const { participantId, trackId } = remoteIds(pc, ev);
    if (!participantId) {
      console.error('sfu: received a track without a participant id:', ev.track.id);
      return;
    }
    const track = ev.track;
    if (this.e2ee) this.e2ee.receiver(ev.receiver, track.kind, participantId, trackId);
    this.emit('track', { participantId, trackId, track, stream: ev.streams[0] });
    const ended = () => {
      if (!this.ended) this.emit('track_ended', { participantId, track });
    };
    track.addEventListener('ended', ended);
    if (ev.streams[0]) {
      ev.streams[0].addEventListener('removetrack', (e) => {
        if (e.track === track) ended();
      });
    }
  }

  // startPublishing waits for the camera/microphone, then adds them (and a running screen share, e.g. after a
  // reconnect) to the publish connection. Adding the transceivers fires negotiationneeded, which sends the offer.
  async startPublishing() {
    const stream = await this.media();
    if (this.ended) return;
    const tracks = stream ? stream.getTracks().filter((t) => t.readyState === 'live') : [];
    for (const track of tracks) {
      /** @type {RTCRtpTransceiverInit} */
      const init = { direction: 'sendonly', streams: stream ? [stream] : [] };
      if (track.kind === 'video') {
        track.contentHint = 'detail';
        if (this.simulcast) init.sendEncodings = simulcastEncodings(this.codec);
      }
      const transceiver = this.publishTrack(track, track.kind === 'video' ? 'camera' : 'microphone', init);
      if (transceiver && track.kind === 'video') {
        preferCodec(transceiver, this.codec);
        preferResolution(transceiver.sender);
      }
    }
    this.publishScreen();
  }

  ensurePublishPC() {
    if (this.publishPC) return this.publishPC;
    const pc = this.createPC('publish');
    pc.onnegotiationneeded = () => this.negotiatePublish();
    return pc;
  }

  // publishTrack says what the track carries, then adds it to the publish connection. Order matters: the server
  // must have the track_source before the offer with the track, and that offer is made only once
  // negotiationneeded fires, after this task. Returns the transceiver, or null if the track was already there.
  /**
   * @param {MediaStreamTrack} track
   * @param {string} source camera, microphone, screen or screen_audio
   * @param {RTCRtpTransceiverInit} init
   */
  publishTrack(track, source, init) {
    const pc = this.ensurePublishPC();
    if (pc.getSenders().some((s) => s.track === track)) return null;
    this.send({ type: 'track_source', track: track.id, source });
    const transceiver = pc.addTransceiver(track, init);
    if (this.e2ee) this.e2ee.sender(transceiver.sender, track.kind); // before the first frame is encoded
    return transceiver;
  }

  // publishScreen adds the running screen share (options.screen), if any, to the publish connection: in its own
  // MediaStream, as one encoding (no simulcast), with its sound (source screen_audio) when it has some. Before
  // joined it does nothing: startPublishing calls it again then.
  publishScreen() {
    const share = this.screen();
    if (!share || !share.track || share.track.readyState !== 'live' || !share.stream) return;
    if (this.ended || !this.joined || !this.canPublish) return;
    /** @type {RTCRtpTransceiverInit} */
    const init = {
      direction: 'sendonly',
      streams: [share.stream],
      sendEncodings: [{ maxBitrate: SCREEN_MAX_BITRATE }],
    };
    const transceiver = this.publishTrack(share.track, 'screen', init);
    if (transceiver) {
      preferCodec(transceiver, this.codec);
      preferResolution(transceiver.sender);
    }
    if (share.audio && share.audio.readyState === 'live') {
      this.publishTrack(share.audio, 'screen_audio', { direction: 'sendonly', streams: [share.stream] });
    }
  }

  // unpublishTrack takes a track off the publish connection; removeTrack fires negotiationneeded, and the next
  // offer no longer sends it.
  /** @param {MediaStreamTrack} track */
  unpublishTrack(track) {
    const pc = usablePC(this.publishPC);
    if (!pc || this.ended) return;
    const sender = pc.getSenders().find((s) => s.track === track);
    if (sender) pc.removeTrack(sender);
  }

  // unpublishAll takes every track off the publish connection without a new offer (the server refuses them now).
  unpublishAll() {
    const pc = usablePC(this.publishPC);
    if (!pc) return;
    for (const sender of pc.getSenders()) {
      if (sender.track) pc.removeTrack(sender);
    }
  }

  // replaceTrack puts track in the place of old on the publish connection with RTCRtpSender.replaceTrack: no new
  // offer, the server goes on receiving the same stream. The server keeps knowing it by old's id (see wireId).
  // Resolves to false when old is not published here.
  /**
   * @param {MediaStreamTrack} old
   * @param {MediaStreamTrack} track
   */
  async replaceTrack(old, track) {
    const pc = usablePC(this.publishPC);
    const sender = pc && !this.ended ? pc.getSenders().find((s) => s.track === old) : null;
    if (!sender) return false;
    await sender.replaceTrack(track);
    this.wireIds.set(track, this.wireId(old));
    return true;
  }

  // wireId is the id the server knows our published track by (in mute messages, moderation): its own id, or
  // after replaceTrack the id of the track it replaced. Each session publishes afresh, so this holds per session.
  /** @param {MediaStreamTrack} track */
  wireId(track) {
    return this.wireIds.get(track) || track.id;
  }

  // negotiatePublish: createOffer -> setLocalDescription -> send. The answer comes back as an "answer" message.
  // An ICE restart (publishRestartPending) goes with the next offer: this one, or the one after the pending answer.
  async negotiatePublish() {
    const pc = this.publishPC;
    if (!pc || this.ended) return;
    if (!this.canPublish) return; // the server would refuse the offer; "You may publish again" offers anew
    if (this.makingOffer || pc.signalingState !== 'stable') {
      this.offerAgain = true; // offer again once the pending answer has been applied
      return;
    }
    this.makingOffer = true;
    const iceRestart = this.publishRestartPending;
    this.publishRestartPending = false;
    try {
      const offer = await pc.createOffer(iceRestart ? { iceRestart: true } : undefined);
      if (this.ended) return;
      await pc.setLocalDescription(offer);
      if (this.ended) return;
      this.publishOfferRestarts = iceRestart;
      this.send({ type: 'offer', pc: 'publish', sdp: pc.localDescription ? pc.localDescription.sdp : '' });
    } catch (err) {
      if (this.ended) return;
      console.error('sfu: publish offer failed:', err);
      this.emit('client_error', {
        message: `Could not create the publish offer: ${err.message || err}`,
        code: 'publishOffer',
        detail: { error: String(err.message || err) },
      });
      if (iceRestart) this.iceRestartDone('publish', false);
    } finally {
      this.makingOffer = false;
    }
  }

  /** @param {any} msg */
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
    if (this.publishOfferRestarts) {
      this.publishOfferRestarts = false;
      this.iceRestartExchanged('publish');
    }
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
        this.send({ type: 'mute', track: this.wireId(sender.track), muted: true });
      }
    }
  }

  // onOffer: the server (re)negotiates the subscribe connection:
  // setRemoteDescription -> held candidates -> createAnswer -> setLocalDescription -> send answer.
  /** @param {any} msg */
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
    this.send({ type: 'answer', pc: 'subscribe', sdp: pc.localDescription ? pc.localDescription.sdp : '' });
    const st = this.ice.subscribe;
    if (st.inFlight && iceUfrag(pc.remoteDescription) !== st.ufrag) this.iceRestartExchanged('subscribe');
  }

  // rollbackPublishOffer drops a publish offer the server refused, so that the connection can offer again.
  async rollbackPublishOffer() {
    const pc = usablePC(this.publishPC);
    if (!pc || pc.signalingState !== 'have-local-offer') return;
    if (this.publishOfferRestarts) {
      this.publishOfferRestarts = false;
      this.iceRestartDone('publish', false);
    }
    try {
      await pc.setLocalDescription({ type: 'rollback' });
    } catch (err) {
      console.error('sfu: rollback of the publish offer failed:', err);
    }
  }

  /** @param {any} msg */
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

  /** @param {PCName} name */
  async flushCandidates(name) {
    const pc = this.pcs[name];
    const held = this.pendingCandidates[name];
    this.pendingCandidates[name] = [];
    if (!pc) return;
    for (const cand of held) {
      if (this.ended) return;
      await addCandidate(pc, cand);
    }
  }
}

function newIceState() {
  return {
    inFlight: false, // a restart was started and is not connected yet
    attempts: 0, // failed restarts in a row
    reason: '',
    ufrag: '', // the server's ICE ufrag when the restart started
    /** @type {any} */
    graceTimer: null, // "disconnected": restart if it lasts
    /** @type {any} */
    attemptTimer: null, // the restart in flight has failed if not connected by then
    /** @type {any} */
    retryTimer: null, // the next try after a failed one
  };
}

/** @param {IceState} st */
function clearIceTimers(st) {
  clearTimeout(st.graceTimer);
  clearTimeout(st.attemptTimer);
  clearTimeout(st.retryTimer);
  st.graceTimer = st.attemptTimer = st.retryTimer = null;
}

// iceUfrag: the ICE username fragment of a session description ('' if none).
/** @param {RTCSessionDescription | RTCSessionDescriptionInit | null} desc */
export function iceUfrag(desc) {
  const m = desc && desc.sdp ? /^a=ice-ufrag:(\S+)/m.exec(desc.sdp) : null;
  return m ? m[1] : '';
}

// usablePC: pc unless it is missing or closed.
/** @param {RTCPeerConnection | null | undefined} pc */
export function usablePC(pc) {
  return pc && pc.signalingState !== 'closed' ? pc : null;
}

// pageWsURL: the signaling WebSocket of the node that served the page.
export function pageWsURL() {
  const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
  return `${scheme}//${location.host}/ws`;
}

// signalingURL reads a WebSocket URL the server sent (redirect, joined.nodes): the URL, or '' if it is not a
// ws: or wss: URL (or ws: from an https page, which the browser would refuse).
/** @param {unknown} value */
export function signalingURL(value) {
  if (typeof value !== 'string' || !value) return '';
  let u;
  try {
    u = new URL(value, location.href);
  } catch (err) {
    return '';
  }
  if (u.protocol !== 'wss:' && u.protocol !== 'ws:') return '';
  if (u.protocol === 'ws:' && location.protocol === 'https:') return '';
  return u.href;
}

// remoteIds finds the publishing participant and the published track id of a received track: the msid of its
// m-section is "<participant id> <track id>". Browsers that ignore the msid track id (Firefox) still get it.
/**
 * @param {RTCPeerConnection} pc
 * @param {RTCTrackEvent} ev
 */
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

// simulcastEncodings: three layers for the SFU to choose from per subscriber (rid q, h, f: a quarter, half and
// full size). VP8 carries three temporal layers in each so that the SFU can also lower the frame rate.
/**
 * @param {string} codec
 * @returns {RTCRtpEncodingParameters[]}
 */
function simulcastEncodings(codec) {
  /** @type {Array<RTCRtpEncodingParameters & {scalabilityMode?: string}>} */
  const layers = [
    { rid: 'q', scaleResolutionDownBy: 4, maxBitrate: 150_000 },
    { rid: 'h', scaleResolutionDownBy: 2, maxBitrate: 500_000 },
    { rid: 'f', scaleResolutionDownBy: 1, maxBitrate: 2_500_000 },
  ];
  if (codec === 'video/VP8') {
    for (const l of layers) l.scalabilityMode = 'L1T3';
  }
  return layers;
}

// preferCodec puts the chosen video codec first in the offer, when the browser lets the page choose.
/**
 * @param {RTCRtpTransceiver} transceiver
 * @param {string} mimeType
 */
function preferCodec(transceiver, mimeType) {
  if (!transceiver.setCodecPreferences || !globalThis.RTCRtpSender || !RTCRtpSender.getCapabilities) return;
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

/**
 * @param {RTCPeerConnection} pc
 * @param {RTCIceCandidateInit} cand
 */
async function addCandidate(pc, cand) {
  try {
    await pc.addIceCandidate(cand);
  } catch (err) {
    console.error('sfu: addIceCandidate failed:', err, cand);
  }
}

// preferResolution asks the encoder to drop frames rather than resolution. Best effort: not every browser
// supports degradationPreference or accepts parameters before negotiation.
/** @param {RTCRtpSender} sender */
async function preferResolution(sender) {
  try {
    /** @type {any} */
    const params = sender.getParameters();
    if (params.degradationPreference === 'maintain-resolution') return;
    params.degradationPreference = 'maintain-resolution';
    await sender.setParameters(params);
  } catch (err) {
    // ignored on purpose
  }
}
