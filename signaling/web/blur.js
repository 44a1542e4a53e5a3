// @ts-check
// Background blur: our camera is processed in the page before it is sent. A segmentation model (MediaPipe's selfie
// segmentation, from the npm package @mediapipe/selfie_segmentation, which the node serves under
// /static/vendor/segmentation/: nothing is downloaded from anywhere else) says, frame by frame, where the person is;
// the background around them is blurred and the person drawn sharp over it, following their outline.
//
// A BlurPipeline reads the camera's frames (MediaStreamTrackProcessor), composites each on a canvas and writes it
// to a track of its own (MediaStreamTrackGenerator), which takes the camera's place in our stream, our tile and
// the publish connection (Session.replaceTrack: no new offer). Turning blur off puts the camera back. A camera
// switch (devices.js) asks cameraTrack for the track to send: with blur on, a new pipeline's. A pipeline stops
// when blur is turned off, when its output is stopped (a switch, leaving) — it then stops the camera it owned —
// or when the camera ends. The choice is remembered (localStorage); ?blur=1|0 wins over it. When the browser lacks
// what it needs or the model does not load, the camera is sent as it is, and a banner says why.

import { config } from './config.js';
import {
  BlurError, MODEL_LOAD_TIMEOUT_MS, SEG_HEIGHT, SEG_WIDTH, Segmenter, loadSegmenter, withTimeout,
} from './segmentation.js';
import { t } from './i18n.js';
import { localTrack, renderLocal } from './media.js';
import { app, expose } from './store.js';
import { playVideo } from './tiles.js';
import { $, hideBanner, showBanner } from './ui.js';

export const BLUR_STORAGE_KEY = 'sfu.blur';
// The background is blurred by halving the frame this many times (each step averages 2x2 pixels: a box filter)
// and scaling it back up smoothly: 4 halvings, a 16-pixel blur. Cheap: a canvas filter (blur()) costs a hundred
// times more in software.
const BACKGROUND_HALVINGS = 4;
// The model runs at most this often (it finds the person in one frame while the next are drawn with the mask it
// gave last): a person moves little in a tenth of a second, and the model's cost is the pipeline's largest. On a
// slow device (a software GPU) it takes at most a third of the time: it starts again no sooner than three times
// its last run after the last start, so that the frames keep their rate and the mask its freshness as it can.
const MODEL_INTERVAL_MS = 100;
const MODEL_SHARE = 3;
const STATS_FRAMES = 30; // fps and the time per frame are over the last this many frames
const STATS_EVERY = 10; // the test hook is updated every this many frames

// ---------------------------------------------------------------------------------------------------------
// The choice
// ---------------------------------------------------------------------------------------------------------

/** @returns {boolean} the choice remembered (off when none) */
export function loadBlurChoice() {
  try {
    return localStorage.getItem(BLUR_STORAGE_KEY) === '1';
  } catch (err) {
    return false; // storage disabled
  }
}

/** @param {boolean} on */
function saveBlurChoice(on) {
  try {
    localStorage.setItem(BLUR_STORAGE_KEY, on ? '1' : '0');
  } catch (err) {
    // storage may be disabled: the choice then lasts as long as the page
  }
  // An address with ?blur= would override the choice at the next reload: make it say the same.
  const params = new URLSearchParams(location.search);
  if (params.has('blur')) {
    params.set('blur', on ? '1' : '0');
    history.replaceState(null, '', `${location.pathname}?${params}${location.hash}`);
    const rejoin = $('rejoin');
    if (rejoin && !app.stopped) rejoin.href = location.href;
  }
}

/** setupBlur reads the choice (the address's, else the one remembered) and gives the test hook its functions. */
export function setupBlur() {
  app.blur.choice = config.blur !== null ? config.blur : loadBlurChoice();
  expose({ setBlur, sentVideo });
  renderBlur();
}

/**
 * rememberBlur records the choice without applying it (the pre-join screen, before there is a camera to blur).
 * @param {boolean} on
 */
export function rememberBlur(on) {
  app.blur.choice = !!on;
  saveBlurChoice(app.blur.choice);
  renderBlur();
}

