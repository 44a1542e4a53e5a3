// @ts-check
// The page's words in en (see i18n.js). Keys are grouped by the part of the page they belong to; each group keeps
// the same keys in every language.
export default {
  // --- page: top bar, controls, banners, tiles, captions, denoise, moderation, stats ---
  transcribed: 'Transcribed',

  // --- pre-join screen, devices, keyboard shortcuts, help ---

  // --- chat, people panel, raised hands, host actions ---

  // --- stage: pin, spotlight, views, full screen; connection quality; screen share ---
  'stage.pin': 'Pin to the stage',
  'stage.unpin': 'Unpin from the stage',
  'stage.fullscreen': 'Full screen',
  'stage.exitFullscreen': 'Exit full screen',
  'stage.gridView': 'Grid view',
  'stage.gridViewTitle': 'Grid view: every video the same size (off: speaker view, with the speaker or the pinned video large)',
  'quality.good': 'good',
  'quality.fair': 'fair',
  'quality.poor': 'poor',
  'quality.label': 'Connection: {level}',
  'quality.because': ' ({reasons})',
  'quality.separator': ', ',
  'quality.loss': '{pct} % packet loss',
  'quality.rtt': '{ms} ms round trip',
  'quality.layer': 'a smaller picture than the tile shows',
  'quality.uplinkBandwidth': 'Your connection is too slow to send your video in full quality: the others see you in lower quality.',
  'quality.uplinkCpu': 'Your device is too busy to send your video in full quality: the others see you in lower quality.',
};
