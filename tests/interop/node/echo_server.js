// A Node `ws` echo server for one connection.  Usage: node echo_server.js '<options JSON>'
// where the options are {"perMessageDeflate": false | true | {...ws options...}}.
// Echoes every message, except plan.js's CLOSE_REQUEST, on which it closes with 1000.
// Prints {"port": N} once listening on 127.0.0.1, then, when the connection has closed,
// {"report": EchoReport} (see tests/interop/plan.py), and exits.
'use strict';

const crypto = require('crypto');
const { WebSocketServer } = require('ws');
const { CLOSE_REQUEST } = require('./plan.js');

const WATCHDOG_MS = 60000;
const PING_PAYLOAD = Buffer.from('node-server-ping');

const options = JSON.parse(process.argv[2] || '{}');
const wss = new WebSocketServer({
  host: '127.0.0.1',
  port: 0,
  perMessageDeflate: options.perMessageDeflate,
  maxPayload: 8 << 20,
});
let responseHeaders = [];

function headerIn(lines, name) {
  const prefix = name.toLowerCase() + ':';
  const line = lines.find((l) => l.toLowerCase().startsWith(prefix));
  return line === undefined ? null : line.slice(prefix.length).trim();
}

function finish(report, exitCode) {
  process.stdout.write(JSON.stringify({ report }) + '\n');
  wss.close();
  process.exitCode = exitCode;
}

wss.on('listening', () => {
  process.stdout.write(JSON.stringify({ port: wss.address().port }) + '\n');
});
wss.on('headers', (headers) => {
  responseHeaders = headers;
});
wss.on('connection', (ws, req) => {
  const report = {
    offered: req.headers['sec-websocket-extensions'] ?? null,
    negotiated: headerIn(responseHeaders, 'Sec-WebSocket-Extensions'),
    extensions: ws.extensions,
    ping_ok: null,
    received: [],
    close_code: null,
    close_reason: null,
    error: null,
  };
  ws.on('message', (data, isBinary) => {
    if (!isBinary && data.toString() === CLOSE_REQUEST) {
      ws.close(1000, 'server done');
      return;
    }
    const digest = crypto.createHash('sha256').update(data).digest('hex');
    report.received.push([isBinary ? 'binary' : 'text', data.length, digest]);
    ws.send(data, { binary: isBinary });
  });
  ws.on('pong', (data) => {
    if (data.equals(PING_PAYLOAD)) report.ping_ok = true;
  });
  ws.on('error', (error) => {
    report.error = String(error);
  });
  ws.on('close', (code, reason) => {
    report.close_code = code;
    report.close_reason = reason.toString();
    if (report.ping_ok === null) report.ping_ok = false;
    finish(report, 0);
  });
  ws.ping(PING_PAYLOAD);
});

setTimeout(() => {
  finish({ received: [], error: `no closed connection within ${WATCHDOG_MS} ms` }, 1);
  process.exit(1);
}, WATCHDOG_MS).unref();
