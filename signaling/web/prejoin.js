// @ts-check
// The pre-join screen: shown when the meeting page opens, before joining. A preview of the camera, a live
// microphone level (Web Audio AnalyserNode), the camera, microphone and speaker to use, the name, and whether to
// join with the camera or the microphone off. Join remembers the choices (devices.js) and hands them to main.js,
// which starts the meeting with them. ?prejoin=0 (and ?publish=0: nothing to preview) skips the screen.

import { blurPreview, loadModel, rememberBlur } from './blur.js';
import { BlurError } from './segmentation.js';
import { config } from './config.js';
import {
  fillSelect, listDevices, loadChoices, saveChoices, setSpeaker, sinkSupported, trackDevice,
} from './devices.js';
import { t } from './i18n.js';
import { audioConstraints, describeMediaError, videoConstraints } from './media.js';
import { app, expose, hook } from './store.js';

/**
 * What the page joins with.
 * @typedef {{name: string, camera: string, microphone: string, speaker: string, camOff: boolean, micOff: boolean}} JoinChoice
 */

const LEVEL_INTERVAL_MS = 100; // the meter's refresh
const MAX_NAME_LENGTH = 64;

/** @param {string} id @returns {any} */
const byId = (id) => document.getElementById(id);

/** @param {Partial<{shown: boolean, skipped: boolean, joined: boolean, level: number, peak: number, blurred: boolean}>} patch */
function exposePrejoin(patch) {
  expose({ prejoin: { ...hook.prejoin, ...patch } });
}

/**
 * runPrejoin shows the pre-join screen and resolves once Join is pressed, with what was chosen. Skipped
 * (config.prejoin false), it resolves at once with the remembered devices, the address's name, camera and
 * microphone on.
 * @returns {Promise<JoinChoice>}
 */
export function runPrejoin() {
  const kept = loadChoices();
  if (!config.prejoin) {
    exposePrejoin({ skipped: true, joined: true });
    return Promise.resolve({ ...kept, name: config.name, camOff: false, micOff: false });
  }
  return new PrejoinScreen(kept).done;
}

class PrejoinScreen {
  /** @param {import('./devices.js').Choices} kept */
  constructor(kept) {
    this.kept = kept;
    /** @type {MediaStream} */
    this.stream = new MediaStream();
    /** @type {AudioContext | null} */
    this.audioCtx = null;
    /** @type {AnalyserNode | null} */
    this.analyser = null;
    /** @type {MediaStreamAudioSourceNode | null} */
    this.source = null;
    /** @type {any} */
    this.levelTimer = null;
    this.closed = false;
    this.starting = true; // the camera and microphone are being asked for
    this.peak = 0;
    /** @type {(c: JoinChoice) => void} */
    this.resolve = () => {};
    /** @type {Promise<JoinChoice>} */
    this.done = new Promise((resolve) => { this.resolve = resolve; });

    this.section = byId('prejoin');
    this.video = /** @type {HTMLVideoElement} */ (byId('prejoin-video'));
    this.camSelect = /** @type {HTMLSelectElement} */ (byId('prejoin-camera'));
    this.micSelect = /** @type {HTMLSelectElement} */ (byId('prejoin-mic'));
    this.speakerSelect = /** @type {HTMLSelectElement} */ (byId('prejoin-speaker'));
    this.nameInput = /** @type {HTMLInputElement} */ (byId('prejoin-name'));
    this.camOff = /** @type {HTMLInputElement} */ (byId('prejoin-cam-off'));
    this.micOff = /** @type {HTMLInputElement} */ (byId('prejoin-mic-off'));
    this.meter = /** @type {HTMLMeterElement} */ (byId('prejoin-level'));

    // The name: the address's (?name=), else the one used last time; empty, the address's generated one is used.
    this.nameInput.maxLength = MAX_NAME_LENGTH;
    this.nameInput.placeholder = config.name;
    this.nameInput.value = config.nameGiven ? config.name : kept.name;
    this.camOff.checked = kept.camOff;
    this.micOff.checked = kept.micOff;
    byId('prejoin-speaker-field').hidden = !sinkSupported();
    byId('prejoin-room').textContent = config.room;

    document.body.dataset.phase = 'prejoin';
    this.section.hidden = false;
    exposePrejoin({ shown: true, joined: false, level: 0, peak: 0 });
    this.renderCamOff();

    byId('prejoin-form').addEventListener('submit', (/** @type {Event} */ ev) => {
      ev.preventDefault();
      this.join();
    });
    this.camSelect.addEventListener('change', () => this.startTrack('video', this.camSelect.value));
    this.micSelect.addEventListener('change', () => this.startTrack('audio', this.micSelect.value));
    this.speakerSelect.addEventListener('change', () => setSpeaker(this.speakerSelect.value));
    this.camOff.addEventListener('change', () => this.renderCamOff());
    // Background blur (blur.js): the choice is remembered at once; turned on, the model loads now, so that a
    // browser or node that cannot blur says so before joining.
    this.blur = /** @type {HTMLInputElement} */ (byId('prejoin-blur'));
    this.blur.checked = app.blur.choice;
    /** @type {import('./blur.js').BlurPipeline | null} the preview's blur, while it runs */
    this.previewBlur = null;
    this.previewSeq = 0;
    this.blur.addEventListener('change', () => {
      rememberBlur(this.blur.checked);
      this.checkBlur();
      this.showPreview();
    });
    this.checkBlur();
    // A browser may start the AudioContext suspended until the page is used.
    const resume = () => this.audioCtx && this.audioCtx.resume().catch(() => {});
    this.section.addEventListener('pointerdown', resume);
    this.section.addEventListener('keydown', resume);
    this.onDeviceChange = () => this.refreshDevices();
    if (navigator.mediaDevices && navigator.mediaDevices.addEventListener) {
      navigator.mediaDevices.addEventListener('devicechange', this.onDeviceChange);
    }
    this.start();
    this.nameInput.focus();
  }

