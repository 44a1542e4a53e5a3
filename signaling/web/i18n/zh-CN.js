// @ts-check
// The page's words in zh-CN (see i18n.js). Keys are grouped by the part of the page they belong to; each group keeps
// the same keys in every language.
export default {
  // --- page: top bar, controls, banners, tiles, captions, denoise, moderation, stats ---
  transcribed: '正在转录',

  // --- pre-join screen, devices, keyboard shortcuts, help ---

  // --- chat, people panel, raised hands, host actions ---

  // --- stage: pin, spotlight, views, full screen; connection quality; screen share ---
  'stage.pin': '固定到主画面',
  'stage.unpin': '取消固定',
  'stage.fullscreen': '全屏',
  'stage.exitFullscreen': '退出全屏',
  'stage.gridView': '宫格视图',
  'stage.gridViewTitle': '宫格视图：所有视频一样大小（关闭：演讲者视图，演讲者或已固定的视频会放大）',
  'quality.good': '良好',
  'quality.fair': '一般',
  'quality.poor': '较差',
  'quality.label': '连接质量：{level}',
  'quality.because': '（{reasons}）',
  'quality.separator': '、',
  'quality.loss': '丢包率 {pct}%',
  'quality.rtt': '往返延迟 {ms} 毫秒',
  'quality.layer': '收到的画面比显示的小',
  'quality.uplinkBandwidth': '你的网络带宽不足，无法以全画质发送你的视频：其他人看到的画质会降低。',
  'quality.uplinkCpu': '你的设备太忙，无法以全画质发送你的视频：其他人看到的画质会降低。',
};
