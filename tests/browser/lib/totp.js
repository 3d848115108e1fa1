'use strict';
// RFC 6238 time-based one-time passwords (HMAC-SHA1, 30-second steps, 6 digits) from a
// base32 secret (RFC 4648), as an authenticator app computes them.

const crypto = require('node:crypto');

const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';

/** Decodes base32 text (case-insensitive; spaces, dashes and '=' padding are ignored). */
function base32Decode(text) {
  const clean = String(text).toUpperCase().replace(/[\s=-]/g, '');
  let bits = 0;
  let value = 0;
  const out = [];
  for (const ch of clean) {
    const v = ALPHABET.indexOf(ch);
    if (v < 0) throw new Error(`not a base32 character: ${JSON.stringify(ch)}`);
    value = (value << 5) | v;
    bits += 5;
    if (bits >= 8) {
      bits -= 8;
      out.push((value >>> bits) & 0xff);
    }
  }
  return Buffer.from(out);
}

/** RFC 4226 HOTP of a counter with a raw key. */
function hotp(key, counter, digits = 6) {
  const msg = Buffer.alloc(8);
  msg.writeBigUInt64BE(BigInt(counter));
  const mac = crypto.createHmac('sha1', key).update(msg).digest();
  const offset = mac[mac.length - 1] & 0x0f;
  const bin = ((mac[offset] & 0x7f) << 24) | (mac[offset + 1] << 16) | (mac[offset + 2] << 8) | mac[offset + 3];
  return String(bin % 10 ** digits).padStart(digits, '0');
}

/** The TOTP code of a base32 secret at a time (milliseconds since the epoch; now by default). */
function totp(secretBase32, { at = Date.now(), step = 30, digits = 6 } = {}) {
  return hotp(base32Decode(secretBase32), Math.floor(at / 1000 / step), digits);
}

/** A six-digit code that is valid in none of the steps around now (a wrong code for sure). */
function wrongTotp(secretBase32, { at = Date.now(), step = 30 } = {}) {
  const valid = new Set([-2, -1, 0, 1, 2].map((k) => totp(secretBase32, { at: at + k * step * 1000, step })));
  let n = Number(totp(secretBase32, { at, step }));
  let code;
  do {
    n = (n + 111_111) % 1_000_000;
    code = String(n).padStart(6, '0');
  } while (valid.has(code));
  return code;
}

/**
 * The code of the first time step after the one of `usedAt` (waiting for it when needed), so
 * a server that refuses a code seen before (RFC 6238 §5.2) still takes it.
 */
async function nextTotp(secretBase32, usedAt, { step = 30 } = {}) {
  const stepMs = step * 1000;
  const next = (Math.floor(usedAt / stepMs) + 1) * stepMs;
  if (Date.now() < next) await new Promise((r) => setTimeout(r, next - Date.now() + 100));
  return totp(secretBase32, { step });
}

module.exports = { base32Decode, hotp, totp, wrongTotp, nextTotp };
