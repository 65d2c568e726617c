// Where berth's own files are: the checkout holding package.json and native/. Looked up
// from this module's location at run time, so it holds both for the compiled files in
// dist/ and for the start-up snapshot's single bundle (scripts/build-snapshot.js).
import * as fs from 'node:fs';
import * as path from 'node:path';

let top: string | undefined;

export function topDir(): string {
  if (top) return top;
  let dir = __dirname;
  while (!fs.existsSync(path.join(dir, 'native', 'plan.h')) && path.dirname(dir) !== dir) dir = path.dirname(dir);
  top = dir;
  return dir;
}

export const initPath = (): string => path.join(topDir(), 'native', 'build', 'berth-init');
export const monitorPath = (): string => path.join(topDir(), 'native', 'build', 'berth-monitor');
export const proxyPath = (): string => path.join(topDir(), 'native', 'build', 'berth-proxy');
export const distPath = (...parts: string[]): string => path.join(topDir(), 'dist', ...parts);
