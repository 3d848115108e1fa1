'use strict';
// The browser tests' kontor starter, shared: a real server on 127.0.0.1 and a free port.
const k = require('../../browser/lib/kontor');
const net = require('node:net');

function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

module.exports = { ...k, freePort };
