// @ts-check
// The page's words in its three languages: English, 繁體中文（香港） and 简体中文. Every string a person reads goes
// through t(key); each language's catalogue is one file under i18n/. Static text in room.html carries its key in
// data-i18n (the element's text) or data-i18n-attr ("title:key;aria-label:key"), filled in by translatePage.

import en from './i18n/en.js';
import zhCN from './i18n/zh-CN.js';
import zhHK from './i18n/zh-HK.js';

/** @typedef {'en' | 'zh-HK' | 'zh-CN'} UiLanguage */

/** @type {Record<UiLanguage, Record<string, string>>} */
export const CATALOGUES = { en, 'zh-HK': zhHK, 'zh-CN': zhCN };

/** The languages the picker offers, each named in itself. */
export const UI_LANGUAGES = /** @type {const} */ ([
  { tag: 'en', label: 'English' },
  { tag: 'zh-HK', label: '繁體中文（香港）' },
  { tag: 'zh-CN', label: '简体中文' },
]);

const STORAGE_KEY = 'sfu.lang';

/** @type {UiLanguage} */
let current = 'en';

/** @returns {UiLanguage} the page's language now */
export function language() {
  return current;
}

/**
 * matchLanguage maps a BCP 47 tag to one of the page's languages: Traditional Chinese (HK, TW, MO, Hant) to zh-HK,
 * other Chinese to zh-CN, English to en; '' when none fits.
 * @param {string | null | undefined} tag
 * @returns {UiLanguage | ''}
 */
export function matchLanguage(tag) {
  const v = String(tag || '').trim().toLowerCase();
  if (!v) return '';
  if (v === 'en' || v.startsWith('en-')) return 'en';
  if (v === 'zh' || v.startsWith('zh-')) {
    return /^zh-(hk|tw|mo|hant)(-|$)|^zh-hant/.test(v) || v === 'yue' ? 'zh-HK' : 'zh-CN';
  }
  if (v === 'yue' || v.startsWith('yue-')) return 'zh-HK';
  return '';
}

/**
 * chooseLanguage picks the page's language: ?lang= first, then the one picked before (the picker remembers it),
 * then the browser's languages in order, else English.
 * @param {string | null} param the address's lang
 * @returns {UiLanguage}
 */
export function chooseLanguage(param) {
  const fromParam = matchLanguage(param);
  if (fromParam) return fromParam;
  try {
    const kept = matchLanguage(localStorage.getItem(STORAGE_KEY));
    if (kept) return kept;
  } catch (err) {
    // Storage may be disabled.
  }
  for (const tag of navigator.languages || [navigator.language]) {
    const m = matchLanguage(tag);
    if (m) return m;
  }
  return 'en';
}

/**
 * setLanguage makes lang the page's language (and, remember true, the one chosen next time).
 * @param {UiLanguage} lang
 * @param {boolean} [remember]
 */
export function setLanguage(lang, remember = false) {
  current = CATALOGUES[lang] ? lang : 'en';
  document.documentElement.lang = current;
  if (remember) {
    try {
      localStorage.setItem(STORAGE_KEY, current);
    } catch (err) {
      // Storage may be disabled.
    }
  }
}

/**
 * t is the page's word for key in its language, with {name} placeholders filled from vars. A key missing from
 * the language falls back to English, then to the key itself (the language test catches both).
 * @param {string} key
 * @param {Record<string, string | number>} [vars]
 * @returns {string}
 */
export function t(key, vars) {
  let s = CATALOGUES[current][key] ?? CATALOGUES.en[key] ?? key;
  if (vars) s = s.replace(/\{(\w+)\}/g, (m, name) => (name in vars ? String(vars[name]) : m));
  return s;
}

/**
 * translatePage fills in the static text of root's elements that carry data-i18n or data-i18n-attr.
 * @param {ParentNode} [root]
 */
export function translatePage(root = document) {
  for (const el of root.querySelectorAll('[data-i18n]')) {
    el.textContent = t(/** @type {HTMLElement} */ (el).dataset.i18n || '');
  }
  for (const el of root.querySelectorAll('[data-i18n-attr]')) {
    for (const pair of (/** @type {HTMLElement} */ (el).dataset.i18nAttr || '').split(';')) {
      const [attr, key] = pair.split(':').map((s) => s.trim());
      if (attr && key) el.setAttribute(attr, t(key));
    }
  }
}

/**
 * setupLanguagePicker fills select with the page's languages (each named in itself) and makes a change the
 * page's language: remembered (setLanguage(lang, true)), then the page reloads in it, so that everything it
 * shows, whichever module made it, is worded anew. An address with ?lang= gets the new language in it (else it
 * would win over the choice); one without keeps none.
 * @param {HTMLSelectElement | null} select
 */
export function setupLanguagePicker(select) {
  if (!select) return;
  select.replaceChildren();
  for (const { tag, label } of UI_LANGUAGES) {
    const option = new Option(label, tag);
    option.lang = tag;
    select.append(option);
  }
  select.value = current;
  select.addEventListener('change', () => {
    const lang = /** @type {UiLanguage} */ (matchLanguage(select.value) || 'en');
    if (lang === current) return;
    setLanguage(lang, true);
    const params = new URLSearchParams(location.search);
    if (params.has('lang')) {
      params.set('lang', lang);
      history.replaceState(null, '', `${location.pathname}?${params}${location.hash}`);
    }
    location.reload();
  });
}
