// Peer for make bench: an echo server on Node's `ws` (npm), per-message
// deflate off (wsload offers none), library defaults otherwise.
// Usage: node node_echo.js PORT   (NODE_PATH points at the npm cache dir)
'use strict';
const { WebSocketServer } = require('ws');
const wss = new WebSocketServer({ host: '127.0.0.1', port: Number(process.argv[2]),
                                  perMessageDeflate: false, maxPayload: 0 });
wss.on('connection', (ws) => {
  ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }));
});
