// @ts-check
// The page's words in zh-CN (see i18n.js). Keys are grouped by the part of the page they belong to; each group keeps
// the same keys in every language.
export default {
  // --- page: top bar, controls, banners, tiles, captions, denoise, moderation, stats ---
  transcribed: '正在转录',

  // --- pre-join screen, devices, keyboard shortcuts, help ---

  // --- chat, people panel, raised hands, host actions ---
  'chat.button': '聊天',
  'chat.toggle': '聊天',
  'chat.toggleUnread': '聊天，{n} 条未读',
  'chat.title': '聊天',
  'chat.close': '关闭聊天',
  'chat.messages': '消息',
  'chat.to': '发送给',
  'chat.everyone': '所有人',
  'chat.recipientLeft': '{name}（已离开）',
  'chat.input': '消息',
  'chat.placeholder': '输入消息（按回车键发送，Shift 加回车键换行）',
  'chat.send': '发送',
  'chat.you': '（你）',
  'chat.privateTo': '私聊，发给 {name}',
  'chat.privateFrom': '私聊，来自 {name}',
  'chat.tooLong': '消息最多 {max} 个字。',
  'chat.notConnected': '未连接：消息未发送。',
  'chat.rateLimited': '消息太多：请稍等一秒再发送。',
  'chat.notSent': '消息未能发送（{code}）。',
  'people.button': '参会者',
  'people.toggle': '参会者',
  'people.toggleHands': '参会者，{n} 人举手',
  'people.titleBare': '参会者',
  'people.title': '参会者（{n}）',
  'people.close': '关闭参会者列表',
  'people.handsTitle': '举手',
  'people.youName': '{name}（你）',
  'people.host': '主持人',
  'people.handPosition': '已举手，排第 {n} 位',
  'people.micOn': '麦克风已开',
  'people.micMuted': '麦克风已静音',
  'people.micNone': '没有麦克风',
  'people.camOn': '摄像头已开',
  'people.camOff': '摄像头已关',
  'people.camNone': '没有摄像头',
  'people.raiseHand': '举手',
  'people.lowerHand': '放下手',
  'people.mute': '静音',
  'people.muteOf': '为所有人将 {name} 静音',
  'people.lowerHandShort': '放下手',
  'people.lowerHandOf': '放下 {name} 的手',
  'people.makeHost': '设为主持人',
  'people.makeHostOf': '将 {name} 设为主持人',
  'people.remove': '移除',
  'people.removeOf': '将 {name} 移出会议',
  'people.removeConfirm': '将 {name} 移出会议？',
  'people.handRaisedNotice': '{name} 举手了',
  'people.showQueue': '查看',
  'people.nowHost': '你现在是本次会议的主持人',
  'people.noLongerHost': '你已不再是本次会议的主持人',

  // --- stage: pin, spotlight, views, full screen; connection quality; screen share ---
};
