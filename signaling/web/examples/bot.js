// @ts-check
// An example client of the SFU built on protocol.js alone (no module of the meeting page): a bot that joins a
// room and publishes an animated canvas as its camera. Open /static/examples/bot.html?room=R&name=N on a node in
// dev mode (it fetches a dev token from /token); add &token=T for a node that needs one.

import { Session, pageWsURL } from '../protocol.js';

const params = new URLSearchParams(location.search);
const room = params.get('room') || 'demo';
const name = params.get('name') || 'Bot';
const logEl = /** @type {HTMLElement} */ (document.getElementById('log'));

// What the bot did, for people (the page) and tests (window.bot).
const bot = { state: 'connecting', participantId: '', peers: /** @type {string[]} */ ([]) };
/** @type {any} */ (window).bot = bot;

/** @param {string} line */
function log(line) {
  logEl.textContent += `${new Date().toISOString().slice(11, 19)} ${line}\n`;
}

// animatedCanvas draws a moving bar and a clock 30 times a second and returns the canvas as a video stream.
function animatedCanvas() {
  const canvas = /** @type {HTMLCanvasElement} */ (document.getElementById('canvas'));
  const ctx = /** @type {CanvasRenderingContext2D} */ (canvas.getContext('2d'));
  let frame = 0;
  setInterval(() => {
    frame++;
    ctx.fillStyle = `hsl(${(frame * 2) % 360} 60% 30%)`;
    ctx.fillRect(0, 0, canvas.width, canvas.height);
    ctx.fillStyle = '#fff';
    ctx.fillRect((frame * 8) % canvas.width, 0, 40, canvas.height);
    ctx.font = '48px sans-serif';
    ctx.fillText(`${name} ${frame}`, 24, 72);
  }, 1000 / 30);
  return canvas.captureStream(30);
}

// token: ?token= if given, else a dev token for the room.
async function token() {
  const given = params.get('token');
  if (given) return given;
  const res = await fetch(`/token?room=${encodeURIComponent(room)}&name=${encodeURIComponent(name)}`);
  if (!res.ok) throw new Error(`GET /token answered ${res.status}`);
  return (await res.json()).token;
}

async function main() {
  const stream = animatedCanvas();
  const session = new Session({
    token: await token(),
    url: pageWsURL(),
    media: () => Promise.resolve(stream), // published once joined
    simulcast: false,
  });
  session.on('joined', (msg) => {
    bot.state = 'joined';
    bot.participantId = msg.you.id;
    bot.peers = (msg.participants || []).map((/** @type {any} */ p) => p.name);
    log(`joined ${msg.room} as ${msg.you.id}`);
  });
  session.on('participant_joined', (msg) => {
    bot.peers.push(msg.participant.name);
    log(`${msg.participant.name} joined`);
  });
  session.on('participant_left', (msg) => log(`${msg.participant.name || msg.participant.id} left`));
  session.on('error', (msg) => log(`server error ${msg.code}: ${msg.message || ''}`));
  session.on('bye', ({ reason }) => log(`bye: ${reason}`));
  // A real client reconnects here (see connection.js); the bot just stops.
  session.on('lost', () => {
    bot.state = 'lost';
    log('connection lost');
  });
  session.open();
}

main().catch((err) => {
  bot.state = 'error';
  log(`failed: ${err.message || err}`);
});