  // start asks for the camera and microphone chosen last time, then lists the devices (with labels now that
  // the page may use them).
  async start() {
    const md = navigator.mediaDevices;
    if (!md || !md.getUserMedia) {
      this.showError(t('prejoin.noMedia'));
    } else {
      try {
        const got = await md.getUserMedia({
          audio: audioConstraints(this.kept.microphone),
          video: videoConstraints(this.kept.camera),
        });
        if (this.closed) {
          for (const tr of got.getTracks()) tr.stop();
          return;
        }
        for (const tr of got.getTracks()) this.setTrack(tr);
      } catch (err) {
        console.error('sfu: pre-join getUserMedia failed:', err);
        // Try each alone: a missing camera should not take the microphone with it.
        await this.startTrack('audio', this.kept.microphone, true);
        await this.startTrack('video', this.kept.camera, true);
        if (!this.stream.getTracks().length) this.showError(describeMediaError(err, 'media.both'));
      }
    }
    this.starting = false;
    this.renderCamOff();
    await this.refreshDevices();
    if (this.kept.speaker && sinkSupported()) setSpeaker(this.speakerSelect.value);
  }

  async refreshDevices() {
    if (this.closed) return;
    const devices = await listDevices();
    const cam = this.stream.getVideoTracks()[0];
    const mic = this.stream.getAudioTracks()[0];
    fillSelect(this.camSelect, devices, 'videoinput', trackDevice(cam) || this.kept.camera);
    fillSelect(this.micSelect, devices, 'audioinput', trackDevice(mic) || this.kept.microphone);
    fillSelect(this.speakerSelect, devices, 'audiooutput', this.speakerSelect.value || this.kept.speaker);
  }

  /**
   * startTrack puts a new track of kind from deviceId in the preview (and the meter).
   * @param {'audio' | 'video'} kind
   * @param {string} deviceId
   * @param {boolean} [quiet] no message on failure
   */
  async startTrack(kind, deviceId, quiet = false) {
    try {
      const got = await navigator.mediaDevices.getUserMedia(kind === 'video'
        ? { video: videoConstraints(deviceId, !quiet && !!deviceId) }
        : { audio: audioConstraints(deviceId, !quiet && !!deviceId) });
      const track = got.getTracks()[0];
      if (this.closed) {
        if (track) track.stop();
        return;
      }
      if (track) this.setTrack(track);
      byId('prejoin-error').hidden = true;
    } catch (err) {
      console.error(`sfu: pre-join ${kind} failed:`, err);
      if (!quiet) this.showError(describeMediaError(err, kind === 'video' ? 'media.camera' : 'media.microphone'));
    }
  }

  /** @param {MediaStreamTrack} track the preview's track of its kind from now on */
  setTrack(track) {
    for (const old of this.stream.getTracks()) {
      if (old.kind === track.kind) {
        this.stream.removeTrack(old);
        old.stop();
      }
    }
    this.stream.addTrack(track);
    if (track.kind === 'video') {
      this.showPreview();
    } else {
      this.startMeter(track);
    }
    this.renderCamOff();
  }

  /** @param {MediaStreamTrack} track the microphone to measure */
  startMeter(track) {
    const Ctx = window.AudioContext || /** @type {any} */ (window).webkitAudioContext;
    if (!Ctx) return;
    if (!this.audioCtx) this.audioCtx = new Ctx();
    const ctx = /** @type {AudioContext} */ (this.audioCtx);
    if (this.source) this.source.disconnect();
    this.source = ctx.createMediaStreamSource(new MediaStream([track]));
    if (!this.analyser) {
      this.analyser = ctx.createAnalyser();
      this.analyser.fftSize = 1024;
    }
    this.source.connect(this.analyser); // not to the destination: we do not play our own microphone
    ctx.resume().catch(() => {});
    if (!this.levelTimer) this.levelTimer = setInterval(() => this.measure(), LEVEL_INTERVAL_MS);
  }

