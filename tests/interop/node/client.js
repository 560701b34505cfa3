// A Node `ws` client that runs the interop plan (plan.js) against a server.
// Usage: node client.js URL '<options JSON>' where the options are
// {"perMessageDeflate": false | true | {...ws options...}, "serverCloses": true | false}.
// Prints {"report": DriverReport} (see tests/interop/plan.py) and exits.
'use strict';

const WebSocket = require('ws');
const Plan = require('./plan.js');

const PING_TIMEOUT_MS = 10000;
const PING_PAYLOAD = Buffer.from('node-client-ping');

const [url, optionsJson] = process.argv.slice(2);
const options = JSON.parse(optionsJson || '{}');
const wsOptions = { maxPayload: 8 << 20 };
// Only an explicit setting overrides ws's client default (perMessageDeflate on).
if (options.perMessageDeflate !== undefined) wsOptions.perMessageDeflate = options.perMessageDeflate;
const ws = new WebSocket(url, wsOptions);
let negotiated = null;
ws.on('upgrade', (response) => {
  negotiated = response.headers['sec-websocket-extensions'] ?? null;
});

function ping() {
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(false), PING_TIMEOUT_MS);
    ws.on('pong', (data) => {
      if (data.equals(PING_PAYLOAD)) {
        clearTimeout(timer);
        resolve(true);
      }
    });
    ws.ping(PING_PAYLOAD);
  });
}

const serverCloses = options.serverCloses === true;
Plan.runDriver(ws, { negotiated: () => negotiated, ping, serverCloses }).then((report) => {
  report.extensions = ws.extensions;
  process.stdout.write(JSON.stringify({ report }) + '\n');
  process.exit(report.error === null ? 0 : 1);
});
