#!/usr/bin/env node
// Builds V8 start-up snapshots (Node 20's --build-snapshot) of bin/berth-runtime and
// bin/berth, each from one esbuild bundle of the compiled CLI: dist/berth-runtime.blob and
// dist/berth.blob. The launchers use a blob when it is newer than the node binary, and the
// plain JavaScript otherwise.
'use strict';
const { execFileSync } = require('node:child_process');
const path = require('node:path');
const esbuild = require('esbuild');

const dist = path.join(__dirname, '..', 'dist');
for (const name of ['berth-runtime', 'berth']) {
  const bundle = path.join(dist, `${name}-snapshot.js`);
  esbuild.buildSync({
    entryPoints: [path.join(dist, 'cli', `${name === 'berth' ? 'berth' : 'runtime'}-snapshot.js`)],
    // The Node addon (.node) is loaded at run time by path, never bundled; so is undici
    // (src/image/registry.ts): a third of the snapshot, needed only for extra CAs.
    external: ['undici'],
    bundle: true, platform: 'node', target: 'node20', format: 'iife', outfile: bundle, logLevel: 'warning',
  });
  // Written beside and renamed into place: a berth starting while this runs must find the
  // old blob or the new one, never half of one (node aborts on a short blob).
  const blob = path.join(dist, `${name}.blob`);
  const tmpBlob = `${blob}.${process.pid}.tmp`;
  execFileSync(process.execPath, ['--snapshot-blob', tmpBlob, '--build-snapshot', bundle], {
    // Node warns that child_process (required by commander) is not verified in snapshots;
    // berth requires it again at run time, and the test suite runs through the snapshots.
    stdio: ['ignore', 'inherit', 'ignore'],
    env: { ...process.env, NODE_EXTRA_CA_CERTS: '' },
  });
  require('node:fs').renameSync(tmpBlob, blob);
  console.log(`build-snapshot: wrote dist/${name}.blob`);
}