  // measure reads the microphone's level now (RMS of the last samples, scaled so that speech fills the meter).
  measure() {
    if (!this.analyser) return;
    const samples = new Float32Array(this.analyser.fftSize);
    this.analyser.getFloatTimeDomainData(samples);
    let sum = 0;
    for (const v of samples) sum += v * v;
    const level = Math.min(1, Math.sqrt(sum / samples.length) * 4);
    this.peak = Math.max(this.peak, level);
    this.meter.value = level;
    exposePrejoin({ level, peak: this.peak });
  }

  renderCamOff() {
    const hasCam = this.stream.getVideoTracks().length > 0;
    const off = this.camOff.checked || !hasCam;
    for (const tr of this.stream.getVideoTracks()) tr.enabled = !this.camOff.checked;
    this.video.hidden = off;
    const note = byId('prejoin-nocam');
    note.hidden = !off;
    note.textContent = t(hasCam ? 'prejoin.cameraOff' : this.starting ? 'prejoin.starting' : 'prejoin.noCamera');
  }

  // showPreview shows the camera in the preview: as it is at once, then blurred (a pipeline of its own, on a clone
  // of the camera) while the blur box is ticked and blur can run here.
  async showPreview() {
    const seq = ++this.previewSeq;
    if (this.previewBlur) {
      this.previewBlur.stop(false);
      this.previewBlur = null;
    }
    this.video.srcObject = this.stream;
    this.video.play().catch(() => {});
    exposePrejoin({ blurred: false });
    const cam = this.stream.getVideoTracks()[0];
    if (!cam || !this.blur.checked || this.closed) return;
    let pipe;
    try {
      pipe = await blurPreview(cam);
    } catch (err) {
      return; // checkBlur says why
    }
    if (seq !== this.previewSeq || this.closed) {
      pipe.stop(false);
      return;
    }
    this.previewBlur = pipe;
    this.video.srcObject = new MediaStream([pipe.track]);
    this.video.play().catch(() => {});
    exposePrejoin({ blurred: true });
  }

  // checkBlur loads the blur model when blur is chosen, and says under the box why blur cannot run here.
  checkBlur() {
    const note = byId('prejoin-blur-note');
    note.hidden = true;
    if (!this.blur.checked) return;
    loadModel().catch((/** @type {any} */ err) => {
      if (this.closed || !this.blur.checked) return;
      const e = err instanceof BlurError ? err : new BlurError('blur.failed', String(err && err.message));
      note.textContent = t(e.code, { detail: e.detail });
      note.hidden = false;
    });
  }

  /** @param {string} text */
  showError(text) {
    const el = byId('prejoin-error');
    el.textContent = t('prejoin.mediaError', { reason: text });
    el.hidden = false;
  }

  join() {
    if (this.closed) return;
    this.closed = true;
    const name = this.nameInput.value.trim().slice(0, MAX_NAME_LENGTH);
    /** @type {JoinChoice} */
    const choice = {
      name: name || config.name,
      camera: this.camSelect.value || trackDevice(this.stream.getVideoTracks()[0]),
      microphone: this.micSelect.value || trackDevice(this.stream.getAudioTracks()[0]),
      speaker: sinkSupported() ? this.speakerSelect.value : '',
      camOff: this.camOff.checked,
      micOff: this.micOff.checked,
    };
    saveChoices({ ...choice, name });
    // The meeting asks for the devices again (startMedia): free them first.
    clearInterval(this.levelTimer);
    if (this.source) this.source.disconnect();
    if (this.audioCtx) this.audioCtx.close().catch(() => {});
    this.previewSeq++;
    if (this.previewBlur) this.previewBlur.stop(false);
    this.previewBlur = null;
    for (const tr of this.stream.getTracks()) tr.stop();
    this.video.srcObject = null;
    if (navigator.mediaDevices && navigator.mediaDevices.removeEventListener) {
      navigator.mediaDevices.removeEventListener('devicechange', this.onDeviceChange);
    }
    this.section.hidden = true;
    delete document.body.dataset.phase;
    exposePrejoin({ shown: false, joined: true, level: 0 });
    this.resolve(choice);
  }
}

/**
 * useName makes name (chosen on the pre-join screen) the one the page joins with, and keeps it in the address
 * (?name=) for reloads and "Rejoin".
 * @param {string} name
 */
export function useName(name) {
  if (!name || name === config.name) return;
  config.name = name;
  app.localName = name;
  const params = new URLSearchParams(location.search);
  params.set('name', name);
  history.replaceState(null, '', `${location.pathname}?${params}${location.hash}`);
}
