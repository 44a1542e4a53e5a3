// @ts-check
// The page's words in en (see i18n.js). Keys are grouped by the part of the page they belong to; each group keeps
// the same keys in every language.
export default {
  // --- page: top bar, controls, banners, tiles, captions, denoise, moderation, stats ---
  transcribed: 'Transcribed',

  // --- pre-join screen, devices, keyboard shortcuts, help ---
  'prejoin.title': 'Ready to join?',
  'prejoin.preview': 'Your camera preview',
  'prejoin.cameraOff': 'Your camera is off',
  'prejoin.starting': 'Starting the camera…',
  'prejoin.noCamera': 'No camera',
  'prejoin.micLevel': 'Microphone level',
  'prejoin.name': 'Your name',
  'prejoin.camOff': 'Join with camera off',
  'prejoin.micOff': 'Join with microphone off',
  'prejoin.join': 'Join',
  'prejoin.noMedia': 'this page cannot use a camera or microphone (an https:// address is needed)',
  'prejoin.mediaError': 'Camera or microphone: {reason}. You can still join.',
  'devices.button': 'Devices',
  'devices.title': 'Camera, microphone and speaker',
  'devices.camera': 'Camera',
  'devices.microphone': 'Microphone',
  'devices.speaker': 'Speaker',
  'devices.unnamedCamera': 'Camera {n}',
  'devices.unnamedMicrophone': 'Microphone {n}',
  'devices.unnamedSpeaker': 'Speaker {n}',
  'devices.none': 'None found',
  'devices.close': 'Close',
  'devices.switchFailed': 'Could not switch to that device: {reason}.',
  'shortcuts.button': 'Shortcuts',
  'shortcuts.buttonTitle': 'Keyboard shortcuts (?)',
  'shortcuts.title': 'Keyboard shortcuts',
  'shortcuts.mic': 'Mute or unmute your microphone',
  'shortcuts.cam': 'Turn your camera off or on',
  'shortcuts.hand': 'Raise or lower your hand',
  'shortcuts.chat': 'Open or close the chat',
  'shortcuts.help': 'Show this list',
  'shortcuts.escape': 'Close a dialog',
  'shortcuts.note': 'Shortcuts do not work while you type in a text field.',
  'shortcuts.close': 'Close',

  // --- chat, people panel, raised hands, host actions ---

  // --- stage: pin, spotlight, views, full screen; connection quality; screen share ---
};
