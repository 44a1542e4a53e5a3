// @ts-check
// The segmentation model of the background blur (blur.js): MediaPipe's selfie segmentation, from the npm package
// @mediapipe/selfie_segmentation, which the node serves under /static/vendor/segmentation/ (nothing is downloaded
// from anywhere else). A Segmenter says where the person is in a frame: a mask whose alpha is the person.

import { t } from './i18n.js';

export const MODEL_BASE = '/static/vendor/segmentation/';
const MODEL_SCRIPT = 'selfie_segmentation.js';
export const MODEL_LOAD_TIMEOUT_MS = 30000; // the model loads in a second or two (on a busy machine, ten); past this blur gives up
export const SEG_WIDTH = 256; // the landscape model's input: the frame is scaled down to it
export const SEG_HEIGHT = 144;

/**
 * The legacy MediaPipe solution's interface (selfie_segmentation.js, a classic script: window.SelfieSegmentation).
 * @typedef {{
 *   setOptions(o: {modelSelection?: number, selfieMode?: boolean}): void,
 *   onResults(fn: (r: {segmentationMask: CanvasImageSource}) => void): void,
 *   initialize(): Promise<void>,
 *   send(i: {image: HTMLCanvasElement}): Promise<void>,
 *   close(): Promise<void>,
 * }} Solution
 */

/** Why blur cannot run: code is the catalogue key of the message, detail what it names. */
export class BlurError extends Error {
  /** @param {string} code @param {string} [detail] */
  constructor(code, detail = '') {
    super(detail || code);
    this.code = code;
    this.detail = detail;
  }
}

/** @returns {string} '' when this browser has what blur needs, else what it lacks */
export function missingSupport() {
  const w = /** @type {any} */ (window);
  if (typeof WebAssembly !== 'object') return 'WebAssembly';
  if (typeof w.MediaStreamTrackProcessor !== 'function' || typeof w.MediaStreamTrackGenerator !== 'function' ||
    typeof w.VideoFrame !== 'function') {
    return 'MediaStreamTrackProcessor';
  }
  const probe = document.createElement('canvas');
  if (!probe.getContext('webgl2') && !probe.getContext('webgl')) return 'WebGL';
  return '';
}

/**
 * loadScript adds a classic script of this node's to the page and resolves once it ran.
 * @param {string} src
 * @returns {Promise<void>}
 */
function loadScript(src) {
  return new Promise((resolve, reject) => {
    const el = document.createElement('script');
    el.src = src;
    el.async = true;
    el.onload = () => resolve();
    el.onerror = () => reject(new BlurError('blur.noModel'));
    document.head.append(el);
  });
}

/**
 * withTimeout rejects with a timeout error when p has not settled after ms (why: the catalogue key of what took
 * too long).
 * @template T
 * @param {Promise<T>} p
 * @param {number} ms
 * @param {string} why
 * @returns {Promise<T>}
 */
export function withTimeout(p, ms, why) {
  /** @type {any} */
  let timer;
  const late = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new BlurError('blur.failed', t(why))), ms);
  });
  return /** @type {Promise<T>} */ (Promise.race([p, late]).finally(() => clearTimeout(timer)));
}

/**
 * MaskReader brings the model's mask (a picture on the GPU) into memory without stalling the page: it copies it
 * into a texture of its own WebGL context, asks for its pixels into a buffer, and waits for a fence by polling
 * instead of blocking until the GPU is done (a plain readback of the mask waits for the whole inference there: a
 * third of a second with a software GPU, during which no frame moves).
 */
class MaskReader {
  constructor() {
    const canvas = new OffscreenCanvas(SEG_WIDTH, SEG_HEIGHT);
    const gl = /** @type {WebGL2RenderingContext | null} */ (canvas.getContext('webgl2'));
    if (!gl) throw new BlurError('blur.unsupported', 'WebGL2');
    this.gl = gl;
    this.texture = gl.createTexture();
    gl.bindTexture(gl.TEXTURE_2D, this.texture);
    gl.texParameteri(gl.TEXTURE_2D, gl.TEXTURE_MIN_FILTER, gl.NEAREST);
    gl.texParameteri(gl.TEXTURE_2D, gl.TEXTURE_MAG_FILTER, gl.NEAREST);
    gl.texImage2D(gl.TEXTURE_2D, 0, gl.RGBA, SEG_WIDTH, SEG_HEIGHT, 0, gl.RGBA, gl.UNSIGNED_BYTE, null);
    this.framebuffer = gl.createFramebuffer();
    this.buffer = gl.createBuffer();
    gl.bindBuffer(gl.PIXEL_PACK_BUFFER, this.buffer);
    gl.bufferData(gl.PIXEL_PACK_BUFFER, SEG_WIDTH * SEG_HEIGHT * 4, gl.STREAM_READ);
    gl.bindBuffer(gl.PIXEL_PACK_BUFFER, null);
    this.pixels = new Uint8Array(SEG_WIDTH * SEG_HEIGHT * 4);
  }

