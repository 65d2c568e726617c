// Shared by the storage tests (test/integration/storage.test.ts, unpack-hostile.test.ts):
// layer tarballs built in memory with tar-stream, and a file-by-file description of a tree.
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Readable } from 'node:stream';
import * as tar from 'tar-stream';

export interface TarEntry {
  name: string;
  type?: tar.Header['type'];
  body?: string | Buffer;
  linkname?: string;
  mode?: number;
  uid?: number;
  gid?: number;
  pax?: Record<string, string>;
}

/** A plain tar of ENTRIES, in order (directories default to 0755, files to 0644). */
export async function tarOf(entries: TarEntry[]): Promise<Buffer> {
  const pack = tar.pack();
  const chunks: Buffer[] = [];
  const done = new Promise<void>((resolve, reject) => {
    pack.on('data', (c: unknown) => chunks.push(c as Buffer));
    pack.on('end', () => resolve());
    pack.on('error', reject);
  });
  for (const e of entries) {
    const type = e.type ?? 'file';
    const body = e.body === undefined ? undefined : Buffer.from(e.body);
    const header = {
      name: e.name, type, linkname: e.linkname, uid: e.uid ?? 0, gid: e.gid ?? 0,
      mode: e.mode ?? (type === 'directory' ? 0o755 : 0o644), mtime: new Date(1_700_000_000_000),
      size: body?.length ?? 0, pax: e.pax,
    } as tar.Header;
    await new Promise<void>((resolve, reject) => {
      pack.entry(header, body ?? Buffer.alloc(0), (err) => (err ? reject(err) : resolve()));
    });
  }
  pack.finalize();
  await done;
  return Buffer.concat(chunks);
}

export const streamOf = (buf: Buffer): Readable => Readable.from([buf]);

export interface Node {
  type: string;
  mode: string;
  uid: number;
  gid: number;
  size?: number;
  sha?: string;
  link?: string;
  rdev?: number;
}

/** Every path below ROOT (relative, "." for ROOT) with what a layer must preserve. */
export function describeTree(root: string): Map<string, Node> {
  const out = new Map<string, Node>();
  const visit = (rel: string) => {
    const abs = path.join(root, rel);
    const st = fs.lstatSync(abs);
    const type = st.isDirectory() ? 'dir' : st.isFile() ? 'file' : st.isSymbolicLink() ? 'symlink'
      : st.isFIFO() ? 'fifo' : st.isCharacterDevice() ? 'char' : st.isBlockDevice() ? 'block' : 'other';
    const node: Node = { type, mode: (st.mode & 0o7777).toString(8), uid: st.uid, gid: st.gid };
    if (type === 'file') {
      node.size = st.size;
      node.sha = createHash('sha256').update(fs.readFileSync(abs)).digest('hex');
    }
    if (type === 'symlink') {
      node.link = fs.readlinkSync(abs);
      delete (node as Partial<Node>).mode;
    }
    if (type === 'char' || type === 'block') node.rdev = st.rdev;
    out.set(rel, node);
    if (type === 'dir') for (const n of fs.readdirSync(abs).sort()) visit(rel === '.' ? n : `${rel}/${n}`);
  };
  visit('.');
  return out;
}

/** Groups of paths below ROOT that are hardlinks of one another (sorted). */
export function hardlinkGroups(root: string, tree: Map<string, Node>): string[][] {
  const byIno = new Map<number, string[]>();
  for (const [rel, n] of tree) {
    if (n.type !== 'file') continue;
    const st = fs.lstatSync(path.join(root, rel));
    if (st.nlink > 1) byIno.set(st.ino, [...(byIno.get(st.ino) ?? []), rel]);
  }
  return [...byIno.values()].map((g) => g.sort()).filter((g) => g.length > 1).sort();
}

/** The lines of /proc/self/mountinfo that mention DIR. */
export function mountsUnder(dir: string): string[] {
  return fs.readFileSync('/proc/self/mountinfo', 'utf8').split('\n').filter((l) => l.includes(dir));
}
