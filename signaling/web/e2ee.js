// @ts-check
// End-to-end encryption of a meeting's media, without any user interface: the keys, who holds them, and the
// transforms that seal and open frames (e2ee-worker.js). The server forwards what it cannot read; the
// passphrase never leaves the page. The scheme (signaling/PROTOCOL.md, "End-to-end encryption"):
//
// - The passphrase and the room's name give, by PBKDF2 (SHA-256, 100,000 rounds, the room in the salt), a secret
//   from which HKDF derives the key of epoch 0 (AES-GCM, 128 bits) and a member key (HMAC-SHA-256).
// - Each page makes an ECDH P-256 key pair and announces its public key in join, with an HMAC of it under the
//   member key: the others know it was made by someone who knows the passphrase, and the server, which does not,
//   cannot put a key of its own in its place. A page whose passphrase differs is no member: it is given no key.
// - When a member leaves, the key leader (the members' host with the smallest id, else the member with the
//   smallest id) draws a new random secret, the next epoch, and sends it to each remaining member wrapped with
//   the ECDH secret of the two (AES-GCM) in one e2ee message. Everyone seals with the new key a second later;
//   older keys still open frames sealed before. A newcomer is sent the current epoch the same way. So one who
//   has left cannot open what is said after, even with the passphrase and a copy of the forwarded media.

const PBKDF2_ROUNDS = 100_000;
const SWITCH_AFTER_MS = 1000; // a new epoch is sealed with this long after its key went out
// A receiver whose frames do not open is given up (the page hides its video, which stops it: a decoder without
// frames would ask the sender for keyframes again and again); it is tried again this often, and whenever a key
// or a member arrives.
const RETRY_FAILED_MS = 15_000;
const LABEL = 'edge-sfu e2ee v1';

const enc = new TextEncoder();

