// A Node `ws` server for the streaming-message interop test, for one connection.
// Usage: node fragments_server.js '{"chunks": N, "perMessageDeflate": true | false}'
// Prints {"port": N} once listening on 127.0.0.1. On the client's first message it
// answers with a JSON report of it ({"length", "sha256", "binary"}), then
// sends one text message in N fragments (ws's send with {fin: false} ... {fin: true}), each
// "node fragment <i> " repeated 500 times. It closes when the client closes, and exits.
'use strict';

const crypto = require('crypto');
const { WebSocketServer } = require('ws');

const options = JSON.parse(process.argv[2] || '{}');
const chunks = options.chunks ?? 4;
const wss = new WebSocketServer({
  host: '127.0.0.1',
  port: 0,
  perMessageDeflate: options.perMessageDeflate ?? true,
  maxPayload: 64 << 20,
});

wss.on('listening', () => {
  process.stdout.write(JSON.stringify({ port: wss.address().port }) + '\n');
});
wss.on('connection', (ws) => {
  ws.once('message', (data, isBinary) => {
    const digest = crypto.createHash('sha256').update(data).digest('hex');
    ws.send(JSON.stringify({ length: data.length, sha256: digest, binary: isBinary }));
    for (let i = 0; i < chunks; i++) {
      const chunk = Buffer.from(`node fragment ${i} `.repeat(500));
      ws.send(chunk, { binary: false, fin: i === chunks - 1, compress: true });
    }
  });
  ws.on('close', () => wss.close());
});
setTimeout(() => process.exit(2), 60000).unref();
