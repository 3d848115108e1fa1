'use strict';
// The start of a test file: one kontor server for the whole file (started before its first
// test, stopped after its last) and `btest`, a browser test (lib/browser.js) against it.
//
//   const { btest, kontor } = suite();
//   btest('signs in', async ({ page }) => {
//     const account = await kontor.account();
//     ...
//   });
//
// `kontor` stands for the running server: its methods and fields are the server's (see
// lib/kontor.js), inside tests and hooks; used before the server has started, it throws.
// suite({ env, dataDir }) passes these to startKontor; suite({ timeout }) is every test's
// timeout (ms; browserTest's default otherwise). btest(name, fn, options) passes options on
// to browserTest.
//
// A file that needs more for its tests (a webhook receiver, a website, a shared account)
// passes suite({ before, after }): `before` runs once the server is up, `after` before the
// server is stopped (which is stopped even when `after` fails). Top-level before() hooks of
// its own would not do: node 20 starts each as it is registered, not after the one before.

const { test, before, after } = require('node:test');
const { startKontor } = require('./kontor');
const { browserTest } = require('./browser');

function suite({ timeout, before: setUpMore, after: tearDownMore, ...startOptions } = {}) {
  let server;
  before(async () => {
    server = await startKontor(startOptions);
    await setUpMore?.();
  });
  after(async () => {
    try {
      await tearDownMore?.();
    } finally {
      await server?.stop();
    }
  });

  const kontor = new Proxy(
    {},
    {
      get(_, prop) {
        if (!server) throw new Error(`kontor.${String(prop)}: the server is not started yet (use it in a test or a hook)`);
        const value = server[prop];
        return typeof value === 'function' ? value.bind(server) : value;
      },
    },
  );
  const defaults = timeout === undefined ? {} : { timeout };
  const btest = (name, fn, options) => browserTest(test, () => server, name, fn, { ...defaults, ...options });
  return { btest, kontor };
}

module.exports = { suite };
