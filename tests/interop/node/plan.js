// The interop message plan and its driver, for Node (require('./plan.js')) and for the
// browser page (<script src="/plan.js">, as window.Plan).  It mirrors tests/interop/plan.py:
// the same payloads byte for byte (test_interop_node.py checks that), the same step names and
// the same report fields.  `node plan.js` prints [kind, length, sha256] of every message.
'use strict';

(function (root, factory) {
  if (typeof module === 'object' && module.exports) {
    module.exports = factory();
  } else {
    root.Plan = factory();
  }
})(typeof self !== 'undefined' ? self : this, function () {
  const MESSAGE_SIZES = [0, 125, 126, 65535, 65536, 1 << 20];
  const RUN_LENGTH = 100;
  const TEXT_UNIT = 'Grüße, ünïcödé ✓ € 𝄞 日本語 — héllo wörld; ';
  const RUN_ALPHABET = Array.from(
    'abcdefghijklmnopqrstuvwxyz ABCDEFGHIJ0123456789äöüßéèñçø€✓日本𝄞'
  );
  const COMPRESSIBLE_BLOCK = 1000;
  const STEP_TIMEOUT_MS = 20000;
  // Sent instead of closing to ask the echo side to close with 1000 (plan.py's CLOSE_REQUEST).
  const CLOSE_REQUEST = 'close, please';
  const encoder = new TextEncoder();

  function xorshift32(seed, count) {
    const words = new Uint32Array(count);
    let x = seed >>> 0;
    for (let i = 0; i < count; i++) {
      x = (x ^ (x << 13)) >>> 0;
      x = (x ^ (x >>> 17)) >>> 0;
      x = (x ^ (x << 5)) >>> 0;
      words[i] = x;
    }
    return words;
  }

  function randomBytes(seed, size) {
    const count = Math.ceil(size / 4);
    const words = xorshift32(seed, count);
    const out = new Uint8Array(count * 4);
    const view = new DataView(out.buffer);
    for (let i = 0; i < count; i++) view.setUint32(4 * i, words[i], true);
    return out.slice(0, size);
  }

  function randomText(seed, length) {
    const words = xorshift32(seed, length);
    let text = '';
    for (let i = 0; i < length; i++) text += RUN_ALPHABET[words[i] % RUN_ALPHABET.length];
    return text;
  }

  function textOfSize(size) {
    const unitLength = encoder.encode(TEXT_UNIT).length;
    const repeats = Math.floor(size / unitLength);
    let rest = size - repeats * unitLength;
    let tail = '';
    for (const char of TEXT_UNIT) {
      const width = encoder.encode(char).length;
      if (width > rest) break;
      tail += char;
      rest -= width;
    }
    return TEXT_UNIT.repeat(repeats) + tail + '.'.repeat(rest);
  }

  const PLAN = [];
  for (const size of MESSAGE_SIZES) {
    for (const kind of ['text', 'binary']) PLAN.push({ kind, size, name: `${kind}-${size}` });
  }
  PLAN.push({ kind: 'binary-compressible', size: 1 << 20, name: `binary-compressible-${1 << 20}` });
  const RUN = `run-${RUN_LENGTH}`;

  function payload(step) {
    if (step.kind === 'text') return textOfSize(step.size);
    if (step.kind === 'binary') return randomBytes(step.size + 1, step.size);
    const block = randomBytes(7, COMPRESSIBLE_BLOCK);
    const out = new Uint8Array(step.size);
    for (let i = 0; i < step.size; i += COMPRESSIBLE_BLOCK) {
      out.set(block.subarray(0, Math.min(COMPRESSIBLE_BLOCK, step.size - i)), i);
    }
    return out;
  }

  function runMessage(index) {
    if (index % 10 === 9) {
      const block = randomBytes(300 + (index % 7), 400);
      const out = new Uint8Array(1 + block.length);
      out[0] = index;
      out.set(block, 1);
      return out;
    }
    return String(index).padStart(3, '0') + ' ' + randomText(100 + (index % 7), 300);
  }

  function allMessages() {
    const messages = PLAN.map(payload);
    for (let i = 0; i < RUN_LENGTH; i++) messages.push(runMessage(i));
    return messages;
  }

  function asBytes(message) {
    if (typeof message === 'string') return encoder.encode(message);
    if (message instanceof ArrayBuffer) return new Uint8Array(message);
    return new Uint8Array(message.buffer, message.byteOffset, message.byteLength);
  }

  // null if `got` is `sent` (type and bytes), else what differs (as plan.py's compare_echo).
  function compareEcho(sent, got) {
    const sentText = typeof sent === 'string';
    const gotText = typeof got === 'string';
    if (sentText !== gotText) {
      return `sent ${sentText ? 'str' : 'bytes'}, got ${gotText ? 'str' : 'bytes'}`;
    }
    const a = asBytes(sent);
    const b = asBytes(got);
    const common = Math.min(a.length, b.length);
    let first = 0;
    while (first < common && a[first] === b[first]) first++;
    if (first === common && a.length === b.length) return null;
    return `sent ${a.length} bytes, got ${b.length} bytes, first difference at byte ${first}`;
  }

  // Run the plan over `ws` (a browser WebSocket, or ws's WebSocket, which has the same
  // onopen/onmessage/onclose interface) and resolve to a DriverReport-shaped object.
  // hooks.negotiated() returns the Sec-WebSocket-Extensions response header;
  // hooks.ping(), where the peer can ping, resolves once the matching pong arrived.
  // hooks.serverCloses: send CLOSE_REQUEST and let the server start the closing handshake.
  function runDriver(ws, hooks) {
    const report = {
      offered: null,
      negotiated: null,
      ping_ok: null,
      steps: [],
      close_code: null,
      close_reason: null,
      error: null,
    };
    const inbox = [];
    const waiters = [];
    let closed = null;
    ws.binaryType = 'arraybuffer';

    const opened = new Promise((resolve, reject) => {
      ws.onopen = resolve;
      ws.onerror = (event) => reject(new Error(`WebSocket error: ${event.message || 'failed'}`));
    });
    let resolveClosed;
    const closedPromise = new Promise((resolve) => {
      resolveClosed = resolve;
    });
    ws.onclose = (event) => {
      closed = event;
      while (waiters.length) waiters.shift().reject(new Error(`closed with ${event.code}`));
      resolveClosed(event);
    };
    ws.onmessage = (event) => {
      if (waiters.length) waiters.shift().resolve(event.data);
      else inbox.push(event.data);
    };

    function next(what) {
      if (inbox.length) return Promise.resolve(inbox.shift());
      if (closed) return Promise.reject(new Error(`closed with ${closed.code} before ${what}`));
      return new Promise((resolve, reject) => {
        const timer = setTimeout(
          () => reject(new Error(`no echo of ${what} within ${STEP_TIMEOUT_MS} ms`)),
          STEP_TIMEOUT_MS
        );
        waiters.push({
          resolve: (value) => { clearTimeout(timer); resolve(value); },
          reject: (error) => { clearTimeout(timer); reject(error); },
        });
      });
    }

    async function drive() {
      await opened;
      report.negotiated = hooks.negotiated() || null;
      if (hooks.ping) report.ping_ok = await hooks.ping();
      for (const step of PLAN) {
        const message = payload(step);
        ws.send(message);
        const detail = compareEcho(message, await next(step.name));
        report.steps.push({ name: step.name, ok: detail === null, detail: detail || '' });
      }
      const run = [];
      for (let i = 0; i < RUN_LENGTH; i++) {
        run.push(runMessage(i));
        ws.send(run[i]);
      }
      const failures = [];
      for (let i = 0; i < RUN_LENGTH; i++) {
        const detail = compareEcho(run[i], await next(`run message ${i}`));
        if (detail !== null) failures.push(`message ${i}: ${detail}`);
      }
      report.steps.push({ name: RUN, ok: failures.length === 0, detail: failures.slice(0, 5).join('; ') });
      if (hooks.serverCloses) ws.send(CLOSE_REQUEST);
      else ws.close(1000, 'done');
    }

    return drive()
      .catch((error) => {
        report.error = String(error && error.stack ? error.stack : error);
        if (!closed) ws.close(1000, 'driver failed');
      })
      .then(() => {
        const timer = setTimeout(
          () => resolveClosed({ code: null, reason: 'no close frame within the step timeout' }),
          STEP_TIMEOUT_MS
        );
        return closedPromise.then((event) => {
          clearTimeout(timer);
          report.close_code = event.code;
          report.close_reason = event.reason;
          return report;
        });
      });
  }

  return {
    MESSAGE_SIZES, RUN_LENGTH, PLAN, RUN, CLOSE_REQUEST, payload, runMessage, allMessages, asBytes,
    compareEcho, runDriver,
  };
});

if (typeof module === 'object' && require.main === module) {
  const crypto = require('crypto');
  const Plan = module.exports;
  const rows = Plan.allMessages().map((message) => {
    const bytes = Plan.asBytes(message);
    const digest = crypto.createHash('sha256').update(bytes).digest('hex');
    return [typeof message === 'string' ? 'text' : 'binary', bytes.length, digest];
  });
  process.stdout.write(JSON.stringify(rows) + '\n');
}
