// @ts-check
// The page's words in zh-HK (see i18n.js). Keys are grouped by the part of the page they belong to; each group keeps
// the same keys in every language.
export default {
  // --- page: top bar, controls, banners, tiles, captions, denoise, moderation, stats ---
  transcribed: '正在轉錄',

  // --- pre-join screen, devices, keyboard shortcuts, help ---

  // --- chat, people panel, raised hands, host actions ---

  // --- stage: pin, spotlight, views, full screen; connection quality; screen share ---
  'stage.pin': '固定到主畫面',
  'stage.unpin': '取消固定',
  'stage.fullscreen': '全螢幕',
  'stage.exitFullscreen': '退出全螢幕',
  'stage.gridView': '格狀檢視',
  'stage.gridViewTitle': '格狀檢視：所有視像一樣大小（關閉：講者檢視，講者或已固定的視像會放大）',
  'quality.good': '良好',
  'quality.fair': '一般',
  'quality.poor': '欠佳',
  'quality.label': '連線質素：{level}',
  'quality.because': '（{reasons}）',
  'quality.separator': '、',
  'quality.loss': '封包遺失 {pct}%',
  'quality.rtt': '來回延遲 {ms} 毫秒',
  'quality.layer': '收到的畫面比顯示的細',
  'quality.uplinkBandwidth': '你的網絡頻寬不足，未能以全畫質傳送你的視像：其他人看到的畫質會較低。',
  'quality.uplinkCpu': '你的裝置太忙，未能以全畫質傳送你的視像：其他人看到的畫質會較低。',
};
