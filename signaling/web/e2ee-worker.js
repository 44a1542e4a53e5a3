// @ts-check
// End-to-end encryption of media frames, in a worker: the page's RTCRtpScriptTransforms (e2ee.js) run here, one
// per sender and per receiver. The page gives the keys; this file only seals and opens frames.
//
// A sealed frame (signaling/PROTOCOL.md, "End-to-end encryption"):
//   clear header | AES-GCM ciphertext of the rest, with its 16-byte tag | IV (12) | clear length (1) | key index (1)
// The clear header is what the SFU and the receiving browser read before decrypting: a VP8 keyframe's first 10
// bytes (frame tag, start code, size), a delta frame's 3 (frame tag), an Opus frame's TOC byte. The RTP payload
// descriptor is not part of the frame: the browser writes it. The IV is the sender's SSRC (4 bytes), a random
// salt of the transform (4) and its frame counter (4): unique for every frame under one key. The additional
// authenticated data is the clear header, its length and the key index, so none of them can be changed unseen.

const IV_BYTES = 12;
const TAG_BYTES = 16;
const TRAILER_BYTES = IV_BYTES + 2;
const CLEAR_VP8_KEY = 10;
const CLEAR_VP8_DELTA = 3;
const CLEAR_OPUS = 1;
const COUNT_EVERY_MS = 1000; // how often a transform tells the page its counts

/** @type {any} */
const scope = self;

/** @type {Map<number, CryptoKey>} key index -> AES-GCM key */
const keys = new Map();
let sendIndex = -1; // the key senders seal with; -1: none yet (nothing is sent in clear)

scope.onmessage = (/** @type {MessageEvent} */ ev) => {
  const m = ev.data || {};
  if (m.type === 'key' && Number.isInteger(m.index) && m.key) keys.set(m.index & 0xff, m.key);
  if ((m.type === 'key' && m.send) || m.type === 'send') sendIndex = m.index & 0xff;
};

scope.onrtctransform = (/** @type {any} */ ev) => {
  const tr = ev.transformer;
  const o = tr.options || {};
  const counts = { id: String(o.id || ''), pid: String(o.pid || ''), kind: o.kind === 'audio' ? 'audio' : 'video',
    side: o.side === 'send' ? 'send' : 'recv', ok: 0, failed: 0, last: '', told: 0 };
  const transform = counts.side === 'send' ? sealer(counts) : unsealer(counts);
  tr.readable.pipeThrough(new TransformStream({ transform })).pipeTo(tr.writable).catch(() => {
    // the sender or receiver went away
  });
};

/**
 * report tells the page about a transform: at once when its state changes (a receiver starts or stops
 * decrypting), else once a second with its counts.
 * @param {any} c
 * @param {string} state 'ok' or 'failed'
 */
function report(c, state) {
  if (state === 'ok') c.ok++;
  else c.failed++;
  const now = Date.now();
  if (state === c.last && now - c.told < COUNT_EVERY_MS) return;
  c.last = state;
  c.told = now;
  scope.postMessage({ type: 'state', id: c.id, pid: c.pid, kind: c.kind, side: c.side, state, ok: c.ok, failed: c.failed });
}

/**
 * @param {string} kind
 * @param {any} frame
 */
function clearBytes(kind, frame) {
  if (kind === 'audio') return CLEAR_OPUS;
  return frame.type === 'key' ? CLEAR_VP8_KEY : CLEAR_VP8_DELTA;
}

/**
 * @param {Uint8Array} header
 * @param {number} index
 */
function additionalData(header, index) {
  const aad = new Uint8Array(header.length + 2);
  aad.set(header);
  aad[header.length] = header.length;
  aad[header.length + 1] = index;
  return aad;
}

/** @param {any} c */
function sealer(c) {
  let salt = crypto.getRandomValues(new Uint8Array(4));
  let counter = 0;
  return async (/** @type {any} */ frame, /** @type {TransformStreamDefaultController} */ controller) => {
    const data = new Uint8Array(frame.data);
    if (data.length === 0) {
      controller.enqueue(frame); // nothing to hide (the browser's empty frames)
      return;
    }
    const index = sendIndex;
    const key = keys.get(index);
    if (!key) {
      report(c, 'failed'); // no key yet: the frame is dropped, never sent in clear
      return;
    }
    const clear = Math.min(data.length, clearBytes(c.kind, frame));
    const iv = new Uint8Array(IV_BYTES);
    const view = new DataView(iv.buffer);
    const meta = typeof frame.getMetadata === 'function' ? frame.getMetadata() : {};
    view.setUint32(0, (meta.synchronizationSource || 0) >>> 0);
    iv.set(salt, 4);
    view.setUint32(8, counter);
    counter = (counter + 1) >>> 0;
    if (counter === 0) salt = crypto.getRandomValues(new Uint8Array(4)); // 2^32 frames: a new salt
    const header = data.subarray(0, clear);
    let sealed;
    try {
      sealed = new Uint8Array(await crypto.subtle.encrypt(
        { name: 'AES-GCM', iv, additionalData: additionalData(header, index) }, key, data.subarray(clear)));
    } catch (err) {
      report(c, 'failed');
      return;
    }
    const out = new Uint8Array(clear + sealed.length + TRAILER_BYTES);
    out.set(header);
    out.set(sealed, clear);
    out.set(iv, clear + sealed.length);
    out[out.length - 2] = clear;
    out[out.length - 1] = index;
    frame.data = out.buffer;
    controller.enqueue(frame);
    report(c, 'ok');
  };
}

/** @param {any} c */
function unsealer(c) {
  return async (/** @type {any} */ frame, /** @type {TransformStreamDefaultController} */ controller) => {
    const data = new Uint8Array(frame.data);
    if (data.length === 0) {
      controller.enqueue(frame);
      return;
    }
    const n = data.length;
    const index = data[n - 1];
    const clear = data[n - 2];
    const key = keys.get(index);
    if (!key || n < clear + TAG_BYTES + TRAILER_BYTES) {
      report(c, 'failed'); // not ours, or a key we were not given: dropped, never shown as garbage
      return;
    }
    const header = data.subarray(0, clear);
    let plain;
    try {
      plain = new Uint8Array(await crypto.subtle.decrypt(
        { name: 'AES-GCM', iv: data.subarray(n - TRAILER_BYTES, n - 2), additionalData: additionalData(header, index) },
        key, data.subarray(clear, n - TRAILER_BYTES)));
    } catch (err) {
      report(c, 'failed');
      return;
    }
    const out = new Uint8Array(clear + plain.length);
    out.set(header);
    out.set(plain, clear);
    frame.data = out.buffer;
    controller.enqueue(frame);
    report(c, 'ok');
  };
}