/**
 * setBlur turns background blur on or off (the button, the test hook) and remembers it. Resolves to whether our
 * camera is sent blurred afterwards (false with a banner when blur cannot run; false too with no camera, the
 * choice then waiting for one). Never rejects.
 * @param {boolean} on
 * @returns {Promise<boolean>}
 */
export function setBlur(on) {
  app.blur.choice = !!on;
  saveBlurChoice(app.blur.choice);
  if (!on) {
    app.blur.error = '';
    hideBanner('blur');
  }
  renderBlur();
  return enqueue(applyBlur);
}

export function toggleBlur() {
  return setBlur(!app.blur.choice);
}

/**
 * enqueue runs fn after the changes queued before it (one swap of tracks at a time).
 * @param {() => Promise<boolean>} fn
 * @returns {Promise<boolean>}
 */
function enqueue(fn) {
  const run = app.blur.queue.then(fn, fn).catch((err) => {
    console.error('sfu: background blur:', err);
    return false;
  });
  app.blur.queue = run;
  return run;
}

// applyBlur makes the camera we send match the choice: blurred through a new pipeline, or the camera itself.
async function applyBlur() {
  const current = currentPipeline();
  const cam = localTrack('video');
  if (app.blur.choice && !current && cam && !app.stopped) {
    let pipe;
    try {
      pipe = await startPipeline(cam);
    } catch (err) {
      fallBack(err);
      return false;
    }
    if (!app.blur.choice || app.stopped || localTrack('video') !== cam) {
      pipe.stop(true); // turned off, ended or switched meanwhile
      renderBlur();
      return false;
    }
    if (!(await swapTrack(cam, pipe.track))) {
      pipe.stop(true);
      return false;
    }
  } else if (!app.blur.choice && current) {
    if (!(await swapTrack(current.track, current.source))) return true;
    current.stop(true);
  }
  renderBlur();
  return !!currentPipeline();
}

/**
 * swapTrack puts next in the place of old: on the publish connection (replaceTrack, no new offer), in our stream
 * and in our tile. Muted stays muted.
 * @param {MediaStreamTrack} old
 * @param {MediaStreamTrack} next
 * @returns {Promise<boolean>} false when the connection refused it (old stays)
 */
async function swapTrack(old, next) {
  next.enabled = old.enabled;
  next.contentHint = old.contentHint || 'detail';
  try {
    if (app.session) await app.session.replaceTrack(old, next);
  } catch (err) {
    fallBack(new BlurError('blur.failed', String((err && err.name) || err)));
    return false;
  }
  const stream = app.localStream;
  if (stream) {
    stream.removeTrack(old);
    stream.addTrack(next);
    if (app.localTile) {
      app.localTile.video.srcObject = stream;
      playVideo(app.localTile.video);
    }
  }
  renderLocal();
  return true;
}

/**
 * blurStream is the start of a page that joins with blur on: the camera of stream is replaced by a blurred one
 * before anything shows or sends it (a person who asked for blur never sends their background). Resolves to the
 * stream, with the camera as it is when blur cannot run (with a banner).
 * @param {MediaStream | null} stream
 * @returns {Promise<MediaStream | null>}
 */
export async function blurStream(stream) {
  const cam = stream ? stream.getVideoTracks()[0] : null;
  if (!stream || !cam || !app.blur.choice) return stream;
  try {
    const pipe = await startPipeline(cam);
    pipe.track.enabled = cam.enabled;
    pipe.track.contentHint = cam.contentHint || 'detail';
    stream.removeTrack(cam);
    stream.addTrack(pipe.track);
  } catch (err) {
    fallBack(err);
  }
  renderBlur();
  return stream;
}

/**
 * cameraTrack is the track to send for a new camera (devices.js, switching cameras): with blur on, the output of
 * a new pipeline that owns camera; else (or when blur cannot run) camera itself.
 * @param {MediaStreamTrack} camera
 * @returns {Promise<MediaStreamTrack>}
 */
export async function cameraTrack(camera) {
  if (!app.blur.choice || !currentPipeline()) return camera;
  try {
    const pipe = await startPipeline(camera);
    return pipe.track;
  } catch (err) {
    fallBack(err);
    return camera;
  }
}

