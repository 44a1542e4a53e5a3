// @ts-check
// The page's words in zh-HK (see i18n.js). Keys are grouped by the part of the page they belong to; each group keeps
// the same keys in every language.
export default {
  // --- page: top bar, controls, banners, tiles, captions, denoise, moderation, stats ---
  transcribed: '正在轉錄',

  // --- pre-join screen, devices, keyboard shortcuts, help ---

  // --- chat, people panel, raised hands, host actions ---
  'chat.button': '聊天室',
  'chat.toggle': '聊天室',
  'chat.toggleUnread': '聊天室，{n} 則未讀',
  'chat.title': '聊天室',
  'chat.close': '關閉聊天室',
  'chat.messages': '訊息',
  'chat.to': '傳送給',
  'chat.everyone': '所有人',
  'chat.recipientLeft': '{name}（已離開）',
  'chat.input': '訊息',
  'chat.placeholder': '輸入訊息（按輸入鍵傳送，Shift 加輸入鍵換行）',
  'chat.send': '傳送',
  'chat.you': '（你）',
  'chat.privateTo': '私人訊息，給 {name}',
  'chat.privateFrom': '私人訊息，來自 {name}',
  'chat.tooLong': '訊息最多 {max} 個字。',
  'chat.notConnected': '未連線：訊息未有傳送。',
  'chat.rateLimited': '訊息太多：請等一秒再傳送。',
  'chat.notSent': '訊息未能傳送（{code}）。',
  'people.button': '參加者',
  'people.toggle': '參加者',
  'people.toggleHands': '參加者，{n} 人舉手',
  'people.titleBare': '參加者',
  'people.title': '參加者（{n}）',
  'people.close': '關閉參加者清單',
  'people.handsTitle': '舉手',
  'people.youName': '{name}（你）',
  'people.host': '主持人',
  'people.handPosition': '已舉手，排第 {n} 位',
  'people.micOn': '咪高峰已開',
  'people.micMuted': '咪高峰已靜音',
  'people.micNone': '沒有咪高峰',
  'people.camOn': '鏡頭已開',
  'people.camOff': '鏡頭已關',
  'people.camNone': '沒有鏡頭',
  'people.raiseHand': '舉手',
  'people.lowerHand': '放下手',
  'people.mute': '靜音',
  'people.muteOf': '為所有人將 {name} 靜音',
  'people.lowerHandShort': '放下手',
  'people.lowerHandOf': '放下 {name} 的手',
  'people.makeHost': '設為主持人',
  'people.makeHostOf': '將 {name} 設為主持人',
  'people.remove': '移除',
  'people.removeOf': '將 {name} 移出會議室',
  'people.removeConfirm': '將 {name} 移出會議室？',
  'people.handRaisedNotice': '{name} 舉手了',
  'people.showQueue': '查看',
  'people.nowHost': '你現在是這個會議的主持人',
  'people.noLongerHost': '你已不再是這個會議的主持人',

  // --- stage: pin, spotlight, views, full screen; connection quality; screen share ---
};
