// A delivery provider for the benchmark: `instant` answers every POST at once with 200 and a
// JSON id; `hung` accepts connections and never answers. Prints PROVIDER_URL=… when ready.
'use strict';
const http = require('http');
const net = require('net');

const mode = process.argv[2] || 'instant';
let received = 0;
let server;
if (mode === 'instant') {
  server = http.createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      received += 1;
      res.writeHead(200, { 'Content-Type': 'application/json' });
      res.end(`{"id":"bench-${received}"}`);
    });
  });
  server.keepAliveTimeout = 60000;
} else {
  const held = [];
  server = net.createServer((socket) => {
    received += 1;
    held.push(socket);  // read nothing, answer nothing
    socket.on('error', () => {});
  });
}
server.listen(0, '127.0.0.1', () => {
  console.log(`PROVIDER_URL=http://127.0.0.1:${server.address().port}`);
});
process.on('SIGTERM', () => {
  console.log(`PROVIDER_RECEIVED=${received}`);
  process.exit(0);
});