/**
 * blurPreview blurs the pre-join screen's preview: a pipeline on a clone of camera, whose output the preview shows;
 * stop(false) ends it and the clone.
 * @param {MediaStreamTrack} camera
 * @returns {Promise<BlurPipeline>}
 */
export async function blurPreview(camera) {
  const clone = camera.clone();
  try {
    return await startPipeline(clone);
  } catch (err) {
    clone.stop();
    throw err;
  }
}

/** @returns {BlurPipeline | null} the pipeline whose output we send now */
function currentPipeline() {
  const cam = localTrack('video');
  for (const p of app.blur.pipelines) {
    if (p.track === cam) return p;
  }
  return null;
}

/**
 * fallBack: blur cannot run (err says why): the camera goes as it is, a banner says so, the button shows off.
 * @param {any} err
 */
function fallBack(err) {
  const e = err instanceof BlurError ? err : new BlurError('blur.failed', String((err && err.message) || err));
  console.error('sfu: background blur unavailable:', e.code, e.detail);
  app.blur.choice = false; // not remembered: another node or browser may have what this one lacks
  app.blur.error = e.detail ? `${e.code}: ${e.detail}` : e.code;
  showBanner('blur', t(e.code, { detail: e.detail }), { kind: 'warn' });
  renderBlur();
}

/**
 * loadModel loads the segmentation model once per page (segmentation.js). It rejects with a BlurError when the
 * browser lacks what it needs or the node has no model.
 * @returns {Promise<Segmenter>}
 */
export function loadModel() {
  if (!app.blur.model) {
    app.blur.loading = true;
    renderBlur();
    app.blur.model = loadSegmenter().finally(() => {
      app.blur.loading = false;
      renderBlur();
    });
    app.blur.model.catch(() => { app.blur.model = null; }); // the next try loads anew
  }
  return app.blur.model;
}


// ---------------------------------------------------------------------------------------------------------
// The pipeline
// ---------------------------------------------------------------------------------------------------------

/**
 * canvas2d is a 2D context of a new canvas of w x h in memory: the pipeline reads its pixels back every frame,
 * which a canvas on the GPU makes slow.
 * @param {number} w
 * @param {number} h
 * @returns {OffscreenCanvasRenderingContext2D}
 */
function canvas2d(w, h) {
  return /** @type {OffscreenCanvasRenderingContext2D} */ (new OffscreenCanvas(w, h).getContext('2d', { willReadFrequently: true }));
}

/**
 * startPipeline loads the model (once), starts blurring source and resolves once the first blurred frame is out
 * (so that the track it puts in the camera's place never stalls while the model finds the person). The pipeline
 * owns source from then on: when its output is stopped, it stops source too (turning blur off takes source back:
 * stop(true)). When it fails, source is left as it was.
 * @param {MediaStreamTrack} source the camera
 * @returns {Promise<BlurPipeline>}
 */
async function startPipeline(source) {
  const segmenter = await loadModel();
  const pipe = new BlurPipeline(source, segmenter);
  pipe.run();
  try {
    await withTimeout(pipe.ready, MODEL_LOAD_TIMEOUT_MS, 'blur.slow');
  } catch (err) {
    pipe.stop(true);
    throw err;
  }
  return pipe;
}