  /**
   * read resolves to the mask's pixels (RGBA, top row first) once the GPU has them.
   * @param {TexImageSource} mask
   * @returns {Promise<Uint8Array>}
   */
  async read(mask) {
    const gl = this.gl;
    gl.bindTexture(gl.TEXTURE_2D, this.texture);
    gl.pixelStorei(gl.UNPACK_PREMULTIPLY_ALPHA_WEBGL, false);
    gl.texSubImage2D(gl.TEXTURE_2D, 0, 0, 0, gl.RGBA, gl.UNSIGNED_BYTE, mask);
    gl.bindFramebuffer(gl.FRAMEBUFFER, this.framebuffer);
    gl.framebufferTexture2D(gl.FRAMEBUFFER, gl.COLOR_ATTACHMENT0, gl.TEXTURE_2D, this.texture, 0);
    gl.bindBuffer(gl.PIXEL_PACK_BUFFER, this.buffer);
    gl.readPixels(0, 0, SEG_WIDTH, SEG_HEIGHT, gl.RGBA, gl.UNSIGNED_BYTE, 0);
    const fence = gl.fenceSync(gl.SYNC_GPU_COMMANDS_COMPLETE, 0);
    gl.bindBuffer(gl.PIXEL_PACK_BUFFER, null);
    gl.flush();
    if (!fence) throw new BlurError('blur.failed', 'fence');
    try {
      const deadline = performance.now() + MODEL_LOAD_TIMEOUT_MS;
      for (;;) {
        const status = gl.clientWaitSync(fence, 0, 0);
        if (status === gl.ALREADY_SIGNALED || status === gl.CONDITION_SATISFIED) break;
        if (status === gl.WAIT_FAILED || performance.now() > deadline) throw new BlurError('blur.failed', 'GPU');
        await new Promise((resolve) => setTimeout(resolve, 4));
      }
    } finally {
      gl.deleteSync(fence);
    }
    gl.bindBuffer(gl.PIXEL_PACK_BUFFER, this.buffer);
    gl.getBufferSubData(gl.PIXEL_PACK_BUFFER, 0, this.pixels);
    gl.bindBuffer(gl.PIXEL_PACK_BUFFER, null);
    return this.pixels;
  }
}

/**
 * Segmenter runs the model: mask(input) is where the person is in input, as ImageData whose alpha is the person.
 * One per page: the solution allows one instance at a time, so frames from several pipelines take turns.
 */
export class Segmenter {
  /** @param {Solution} solution */
  constructor(solution) {
    this.solution = solution;
    this.reader = new MaskReader();
    /** @type {TexImageSource | null} */
    this.latest = null;
    /** @type {Promise<unknown>} */
    this.turn = Promise.resolve();
    this.out = new ImageData(SEG_WIDTH, SEG_HEIGHT);
    solution.onResults((r) => { this.latest = /** @type {TexImageSource} */ (r.segmentationMask); });
  }

  /**
   * @param {HTMLCanvasElement} input
   * @param {(mask: ImageData) => void} use called with the mask before another frame's turn
   * @returns {Promise<void>}
   */
  mask(input, use) {
    const run = this.turn.then(async () => {
      this.latest = null;
      await this.solution.send({ image: input });
      if (!this.latest) throw new BlurError('blur.failed', 'no mask');
      const px = await this.reader.read(this.latest);
      // The model's confidence is in the red channel: it becomes the alpha of a white picture.
      const d = this.out.data;
      for (let i = 0; i < d.length; i += 4) {
        d[i] = 255;
        d[i + 1] = 255;
        d[i + 2] = 255;
        d[i + 3] = px[i];
      }
      use(this.out);
    });
    this.turn = run.catch(() => {});
    return run;
  }
}

/**
 * loadSegmenter loads the model (the script, its WebAssembly and the model, all from this node). It rejects with a
 * BlurError when the browser lacks what it needs or the node has no model.
 * @returns {Promise<Segmenter>}
 */
export async function loadSegmenter() {
  const missing = missingSupport();
  if (missing) throw new BlurError('blur.unsupported', missing);
  const w = /** @type {any} */ (window);
  if (typeof w.SelfieSegmentation !== 'function') await loadScript(MODEL_BASE + MODEL_SCRIPT);
  if (typeof w.SelfieSegmentation !== 'function') throw new BlurError('blur.noModel');
  /** @type {Solution} */
  const solution = new w.SelfieSegmentation({ locateFile: (/** @type {string} */ file) => MODEL_BASE + file });
  solution.setOptions({ modelSelection: 1 }); // the landscape model (256x144): video is wider than tall
  try {
    await withTimeout(solution.initialize(), MODEL_LOAD_TIMEOUT_MS, 'blur.timeout');
  } catch (err) {
    solution.close().catch(() => {});
    throw err instanceof BlurError ? err : new BlurError('blur.failed', String((err && err.message) || err));
  }
  return new Segmenter(solution);
}
