// widgets/fake.js: fake data for the widgets' live preview on /dashboard/widgets (seed 003's
// "defaults and fake data" module). The frames have exactly the shapes of the real ones
// (docs/widgets.md), so the preview runs the same code as the page in OBS. They are posted
// into the preview iframe only; nothing here reaches the server.

const NAMES = ['PixelPanda', 'NightOwl_42', 'LunaLurker', 'CaptainCrit', 'ByteBandit', 'MossyRock',
  'Zephyrine', 'TurboTaco', 'QuietStorm', 'GlitchWitch'];
const TEXTS = ['hello chat!', 'that was a clean play', 'GG', 'what game is next?', 'LUL',
  'first time here, love the vibe', 'can you show the settings?', 'hype!', 'lol', 'nice one'];
const MESSAGES = ['Keep up the great streams!', 'Happy to support you', 'for the snacks', ''];

let n = 0;
const pick = (arr) => arr[Math.floor(Math.random() * arr.length)];

// A fake normalised alert of a type, with the fields that type carries.
export function fakeAlert(type) {
  n++;
  const a = { id: `fake-${Date.now()}-${n}`, type, platform: 'twitch', name: pick(NAMES), ts: Date.now() };
  switch (type) {
    case 'subscription': a.tier = 1; a.count = 3; a.message = pick(MESSAGES); break;
    case 'gift_subscription': a.count = 5; a.tier = 1; break;
    case 'cheer': a.amount = 500; a.message = pick(MESSAGES); break;
    case 'raid': a.count = 42; break;
    case 'super_chat': a.platform = 'youtube'; a.amount = 10; a.currency = 'USD'; a.message = pick(MESSAGES); break;
    case 'member': a.platform = 'youtube'; break;
    case 'donation': a.platform = 'streampai'; a.amount = 4.5; a.currency = 'EUR'; a.message = pick(MESSAGES); break;
    default: break;
  }
  if (!a.message) delete a.message;
  return a;
}

// A fake `show` payload (the AlertQueue's frame) for a type and its config.
export function fakeShow(type, config) {
  const alert = fakeAlert(type);
  const t = (config && config.types && config.types[type]) || {};
  return {
    key: `preview-${Date.now()}-${n}`, alert, names: [alert.name], count: alert.count || 1,
    test: true, replay: false, duration_ms: Number.isInteger(t.duration_ms) ? t.duration_ms : 5000,
  };
}

const COLORS = ['#ff4500', '#1e90ff', '#2e8b57', '#daa520', '#ff69b4', ''];
const BADGE_SETS = [[], [], [{ set_id: 'subscriber', id: '12' }], [{ set_id: 'moderator', id: '1' }], [{ set_id: 'vip', id: '1' }]];

// A fake normalised chat message (mostly Twitch, some YouTube and Kick; now and then a command
// or a bot, so the preview shows the filters at work).
export function fakeChatMessage() {
  n++;
  const platform = pick(['twitch', 'twitch', 'twitch', 'youtube', 'kick']);
  const name = n % 9 === 0 ? 'Nightbot' : pick(NAMES);
  const text = n % 7 === 0 ? '!uptime' : pick(TEXTS);
  return {
    id: `fake-chat-${Date.now()}-${n}`, platform, text, ts: Date.now(),
    fragments: [{ type: 'text', text }],
    author: { id: `fa-${name}`, name: name.toLowerCase(), display_name: name, color: pick(COLORS), badges: pick(BADGE_SETS) },
  };
}