/** One camera's blur: its frames in, blurred frames out on track, until stop. */
export class BlurPipeline {
  /**
   * @param {MediaStreamTrack} source
   * @param {Segmenter} segmenter
   */
  constructor(source, segmenter) {
    const w = /** @type {any} */ (window);
    this.source = source;
    this.segmenter = segmenter;
    // The pipeline reads a clone, so that stopping it never ends the camera itself.
    this.input = source.clone();
    this.input.enabled = true;
    this.processor = new w.MediaStreamTrackProcessor({ track: this.input, maxBufferSize: 1 });
    /** @type {MediaStreamTrack & {writable: WritableStream}} */
    this.generator = new w.MediaStreamTrackGenerator({ kind: 'video' });
    /** @type {MediaStreamTrack} the blurred camera */
    this.track = this.generator;
    this.track.addEventListener('ended', renderLocal);
    /** @type {ReadableStreamDefaultReader<any> | null} */
    this.reader = null;
    this.stopped = false;
    this.segInput = document.createElement('canvas');
    this.segInput.width = SEG_WIDTH;
    this.segInput.height = SEG_HEIGHT;
    this.maskCtx = canvas2d(SEG_WIDTH, SEG_HEIGHT); // the last mask: alpha is the person
    this.mask = this.maskCtx.canvas;
    this.hasMask = false;
    this.maskChanged = false; // a new mask came, which fullMask does not show yet
    /** @type {OffscreenCanvasRenderingContext2D | null} the mask at the frame's size */
    this.fullMask = null;
    /** @type {Promise<void> | null} the model's work on a frame, while it runs */
    this.segRunning = null;
    /** @type {any} why the model failed (null: it did not) */
    this.segFailed = null;
    this.segStarted = 0; // when the model last started (performance.now)
    this.segTook = 0; // how long its last run took, in ms
    /** @type {OffscreenCanvasRenderingContext2D[]} the halving steps: 1/2, 1/4 ... of the frame */
    this.steps = [];
    this.outCtx = canvas2d(1, 1);
    this.output = this.outCtx.canvas;
    /** @type {ImageData | null} the frame's pixels */
    this.frameData = null;
    this.copyRGB = true; // VideoFrame.copyTo converts to RGB here (until it throws)
    this.segCtx = /** @type {CanvasRenderingContext2D} */ (this.segInput.getContext('2d', { willReadFrequently: true }));
    /** @type {number[]} when the last frames went out (performance.now) */
    this.outTimes = [];
    /** @type {number[]} how long the last frames took */
    this.costs = [];
    this.frames = 0;
    this.totalMs = 0; // processing time of all its frames
    /** @type {(v?: unknown) => void} */
    let resolve = () => {};
    /** @type {(err: unknown) => void} */
    let reject = () => {};
    /** @type {Promise<unknown>} settled by the first frame out (or the loop's end before it) */
    this.ready = new Promise((res, rej) => { resolve = res; reject = rej; });
    this.ready.catch(() => {});
    this.readyResolve = resolve;
    this.readyReject = reject;
    app.blur.pipelines.add(this);
  }

  // run is the pipeline's loop: one frame at a time, the camera's frames that come meanwhile dropped (the
  // processor keeps one), until stop, the output is stopped by another or the camera ends.
  async run() {
    const reader = this.processor.readable.getReader();
    this.reader = reader;
    const writer = this.generator.writable.getWriter();
    let failed = null;
    try {
      for (;;) {
        const { value: frame, done } = await reader.read();
        if (done || !frame) break;
        if (this.stopped || this.ended()) {
          frame.close();
          break;
        }
        if (!this.track.enabled) {
          await writer.write(frame); // muted: black goes out whatever we draw, so draw nothing
          continue;
        }
        const start = performance.now();
        let out;
        try {
          out = await this.process(frame);
        } finally {
          frame.close();
        }
        if (this.stopped || this.ended()) {
          out.close();
          break;
        }
        await writer.write(out); // the generator takes the frame (and closes it)
        this.count(start);
      }
    } catch (err) {
      failed = err;
    }
    writer.close().catch(() => {});
    this.readyReject(failed || new BlurError('blur.failed', 'the camera ended'));
    if (this.stopped) return; // stopped by its owner, who said what becomes of the camera
    if (failed && !this.ended()) {
      // A failure mid-way (a lost WebGL context...): the camera goes back as it is, never a frozen picture.
      console.error('sfu: background blur failed:', failed);
      const err = failed instanceof BlurError ? failed : new BlurError('blur.failed', String((failed && failed.message) || failed));
      enqueue(async () => {
        const sent = currentPipeline() === this && this.source.readyState === 'live' && await swapTrack(this.track, this.source);
        this.stop(sent);
        fallBack(err);
        return false;
      });
      return;
    }
    // The output was stopped by another (a camera switch, leaving) or the camera ended: the camera it replaced
    // is nobody's any more.
    this.stop(false);
  }

