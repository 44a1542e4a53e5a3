// @ts-check
// Status line, participant count, banners and error toasts.

import { MAX_ERROR_TOASTS } from './config.js';
import { t } from './i18n.js';
import { updateLayout } from './layout.js';
import { app, set } from './store.js';

// $ is the element with that id (any: each caller knows what it is).
export const $ = /** @type {(id: string) => any} */ ((id) => document.getElementById(id));

// ---------------------------------------------------------------------------------------------------------
// Status line, banners and toasts
// ---------------------------------------------------------------------------------------------------------

// The catalogue key of each state's label (i18n.js).
export const STATE_LABELS = {
  connecting: 'status.connecting',
  joined: 'status.joined',
  reconnecting: 'status.reconnecting',
  left: 'status.left',
  error: 'status.error',
};

export function setState(state) {
  set({ state });
  document.body.dataset.state = state;
  $('status-text').textContent = STATE_LABELS[state] ? t(STATE_LABELS[state]) : state;
  updateCount();
}

export function updateCount() {
  const n = app.participants.size + 1;
  $('participant-count').textContent = t(n === 1 ? 'count.one' : 'count.other', { n });
  updateLayout();
}

// showBanner shows (or replaces) the banner named key. kind: 'info' | 'warn' | 'error'.
export function showBanner(key, text, { kind = 'info', dismissable = true, action = null } = {}) {
  let el = /** @type {HTMLElement | null} */ (document.querySelector(`.banner[data-key="${CSS.escape(key)}"]`));
  if (!el) {
    el = document.createElement('div');
    el.dataset.key = key;
    $('banners').append(el);
  }
  el.className = `banner banner-${kind}`;
  el.setAttribute('role', kind === 'error' ? 'alert' : 'status');
  el.replaceChildren();

  const textEl = document.createElement('span');
  textEl.className = 'banner-text';
  textEl.textContent = text;
  el.append(textEl);

  if (action) {
    const btn = document.createElement('button');
    btn.type = 'button';
    btn.className = 'banner-action';
    btn.textContent = action.label;
    btn.addEventListener('click', action.onClick);
    el.append(btn);
  }
  if (dismissable) {
    const close = document.createElement('button');
    close.type = 'button';
    close.className = 'banner-close';
    close.setAttribute('aria-label', t('banner.dismiss'));
    close.textContent = '×';
    close.addEventListener('click', () => el.remove());
    el.append(close);
  }
  return el;
}

export function hideBanner(key) {
  const el = document.querySelector(`.banner[data-key="${CSS.escape(key)}"]`);
  if (el) el.remove();
}

export let toastSeq = 0;

// showErrorToast shows a dismissable error, keeping only the last few on screen.
export function showErrorToast(text) {
  const el = showBanner(`error-${++toastSeq}`, text, { kind: 'error' });
  app.errorToasts.push(el);
  while (app.errorToasts.length > MAX_ERROR_TOASTS) app.errorToasts.shift().remove();
}

/**
 * watchControlsHeight keeps the CSS variable --controls-h at the controls bar's real height: the bar wraps onto
 * more rows when its controls do not fit, and what sits above it (the caption strip, the grid's height) must move
 * up with it.
 * @param {HTMLElement} bar
 */
export function watchControlsHeight(bar) {
  const root = document.documentElement;
  new ResizeObserver(() => {
    if (bar.offsetHeight > 0) root.style.setProperty('--controls-h', `${bar.offsetHeight}px`);
  }).observe(bar);
}

/**
 * makeButton is a <button type="button"> of these classes, saying text, that calls onClick when pressed.
 * @param {string} className
 * @param {string} text
 * @param {(ev: MouseEvent) => void} onClick
 * @returns {HTMLButtonElement}
 */
export function makeButton(className, text, onClick) {
  const b = document.createElement('button');
  b.type = 'button';
  b.className = className;
  b.textContent = text;
  b.addEventListener('click', onClick);
  return b;
}

/**
 * wirePanel wires a side panel: its button in the controls toggles it, its close button and Escape inside it
 * close it.
 * @param {string} buttonId
 * @param {string} closeId
 * @param {string} panelId
 * @param {(open?: boolean) => unknown} toggle
 */
export function wirePanel(buttonId, closeId, panelId, toggle) {
  $(buttonId).addEventListener('click', () => toggle());
  $(closeId).addEventListener('click', () => toggle(false));
  $(panelId).addEventListener('keydown', (/** @type {KeyboardEvent} */ ev) => {
    if (ev.key === 'Escape') {
      ev.stopPropagation();
      toggle(false);
    }
  });
}
