#!/usr/bin/env node
// Builds dist/berth-runtime.blob, a V8 start-up snapshot of berth-runtime (Node 20's
// --build-snapshot), from one esbuild bundle of the compiled CLI. bin/berth-runtime uses
// it when it is newer than the node binary, and the plain JavaScript otherwise.
'use strict';
const { execFileSync } = require('node:child_process');
const path = require('node:path');
const esbuild = require('esbuild');

const dist = path.join(__dirname, '..', 'dist');
const bundle = path.join(dist, 'berth-runtime-snapshot.js');
esbuild.buildSync({
  entryPoints: [path.join(dist, 'cli', 'runtime-snapshot.js')],
  bundle: true, platform: 'node', target: 'node20', format: 'iife', outfile: bundle, logLevel: 'warning',
});
execFileSync(process.execPath, ['--snapshot-blob', path.join(dist, 'berth-runtime.blob'), '--build-snapshot', bundle], {
  // Node warns that child_process (required by commander) is not verified in snapshots;
  // berth requires it again at run time, and the test suite runs through the snapshot.
  stdio: ['ignore', 'inherit', 'ignore'],
  env: { ...process.env, NODE_EXTRA_CA_CERTS: '' },
});
console.log('build-snapshot: wrote dist/berth-runtime.blob');