  /**
   * process blurs the background of one frame: the frame itself, kept where the last mask says the person is,
   * over the frame halved BACKGROUND_HALVINGS times and scaled back up. The model runs beside the frames, at most
   * every MODEL_INTERVAL_MS (or MODEL_SHARE times its last run): while it works on one frame, the next ones are drawn with the mask it gave last, so
   * the frame rate is the drawing's, not the model's; the first frame waits for a mask, so that no frame goes out
   * unblurred.
   * @param {any} frame a VideoFrame
   * @returns {Promise<any>} the blurred VideoFrame
   */
  async process(frame) {
    const w = frame.displayWidth;
    const h = frame.displayHeight;
    if (this.output.width !== w || this.output.height !== h) {
      this.output.width = w;
      this.output.height = h;
      this.frameData = new ImageData(w, h);
      this.fullMask = canvas2d(w, h);
      this.maskChanged = this.hasMask;
      this.steps = [];
      for (let i = 1; i <= BACKGROUND_HALVINGS; i++) {
        this.steps.push(canvas2d(Math.max(1, Math.round(w / 2 ** i)), Math.max(1, Math.round(h / 2 ** i))));
      }
    }
    if (this.segFailed) throw this.segFailed;
    // The frame's pixels, converted to RGB in memory (drawing the frame itself may go through the GPU, and wait
    // there behind the model), in the output canvas.
    const o = this.outCtx;
    const data = /** @type {ImageData} */ (this.frameData);
    if (this.copyRGB) {
      try {
        await frame.copyTo(data.data, { format: 'RGBA' });
      } catch (err) {
        this.copyRGB = false; // a browser that cannot convert: draw the frame instead
      }
    }
    if (this.copyRGB) {
      o.putImageData(data, 0, 0);
    } else {
      o.globalCompositeOperation = 'copy';
      o.drawImage(frame, 0, 0, w, h);
    }
    // The background: the frame halved step by step.
    /** @type {CanvasImageSource} */
    let from = this.output;
    for (const step of this.steps) {
      step.drawImage(from, 0, 0, step.canvas.width, step.canvas.height);
      from = step.canvas;
    }
    const now = performance.now();
    if (!this.segRunning && (!this.hasMask || now - this.segStarted >= Math.max(MODEL_INTERVAL_MS, MODEL_SHARE * this.segTook))) {
      this.segStarted = now;
      this.segCtx.drawImage(this.steps[0].canvas, 0, 0, SEG_WIDTH, SEG_HEIGHT);
      this.segRunning = this.segmenter.mask(this.segInput, (mask) => {
        this.maskCtx.putImageData(mask, 0, 0);
        this.hasMask = true;
        this.maskChanged = true;
      }).catch((err) => { this.segFailed = err; }).finally(() => {
        this.segRunning = null;
        this.segTook = performance.now() - now;
      });
    }
    if (!this.hasMask) await this.segRunning;
    if (this.segFailed) throw this.segFailed;
    if (this.maskChanged) {
      // The mask scaled up smoothly (a soft edge), once per mask rather than once per frame: it costs the most.
      const full = /** @type {OffscreenCanvasRenderingContext2D} */ (this.fullMask);
      full.globalCompositeOperation = 'copy';
      full.drawImage(this.mask, 0, 0, w, h);
      this.maskChanged = false;
    }
    o.globalCompositeOperation = 'destination-in';
    o.drawImage(/** @type {OffscreenCanvasRenderingContext2D} */ (this.fullMask).canvas, 0, 0); // the person only
    o.globalCompositeOperation = 'destination-over';
    o.drawImage(from, 0, 0, w, h); // the blurred frame behind
    o.globalCompositeOperation = 'source-over';
    // The frame goes out from memory: a VideoFrame of a canvas costs far more to make or to encode here.
    const pixels = o.getImageData(0, 0, w, h).data;
    const VideoFrameCtor = /** @type {any} */ (window).VideoFrame;
    return new VideoFrameCtor(pixels, { format: 'RGBX', codedWidth: w, codedHeight: h, timestamp: frame.timestamp,
      duration: frame.duration || undefined });
  }

  /** @returns {boolean} the output track was stopped (by its owner or another) */
  ended() {
    return this.track.readyState === 'ended';
  }

