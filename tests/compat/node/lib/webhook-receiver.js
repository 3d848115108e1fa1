'use strict';
// A webhook receiver, run as its own process by webhooks.test.js:
//
//   node lib/webhook-receiver.js <requests file> [<requests to refuse first>]
//
// Listens on a free port of 127.0.0.1 and prints `listening <port>` once it does. Each request
// is written to the file as one JSON line, {method, url, headers, body, status}, with the body
// exactly as received, before it is answered: 503 for the first requests if told to refuse
// some, 200 after. It stops on SIGTERM or when its standard input closes (its parent is gone).

const fs = require('node:fs');
const http = require('node:http');

const [file, refuseArg = '0'] = process.argv.slice(2);
if (!file) {
  process.stderr.write('usage: webhook-receiver.js <requests file> [<requests to refuse first>]\n');
  process.exit(2);
}
let refuse = Number(refuseArg);

const server = http.createServer((req, res) => {
  const chunks = [];
  req.on('data', (c) => chunks.push(c));
  req.on('end', () => {
    const status = refuse > 0 ? 503 : 200;
    if (refuse > 0) refuse -= 1;
    const line = JSON.stringify({
      at: Date.now(),
      method: req.method,
      url: req.url,
      headers: req.headers,
      body: Buffer.concat(chunks).toString('utf8'),
      status,
    });
    fs.appendFileSync(file, `${line}\n`);
    res.writeHead(status, { 'Content-Type': 'text/plain' });
    res.end(status === 200 ? 'ok' : 'try again later');
  });
});

const stop = () => {
  server.close(() => process.exit(0));
  server.closeAllConnections(); // the sender keeps its connections open
};
process.on('SIGTERM', stop);
process.stdin.on('end', stop);
process.stdin.resume();

server.listen(0, '127.0.0.1', () => {
  process.stdout.write(`listening ${server.address().port}\n`);
});
