#!/usr/bin/env node
// Writes dist/runtime/syscalls.json, syscall name -> number for this machine's
// architecture, from the kernel headers (Debian's linux-libc-dev). The seccomp compiler
// (src/runtime/seccomp.ts) reads it. Run by `npm run build`.
'use strict';
const fs = require('node:fs');
const path = require('node:path');

const arch = process.arch === 'x64' ? 'x86_64' : process.arch === 'arm64' ? 'aarch64' : process.arch;
const header = arch === 'x86_64'
  ? '/usr/include/x86_64-linux-gnu/asm/unistd_64.h'
  : '/usr/include/asm-generic/unistd.h';
let text;
try {
  text = fs.readFileSync(header, 'utf8');
} catch (err) {
  console.error(`build-syscalls: cannot read ${header}: ${err.message}; install linux-libc-dev (setup.sh does)`);
  process.exit(1);
}
const table = {};
for (const m of text.matchAll(/^#define __NR3?2?_([a-z0-9_]+)\s+(\d+)\s*$/gm)) table[m[1]] = Number(m[2]);
const out = path.join(__dirname, '..', 'dist', 'runtime', 'syscalls.json');
fs.mkdirSync(path.dirname(out), { recursive: true });
fs.writeFileSync(out, JSON.stringify({ arch, syscalls: table }));
console.log(`build-syscalls: ${Object.keys(table).length} syscalls for ${arch}`);