  /** @param {number} start when the frame came in */
  count(start) {
    const now = performance.now();
    this.frames++;
    this.outTimes.push(now);
    this.costs.push(now - start);
    this.totalMs += now - start;
    if (this.frames === 1) this.readyResolve();
    if (this.outTimes.length > STATS_FRAMES) this.outTimes.shift();
    if (this.costs.length > STATS_FRAMES) this.costs.shift();
    if (this.frames % STATS_EVERY === 0 || this.frames === 1) renderBlur();
  }

  /** @returns {{fps: number, msPerFrame: number, frames: number, totalMs: number}} */
  stats() {
    const n = this.outTimes.length;
    const span = n > 1 ? this.outTimes[n - 1] - this.outTimes[0] : 0;
    const fps = span > 0 ? ((n - 1) * 1000) / span : 0;
    const ms = this.costs.length ? this.costs.reduce((a, b) => a + b, 0) / this.costs.length : 0;
    return { fps: Math.round(fps * 10) / 10, msPerFrame: Math.round(ms * 10) / 10, frames: this.frames,
      totalMs: Math.round(this.totalMs) };
  }

  /**
   * stop ends the loop and the output track; the camera too unless keepSource.
   * @param {boolean} keepSource
   */
  stop(keepSource) {
    if (!app.blur.pipelines.has(this)) return;
    this.stopped = true;
    app.blur.pipelines.delete(this);
    if (this.reader) this.reader.cancel().catch(() => {});
    this.input.stop();
    this.track.stop();
    if (!keepSource) this.source.stop();
    renderBlur();
  }
}

// ---------------------------------------------------------------------------------------------------------
// The test hook and the button
// ---------------------------------------------------------------------------------------------------------

/** @returns {MediaStreamTrack | null} the camera track on the publish connection now: what is sent */
export function sentVideo() {
  const pc = app.session && app.session.publishPC;
  if (!pc) return null;
  const sender = pc.getSenders().find((s) => s.track && s.track.kind === 'video' && s.track !== app.screenTrack);
  return sender ? sender.track : null;
}

// renderBlur shows the state: the test hook, the meeting's button (pressed while blur is asked for), its title.
export function renderBlur() {
  const pipe = currentPipeline();
  const st = pipe ? pipe.stats() : { fps: 0, msPerFrame: 0, frames: 0, totalMs: 0 };
  expose({ blur: {
    requested: app.blur.choice,
    on: !!pipe,
    loading: app.blur.loading,
    error: app.blur.error,
    ...st,
  } });
  const btn = $('btn-blur');
  if (!btn) return;
  btn.setAttribute('aria-pressed', String(app.blur.choice));
  btn.disabled = app.stopped || (!localTrack('video') && !app.blur.choice);
  btn.dataset.loading = String(app.blur.loading);
  btn.title = t(app.blur.loading ? 'blur.titleLoading' : app.blur.choice ? 'blur.titleOn' : 'blur.titleOff');
}

/** @returns {SVGSVGElement} the button's icon: a person before a blurred background */
export function blurIcon() {
  const ns = 'http://www.w3.org/2000/svg';
  const svg = /** @type {SVGSVGElement} */ (document.createElementNS(ns, 'svg'));
  svg.setAttribute('viewBox', '0 0 24 24');
  svg.setAttribute('aria-hidden', 'true');
  svg.classList.add('icon');
  const person = document.createElementNS(ns, 'path');
  person.setAttribute('d', 'M12 6a3 3 0 1 1 0 6 3 3 0 0 1 0-6zm-6 13c0-3 2.7-5 6-5s6 2 6 5v1H6z');
  svg.append(person);
  for (const [cx, cy] of [[3, 5], [3, 10], [3, 15], [21, 5], [21, 10], [21, 15], [7, 3], [17, 3]]) {
    const dot = document.createElementNS(ns, 'circle');
    dot.setAttribute('cx', String(cx));
    dot.setAttribute('cy', String(cy));
    dot.setAttribute('r', '1.2');
    svg.append(dot);
  }
  return svg;
}

// wireBlurButton gives the meeting's button its icon and its click.
export function wireBlurButton() {
  const btn = $('btn-blur');
  if (!btn) return;
  const slot = btn.querySelector('.control-icon');
  if (slot && !slot.firstChild) slot.append(blurIcon());
  btn.addEventListener('click', () => { toggleBlur(); });
  renderBlur();
}
