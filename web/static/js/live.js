// Server push: one stream of the platform's control-plane events
// (GET /v1/events:watch, text/event-stream: {kind, key, type, time} each)
// tells the shell which views to draw again. It is read with fetch,
// which sends the bearer token and the project as every API call does
// (an EventSource cannot send headers, and a token in the URL would end
// up in logs); the request goes to this origin only. A stream that
// breaks is opened again after a growing delay; meanwhile the shell
// polls slowly.
import { authHeaders } from './api.js';

const PATH = '/v1/events:watch';
// DEBOUNCE_MS gathers a burst of events (a rollout's job transitions)
// into one redraw.
const DEBOUNCE_MS = 250;
// SILENT_MS: no byte for this long (the server sends a comment every
// 15 s) means the connection is gone without saying so.
const SILENT_MS = 45000;
const RETRY_MIN_MS = 1000;
const RETRY_MAX_MS = 30000;

const root = document.documentElement;

// parseBlock reads one server-sent event: its name ("message" when the
// block has data and no name, "" for a comment) and its data.
export function parseBlock(block) {
  let name = '';
  const data = [];
  for (const line of block.split(/\r?\n/)) {
    if (line === '' || line.startsWith(':')) continue;
    const i = line.indexOf(':');
    const field = i < 0 ? line : line.slice(0, i);
    const value = i < 0 ? '' : line.slice(i + 1).replace(/^ /, '');
    if (field === 'event') name = value;
    else if (field === 'data') data.push(value);
  }
  if (!name && data.length) name = 'message';
  return { name, data: data.join('\n') };
}

// Live is the stream and its state: connecting, open or closed.
class Live {
  constructor() {
    this.state = 'closed';
    this.listeners = new Set();
    this.pending = [];
    this.flushTimer = 0;
    this.ctl = null;
    this.retry = RETRY_MIN_MS;
    this.received = 0;
    this.started = false;
  }

  // on calls fn(events) with each debounced batch, and fn(null, state)
  // when the state changes.
  on(fn) { this.listeners.add(fn); }

  get open() { return this.state === 'open'; }

  setState(s) {
    if (s === this.state) return;
    this.state = s;
    root.dataset.live = s;
    const dot = document.getElementById('live');
    if (dot) {
      dot.className = `live ${s}`;
      dot.title = s === 'open' ? 'Live: changes show as they happen' : s === 'connecting' ? 'Connecting to live updates…' : 'Live updates are off: the page refreshes every 30 s';
    }
    for (const fn of this.listeners) fn(null, s);
  }

  start() {
    if (this.started) return;
    this.started = true;
    this.loop();
  }

  // restart drops the stream and opens a new one at once (after signing
  // in or out, when the token changed).
  restart() {
    this.retry = RETRY_MIN_MS;
    this.ctl?.abort();
    if (!this.started) this.start();
  }

  async loop() {
    for (;;) {
      await this.once();
      this.setState('closed');
      await new Promise((r) => setTimeout(r, this.retry));
      this.retry = Math.min(this.retry * 2, RETRY_MAX_MS);
    }
  }

  // once reads one stream until it ends or breaks.
  async once() {
    const ctl = new AbortController();
    this.ctl = ctl;
    let silent = 0;
    const arm = () => {
      clearTimeout(silent);
      silent = setTimeout(() => ctl.abort(), SILENT_MS);
    };
    this.setState('connecting');
    try {
      const headers = authHeaders({ Accept: 'text/event-stream' });
      arm();
      const resp = await fetch(PATH, { headers, cache: 'no-store', credentials: 'same-origin', signal: ctl.signal });
      if (!resp.ok || !resp.body) {
        await resp.body?.cancel();
        return;
      }
      const reader = resp.body.pipeThrough(new TextDecoderStream()).getReader();
      let buf = '';
      for (;;) {
        const { value, done } = await reader.read();
        if (done) return;
        arm();
        buf += value;
        let i;
        while ((i = buf.search(/\r?\n\r?\n/)) >= 0) {
          const block = buf.slice(0, i);
          buf = buf.slice(i).replace(/^\r?\n\r?\n/, '');
          this.handle(parseBlock(block));
        }
      }
    } catch {
      // aborted or broken: the loop opens it again
    } finally {
      clearTimeout(silent);
      if (this.ctl === ctl) this.ctl = null;
    }
  }

  handle({ name, data }) {
    if (name === 'ready') {
      this.retry = RETRY_MIN_MS;
      this.setState('open');
      return;
    }
    if (name !== 'message') return;
    let e;
    try { e = JSON.parse(data); } catch { return; }
    if (!e?.kind) return;
    this.received++;
    root.dataset.liveEvents = String(this.received);
    this.pending.push(e);
    if (!this.flushTimer) {
      this.flushTimer = setTimeout(() => {
        const batch = this.pending;
        this.pending = [];
        this.flushTimer = 0;
        for (const fn of this.listeners) fn(batch);
      }, DEBOUNCE_MS);
    }
  }
}

export const live = new Live();
