#!/usr/bin/env node
// gen_vectors.js — generates testdata/vectors.json for internal/password.
//
// Run from this directory:   node gen_vectors.js > vectors.json
//
// The "zumo_classic" section reproduces the password helpers of the classic
// Azure Mobile Services custom-authentication scripts (the widely copied
// community tutorial):
//
//   var crypto = require('crypto');
//   var iterations = 1000;
//   var bytes = 32;
//   function createSalt() { return crypto.randomBytes(bytes).toString('base64'); }
//   function hash(text, salt, callback) {
//       crypto.pbkdf2(text, salt, iterations, bytes, function (err, derivedKey) {
//           if (err) { callback(err); }
//           else { callback(null, new Buffer(derivedKey, 'binary').toString('base64')); }
//       });
//   }
//
// Node of that era defaulted the digest to SHA-1; modern Node requires the
// digest argument, so 'sha1' is passed explicitly. The salt *string* (itself
// base64 text) is passed to pbkdf2, so its UTF-8 bytes are the PBKDF2 salt.
//
// Salts are derived deterministically (SHA-256 of a label) instead of
// crypto.randomBytes so that re-running the script reproduces vectors.json
// byte for byte; they have exactly createSalt()'s shape (base64 of 32 bytes).
'use strict';
const crypto = require('crypto');

const iterations = 1000;
const bytes = 32;

function saltBytes(label, n) {
  // Deterministic stand-in for crypto.randomBytes(n).
  let out = Buffer.alloc(0);
  let i = 0;
  while (out.length < n) {
    out = Buffer.concat([out, crypto.createHash('sha256').update(`gatehouse-vector/${label}/${i++}`).digest()]);
  }
  return out.subarray(0, n);
}

function createSalt(label) {
  return saltBytes(label, bytes).toString('base64');
}

// The tutorial's hash(), with the era's implicit digest made explicit.
function hash(text, salt, callback) {
  crypto.pbkdf2(text, salt, iterations, bytes, 'sha1', function (err, derivedKey) {
    if (err) {
      callback(err);
    } else {
      callback(null, Buffer.from(derivedKey, 'binary').toString('base64'));
    }
  });
}

function hashAsync(text, salt) {
  return new Promise((resolve, reject) => hash(text, salt, (err, h) => (err ? reject(err) : resolve(h))));
}

const passwords = [
  'Passw0rd!',
  'abc1234', // 7 characters: the classic tutorial's minimum
  'correct horse battery staple',
  'pässwörd-😀', // non-ASCII: Node encodes JS strings as UTF-8
  '',
];

async function main() {
  const out = {
    generator: 'internal/password/testdata/gen_vectors.js',
    node: process.version,
    zumo_classic: [],
    pbkdf2: [],
    scrypt: [],
  };

  for (let i = 0; i < passwords.length; i++) {
    const salt = createSalt(`classic-${i}`);
    out.zumo_classic.push({ password: passwords[i], salt: salt, hash: await hashAsync(passwords[i], salt) });
  }

  // Variants: digest, iteration count, key length and salt encoding all vary.
  const variants = [
    { digest: 'sha1', iterations: 1000, key_length: 20, salt_encoding: 'utf8', salt: 'user@example.com' },
    { digest: 'sha1', iterations: 4096, key_length: 32, salt_encoding: 'hex', saltLen: 16 },
    { digest: 'sha256', iterations: 10000, key_length: 32, salt_encoding: 'base64', saltLen: 16 },
    { digest: 'sha256', iterations: 1000, key_length: 64, salt_encoding: 'utf8', salt: 'NaCl-salz-ß' },
    { digest: 'sha512', iterations: 5000, key_length: 64, salt_encoding: 'base64', saltLen: 32 },
    { digest: 'sha512', iterations: 1, key_length: 16, salt_encoding: 'hex', saltLen: 8 },
  ];
  variants.forEach((v, i) => {
    const password = passwords[i % passwords.length];
    let saltText;
    let saltBuf;
    if (v.salt_encoding === 'utf8') {
      saltText = v.salt;
      saltBuf = Buffer.from(v.salt, 'utf8');
    } else {
      saltBuf = saltBytes(`pbkdf2-${i}`, v.saltLen);
      saltText = saltBuf.toString(v.salt_encoding);
    }
    const dk = crypto.pbkdf2Sync(password, saltBuf, v.iterations, v.key_length, v.digest);
    out.pbkdf2.push({
      password: password,
      digest: v.digest,
      iterations: v.iterations,
      key_length: v.key_length,
      salt_encoding: v.salt_encoding,
      salt: saltText,
      hash: dk.toString('base64'),
    });
  });

  const scryptVariants = [
    { N: 1024, r: 8, p: 1, key_length: 32, saltLen: 16 },
    { N: 16384, r: 8, p: 1, key_length: 64, saltLen: 16 },
    { N: 2048, r: 4, p: 2, key_length: 32, saltLen: 32 },
  ];
  scryptVariants.forEach((v, i) => {
    const password = passwords[i % passwords.length];
    const salt = saltBytes(`scrypt-${i}`, v.saltLen);
    const dk = crypto.scryptSync(password, salt, v.key_length, { N: v.N, r: v.r, p: v.p, maxmem: 256 * 1024 * 1024 });
    out.scrypt.push({
      password: password,
      N: v.N,
      r: v.r,
      p: v.p,
      key_length: v.key_length,
      salt: salt.toString('base64'),
      hash: dk.toString('base64'),
    });
  });

  process.stdout.write(JSON.stringify(out, null, 2) + '\n');
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
