// @ts-check
// The page's words in en (see i18n.js). Keys are grouped by the part of the page they belong to; each group keeps
// the same keys in every language.
export default {
  // --- page: top bar, controls, banners, tiles, captions, denoise, moderation, stats ---
  transcribed: 'Transcribed',

  // --- pre-join screen, devices, keyboard shortcuts, help ---

  // --- chat, people panel, raised hands, host actions ---
  'chat.button': 'Chat',
  'chat.toggle': 'Chat',
  'chat.toggleUnread': 'Chat, {n} unread',
  'chat.title': 'Chat',
  'chat.close': 'Close the chat',
  'chat.messages': 'Messages',
  'chat.to': 'To',
  'chat.everyone': 'Everyone',
  'chat.recipientLeft': '{name} (left)',
  'chat.input': 'Message',
  'chat.placeholder': 'Message (Enter sends, Shift+Enter new line)',
  'chat.send': 'Send',
  'chat.you': '(you)',
  'chat.privateTo': 'private, to {name}',
  'chat.privateFrom': 'private, from {name}',
  'chat.tooLong': 'Messages are at most {max} characters.',
  'chat.notConnected': 'Not connected: the message was not sent.',
  'chat.rateLimited': 'Too many messages at once: wait a second and send again.',
  'chat.notSent': 'The message was not sent ({code}).',
  'people.button': 'People',
  'people.toggle': 'People',
  'people.toggleHands': 'People, {n} hands raised',
  'people.titleBare': 'People',
  'people.title': 'People ({n})',
  'people.close': 'Close the people panel',
  'people.handsTitle': 'Raised hands',
  'people.youName': '{name} (you)',
  'people.host': 'Host',
  'people.handPosition': 'Hand raised, number {n} in the queue',
  'people.micOn': 'Microphone on',
  'people.micMuted': 'Microphone muted',
  'people.micNone': 'No microphone',
  'people.camOn': 'Camera on',
  'people.camOff': 'Camera off',
  'people.camNone': 'No camera',
  'people.raiseHand': 'Raise hand',
  'people.lowerHand': 'Lower hand',
  'people.mute': 'Mute',
  'people.muteOf': 'Mute {name} for everyone',
  'people.lowerHandShort': 'Lower hand',
  'people.lowerHandOf': 'Lower {name}\'s hand',
  'people.makeHost': 'Make host',
  'people.makeHostOf': 'Make {name} a host',
  'people.remove': 'Remove',
  'people.removeOf': 'Remove {name} from the room',
  'people.removeConfirm': 'Remove {name} from the room?',
  'people.handRaisedNotice': '{name} raised a hand',
  'people.showQueue': 'Show',
  'people.nowHost': 'You are now a host of this meeting',
  'people.noLongerHost': 'You are no longer a host of this meeting',

  // --- stage: pin, spotlight, views, full screen; connection quality; screen share ---
};
