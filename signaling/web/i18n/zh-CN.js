// @ts-check
// The page's words in zh-CN (see i18n.js). Keys are grouped by the part of the page they belong to; each group keeps
// the same keys in every language.
export default {
  // --- page: top bar, controls, banners, tiles, captions, denoise, moderation, stats ---
  transcribed: '正在转录',

  // --- pre-join screen, devices, keyboard shortcuts, help ---
  'prejoin.title': '准备好加入了吗？',
  'prejoin.preview': '你的摄像头预览',
  'prejoin.cameraOff': '你的摄像头已关闭',
  'prejoin.starting': '正在启动摄像头…',
  'prejoin.noCamera': '没有摄像头',
  'prejoin.micLevel': '麦克风音量',
  'prejoin.name': '你的名字',
  'prejoin.camOff': '加入时关闭视频',
  'prejoin.micOff': '加入时静音',
  'prejoin.join': '加入',
  'prejoin.noMedia': '此页面无法使用摄像头或麦克风（需要 https:// 地址）',
  'prejoin.mediaError': '摄像头或麦克风：{reason}。你仍可加入。',
  'devices.button': '设备',
  'devices.title': '摄像头、麦克风和扬声器',
  'devices.camera': '摄像头',
  'devices.microphone': '麦克风',
  'devices.speaker': '扬声器',
  'devices.unnamedCamera': '摄像头 {n}',
  'devices.unnamedMicrophone': '麦克风 {n}',
  'devices.unnamedSpeaker': '扬声器 {n}',
  'devices.none': '未找到设备',
  'devices.close': '关闭',
  'devices.switchFailed': '无法切换到该设备：{reason}。',
  'shortcuts.button': '快捷键',
  'shortcuts.buttonTitle': '键盘快捷键（?）',
  'shortcuts.title': '键盘快捷键',
  'shortcuts.mic': '静音或取消静音麦克风',
  'shortcuts.cam': '关闭或开启视频',
  'shortcuts.hand': '举手或放下手',
  'shortcuts.chat': '打开或关闭聊天',
  'shortcuts.help': '显示此列表',
  'shortcuts.escape': '关闭对话框',
  'shortcuts.note': '在文本框中输入时，快捷键不起作用。',
  'shortcuts.close': '关闭',

  // --- chat, people panel, raised hands, host actions ---

  // --- stage: pin, spotlight, views, full screen; connection quality; screen share ---
};
