// @ts-check
// The page's words in zh-HK (see i18n.js). Keys are grouped by the part of the page they belong to; each group keeps
// the same keys in every language.
export default {
  // --- page: top bar, controls, banners, tiles, captions, denoise, moderation, stats ---
  transcribed: '正在轉錄',

  // --- pre-join screen, devices, keyboard shortcuts, help ---
  'prejoin.title': '準備好加入了嗎？',
  'prejoin.preview': '你的鏡頭預覽',
  'prejoin.cameraOff': '你的鏡頭已關閉',
  'prejoin.starting': '正在啟動鏡頭…',
  'prejoin.noCamera': '沒有鏡頭',
  'prejoin.micLevel': '咪高峰音量',
  'prejoin.name': '你的名稱',
  'prejoin.camOff': '加入時關閉視像',
  'prejoin.micOff': '加入時靜音',
  'prejoin.join': '加入',
  'prejoin.noMedia': '此頁面無法使用鏡頭或咪高峰（需要 https:// 網址）',
  'prejoin.mediaError': '鏡頭或咪高峰：{reason}。你仍可加入。',
  'devices.button': '裝置',
  'devices.title': '鏡頭、咪高峰及喇叭',
  'devices.camera': '鏡頭',
  'devices.microphone': '咪高峰',
  'devices.speaker': '喇叭',
  'devices.unnamedCamera': '鏡頭 {n}',
  'devices.unnamedMicrophone': '咪高峰 {n}',
  'devices.unnamedSpeaker': '喇叭 {n}',
  'devices.none': '找不到裝置',
  'devices.close': '關閉',
  'devices.switchFailed': '無法切換至該裝置：{reason}。',
  'shortcuts.button': '快捷鍵',
  'shortcuts.buttonTitle': '鍵盤快捷鍵（?）',
  'shortcuts.title': '鍵盤快捷鍵',
  'shortcuts.mic': '靜音或取消靜音咪高峰',
  'shortcuts.cam': '關閉或開啟視像',
  'shortcuts.hand': '舉手或放下手',
  'shortcuts.chat': '開啟或關閉聊天室',
  'shortcuts.help': '顯示此列表',
  'shortcuts.escape': '關閉對話框',
  'shortcuts.note': '在文字欄輸入時，快捷鍵不會生效。',
  'shortcuts.close': '關閉',

  // --- chat, people panel, raised hands, host actions ---

  // --- stage: pin, spotlight, views, full screen; connection quality; screen share ---
};