/** @param {ArrayBuffer | Uint8Array} b */
export function b64(b) {
  const bytes = b instanceof Uint8Array ? b : new Uint8Array(b);
  let s = '';
  for (const x of bytes) s += String.fromCharCode(x);
  return btoa(s).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

/** @param {string} s */
export function unb64(s) {
  const bin = atob(String(s).replace(/-/g, '+').replace(/_/g, '/'));
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

/** available says whether this browser can run end-to-end encryption. */
export function available() {
  return typeof window !== 'undefined' && 'RTCRtpScriptTransform' in window && !!(crypto && crypto.subtle) &&
    typeof Worker === 'function';
}

/**
 * HKDF-derives a key from ikm (an HKDF CryptoKey).
 * @param {CryptoKey} ikm
 * @param {string} room
 * @param {string} info
 * @param {AesKeyGenParams | HmacImportParams} alg
 * @param {KeyUsage[]} usages
 */
function derive(ikm, room, info, alg, usages) {
  return crypto.subtle.deriveKey({ name: 'HKDF', hash: 'SHA-256', salt: enc.encode(room), info: enc.encode(`${LABEL} ${info}`) },
    ikm, alg, false, usages);
}

/** @param {BufferSource} bytes */
function hkdfKey(bytes) {
  return crypto.subtle.importKey('raw', bytes, 'HKDF', false, ['deriveKey', 'deriveBits']);
}

/**
 * @typedef {Object} Member
 * @property {CryptoKey} pub their ECDH public key
 * @property {boolean} admin
 */

/**
 * E2EE is one page's end-to-end encryption. Its events: 'state' {pid, kind, state} when a remote participant's
 * frames start or stop opening ('ok' or 'failed'); 'epoch' {epoch, sending} when a key epoch arrives or starts
 * being used; 'counts' when a transform's counts change.
 */
export class E2EE {
  /**
   * @param {string} room
   * @param {{memberKey: CryptoKey, media0: CryptoKey, ecdh: CryptoKeyPair, announcement: string}} k
   */
  constructor(room, k) {
    this.room = room;
    this.memberKey = k.memberKey;
    this.ecdh = k.ecdh;
    this.announcement = k.announcement;
    /** @type {Map<string, Array<(detail: any) => void>>} */
    this.listeners = new Map();
    /** @type {Map<string, Member>} verified members, by participant id (not us) */
    this.members = new Map();
    /** @type {Set<string>} participants whose announcement did not verify (another passphrase) or who have none */
    this.strangers = new Set();
    this.self = '';
    this.selfAdmin = false;
    this.epoch = 0; // the newest epoch we hold
    this.epochFrom = ''; // who sent it ('' for epoch 0)
    /** @type {Uint8Array | null} */
    this.secret = null; // the newest epoch's secret (null for epoch 0: the passphrase's)
    this.sending = 0; // the epoch our senders seal with
    /** @type {any} */
    this.switchTimer = null;
    /** @type {(msg: any) => void} */
    this.send = () => {};
    /** @type {Promise<unknown>} */
    this.queue = Promise.resolve(); // membership and keys change one at a time, in arrival order
    this.worker = new Worker(new URL('./e2ee-worker.js', import.meta.url));
    this.worker.onmessage = (ev) => this.fromWorker(ev.data);
    this.worker.postMessage({ type: 'key', index: 0, key: k.media0, send: true });
    /** @type {Map<string, {pid: string, kind: string, side: string, state: string, ok: number, failed: number}>} */
    this.transforms = new Map();
    this.nextId = 0;
    this.retryTimer = setInterval(() => this.retryFailed(), RETRY_FAILED_MS);
  }

  // retryFailed forgets which receivers failed to open frames: their participants' state is unknown again, so the
  // page shows (and so receives) their video once more, and the next frames decide.
  retryFailed() {
    /** @type {Set<string>} */
    const pids = new Set();
    for (const t of this.transforms.values()) {
      if (t.side === 'recv' && t.state === 'failed') {
        t.state = '';
        pids.add(t.pid);
      }
    }
    for (const pid of pids) this.emit('state', { pid, kind: '', state: '' });
  }

  /**
   * create derives the keys of passphrase for room and makes this page's key pair.
   * @param {string} passphrase
   * @param {string} room
   */
  static async create(passphrase, room) {
    const pass = await crypto.subtle.importKey('raw', enc.encode(passphrase), 'PBKDF2', false, ['deriveBits']);
    const bits = await crypto.subtle.deriveBits({ name: 'PBKDF2', hash: 'SHA-256', salt: enc.encode(`${LABEL} room:${room}`),
      iterations: PBKDF2_ROUNDS }, pass, 256);
    const base = await hkdfKey(bits);
    const media0 = await derive(base, room, 'media 0', { name: 'AES-GCM', length: 128 }, ['encrypt', 'decrypt']);
    const memberKey = await derive(base, room, 'member', { name: 'HMAC', hash: 'SHA-256', length: 256 }, ['sign', 'verify']);
    const ecdh = /** @type {CryptoKeyPair} */ (await crypto.subtle.generateKey({ name: 'ECDH', namedCurve: 'P-256' }, false, ['deriveBits']));
    const pub = b64(await crypto.subtle.exportKey('raw', ecdh.publicKey));
    const mac = b64(await crypto.subtle.sign('HMAC', memberKey, enc.encode(`${LABEL} member|${room}|${pub}`)));
    return new E2EE(room, { memberKey, media0, ecdh, announcement: `${pub}.${mac}` });
  }

  /**
   * @param {string} type
   * @param {(detail: any) => void} fn
   */
  on(type, fn) {
    this.listeners.set(type, [...(this.listeners.get(type) || []), fn]);
    return this;
  }

  /**
   * @param {string} type
   * @param {any} detail
   */
  emit(type, detail) {
    for (const fn of this.listeners.get(type) || []) fn(detail);
  }

  /** @param {() => Promise<unknown> | void} op */
  enqueue(op) {
    this.queue = this.queue.then(op).catch((err) => console.error('sfu: e2ee:', err));
    return this.queue;
  }

  // ---- frames ----

  /**
   * @param {RTCRtpSender} sender
   * @param {string} kind
   */
  sender(sender, kind) {
    const id = `send-${++this.nextId}`;
    /** @type {any} */ (sender).transform = new (/** @type {any} */ (window)).RTCRtpScriptTransform(this.worker, { side: 'send', kind, id });
  }

  /**
   * @param {RTCRtpReceiver} receiver
   * @param {string} kind
   * @param {string} pid
   * @param {string} trackId
   */
  receiver(receiver, kind, pid, trackId) {
    const id = `recv-${++this.nextId}-${trackId}`;
    /** @type {any} */ (receiver).transform = new (/** @type {any} */ (window)).RTCRtpScriptTransform(this.worker, { side: 'recv', kind, id, pid });
  }

  /** @param {any} m */
  fromWorker(m) {
    if (!m) return;
    if (m.type !== 'state') return;
    const before = this.transforms.get(m.id);
    this.transforms.set(m.id, { pid: m.pid, kind: m.kind, side: m.side, state: m.state, ok: m.ok, failed: m.failed });
    if (m.side === 'recv' && (!before || before.state !== m.state)) this.emit('state', { pid: m.pid, kind: m.kind, state: m.state });
    else this.emit('counts', {});
  }

  /**
   * participantState is how a remote participant's frames open: 'ok', 'failed' (video failing counts first, as
   * that is what a person sees), or '' before any frame.
   * @param {string} pid
   */
  participantState(pid) {
    let audio = '';
    let video = '';
    for (const t of this.transforms.values()) {
      if (t.side !== 'recv' || t.pid !== pid) continue;
      if (t.kind === 'video') video = video === 'failed' ? video : t.state;
      else audio = audio === 'failed' ? audio : t.state;
    }
    return video || audio;
  }

  // ---- members and keys ----

  /**
   * joined starts a session's view: we are you, and the others are there.
   * @param {{id: string, admin?: boolean}} you
   * @param {Array<{id: string, admin?: boolean, e2ee?: string}>} others
   * @param {(msg: any) => void} send sends a message on the session
   */
  joined(you, others, send) {
    return this.enqueue(async () => {
      this.self = you.id;
      this.selfAdmin = !!you.admin;
      this.send = send;
      this.members.clear();
      this.strangers.clear();
      for (const p of others) await this.verify(p);
    });
  }

  /** @param {{id: string, admin?: boolean, e2ee?: string}} p */
  added(p) {
    return this.enqueue(async () => {
      if (!p || !p.id || p.id === this.self) return;
      if (await this.verify(p)) await this.welcome(p.id);
    });
  }

  /** @param {{id: string, admin?: boolean}} p */
  updated(p) {
    return this.enqueue(() => {
      if (!p || !p.id) return;
      if (p.id === this.self) this.selfAdmin = !!p.admin;
      const m = this.members.get(p.id);
      if (m) m.admin = !!p.admin;
    });
  }

  /** @param {string} pid */
  removed(pid) {
    return this.enqueue(async () => {
      this.strangers.delete(pid);
      if (!this.members.delete(pid)) return; // a stranger knew no key: nothing to hide from them
      if (this.leader() === this.self) await this.rotate();
    });
  }

  /** @param {{from: string, data: string}} msg */
  message(msg) {
    return this.enqueue(() => this.receiveKey(msg));
  }

  // verify checks p's announcement: true makes p a member.
  /** @param {{id: string, admin?: boolean, e2ee?: string}} p */
  async verify(p) {
    const [pub, mac] = String(p.e2ee || '').split('.');
    let ok = false;
    try {
      ok = !!pub && !!mac && await crypto.subtle.verify('HMAC', this.memberKey, unb64(mac),
        enc.encode(`${LABEL} member|${this.room}|${pub}`));
      if (ok) {
        const key = await crypto.subtle.importKey('raw', unb64(pub), { name: 'ECDH', namedCurve: 'P-256' }, false, []);
        this.members.set(p.id, { pub: key, admin: !!p.admin });
        this.retryFailed();
      }
    } catch (err) {
      ok = false;
    }
    if (!ok) this.strangers.add(p.id);
    return ok;
  }

  // leader is who sends new keys: the members' host with the smallest id, else the member with the smallest id
  // (we count among the members).
  leader() {
    const all = [...this.members.entries()].map(([id, m]) => ({ id, admin: m.admin }));
    all.push({ id: this.self, admin: this.selfAdmin });
    const hosts = all.filter((m) => m.admin);
    return (hosts.length ? hosts : all).map((m) => m.id).sort()[0];
  }

  // rotate starts a new epoch for the members there are now (we lead).
  async rotate() {
    const secret = crypto.getRandomValues(new Uint8Array(32));
    const epoch = this.epoch + 1;
    await this.install(epoch, this.self, secret, false);
    if (this.members.size) await this.sendKey(epoch, secret, [...this.members.keys()], false);
  }

  // welcome sends a newcomer the current epoch, if we lead and it is not the passphrase's.
  /** @param {string} pid */
  async welcome(pid) {
    if (this.leader() !== this.self || !this.secret || this.epoch === 0) return;
    await this.sendKey(this.epoch, this.secret, [pid], true);
  }

  /**
   * wrapKey is the AES-GCM key that wraps epoch secrets between us and a member (the ECDH secret of the two).
   * @param {CryptoKey} pub
   */
  async wrapKey(pub) {
    const bits = await crypto.subtle.deriveBits({ name: 'ECDH', public: pub }, this.ecdh.privateKey, 256);
    return derive(await hkdfKey(bits), this.room, 'wrap', { name: 'AES-GCM', length: 256 }, ['encrypt', 'decrypt']);
  }

  /**
   * @param {number} epoch
   * @param {Uint8Array} secret
   * @param {string[]} to member ids
   * @param {boolean} welcome the current epoch for a newcomer, who seals with it at once
   */
  async sendKey(epoch, secret, to, welcome) {
    /** @type {Record<string, string>} */
    const keys = {};
    for (const pid of to) {
      const m = this.members.get(pid);
      if (!m) continue;
      const iv = crypto.getRandomValues(new Uint8Array(12));
      const wrapped = await crypto.subtle.encrypt({ name: 'AES-GCM', iv, additionalData: enc.encode(`${epoch}|${this.self}|${pid}`) },
        await this.wrapKey(m.pub), /** @type {BufferSource} */ (secret));
      keys[pid] = `${b64(iv)}.${b64(wrapped)}`;
    }
    const data = JSON.stringify({ v: 1, kind: 'key', epoch, welcome, keys });
    this.send(welcome ? { type: 'e2ee', to: to[0], data } : { type: 'e2ee', data });
  }

  /** @param {{from: string, data: string}} msg */
  async receiveKey(msg) {
    let m;
    try {
      m = JSON.parse(msg.data);
    } catch (err) {
      return;
    }
    if (!m || m.kind !== 'key' || !Number.isInteger(m.epoch) || m.epoch < 1 || !m.keys) return;
    const from = this.members.get(msg.from);
    const mine = m.keys[this.self];
    if (!from || typeof mine !== 'string') return; // not from a member, or not for us
    // The newest epoch wins; two leaders at once (a view that differed for a moment) agree on the smaller id.
    if (m.epoch < this.epoch || (m.epoch === this.epoch && this.epochFrom && msg.from >= this.epochFrom)) return;
    const [iv, wrapped] = mine.split('.');
    let secret;
    try {
      secret = new Uint8Array(await crypto.subtle.decrypt({ name: 'AES-GCM', iv: unb64(iv),
        additionalData: enc.encode(`${m.epoch}|${msg.from}|${this.self}`) }, await this.wrapKey(from.pub), unb64(wrapped)));
    } catch (err) {
      console.error('sfu: e2ee: a key message that does not open; ignored');
      return;
    }
    await this.install(m.epoch, msg.from, secret, m.welcome === true);
  }

  /**
   * install gives the worker epoch's key, and seals with it a moment later: when every member has it too. A
   * newcomer's welcome is used at once (everyone else has that key already).
   * @param {number} epoch
   * @param {string} from
   * @param {Uint8Array} secret
   * @param {boolean} now
   */
  async install(epoch, from, secret, now) {
    const key = await derive(await hkdfKey(/** @type {BufferSource} */ (secret)), this.room, 'media', { name: 'AES-GCM', length: 128 }, ['encrypt', 'decrypt']);
    this.epoch = epoch;
    this.epochFrom = from;
    this.secret = secret;
    this.worker.postMessage({ type: 'key', index: epoch & 0xff, key });
    this.emit('epoch', { epoch, sending: this.sending });
    this.retryFailed();
    clearTimeout(this.switchTimer);
    const use = () => {
      this.sending = epoch;
      this.worker.postMessage({ type: 'send', index: epoch & 0xff });
      this.emit('epoch', { epoch, sending: epoch });
    };
    if (now) use();
    else this.switchTimer = setTimeout(use, SWITCH_AFTER_MS);
  }

  close() {
    clearTimeout(this.switchTimer);
    clearInterval(this.retryTimer);
    this.worker.terminate();
  }
}
