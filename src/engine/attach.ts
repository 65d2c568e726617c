// `berth attach` and `berth start -a`: connects to a detached container's monitor over
// <dir>/attach.sock (native/monitor/berth-monitor.c documents the frames) and relays its
// output to the caller's streams and the caller's input to its pty or stdin pipe. Detach
// keys are matched here, in the input as typed. Node host process; cli/ owns the terminal
// (raw mode, its size) and hands streams and callbacks in.
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import type { Readable, Writable } from 'node:stream';
import { BerthError } from '../common/errors';
import type { Logger } from '../common/log';
import { ContainerRecord, ContainerStore } from './containers';
import { attachSocket } from './detached';
import { isActive, isMonitorAlive, resolveContainer, waitContainer } from './lifecycle';

export interface AttachOptions {
  /** The user's input, or undefined for none (--no-stdin). Read only if the container
   * keeps stdin open (-i). */
  stdin?: Readable;
  stdout: Writable;
  stderr: Writable;
  /** The bytes that detach (default ctrl-p ctrl-q); empty for none. */
  detachKeys: number[];
  /** The terminal's size now (rows, columns), if the caller has a terminal. */
  windowSize?: () => { rows: number; cols: number } | undefined;
  /** Registers a callback for when the caller's terminal changes size (SIGWINCH). */
  onResize?: (cb: () => void) => () => void;
  /** Called once connected, before any byte is relayed: whether the container has a
   * terminal and takes input (cli/ puts its terminal in raw mode then). */
  onConnected?: (c: { tty: boolean; stdin: boolean }) => void;
  /** `start -a`: starts the container once attached, so no output is missed. */
  start?: () => Promise<unknown>;
  /** The container's record, already up to date: REF is not looked up again (`start -a`
   * of an exited container attaches while `start` holds the engine lock). */
  record?: ContainerRecord;
}

/** outputClosed: the caller's stdout or stderr went away (EPIPE: `berth attach c | head`). */
export type AttachResult = { detached: true; outputClosed?: boolean } | { detached: false; exitCode: number };

const MAX_FRAME = 0xffff;

/**
 * Docker's --detach-keys: comma-separated keys, each a single character or ctrl-X
 * (X a letter, @, [, \\, ], ^ or _).
 * @throws BerthError USAGE
 */
export function parseDetachKeys(spec: string): number[] {
  if (spec === '') return [];
  return spec.split(',').map((k) => {
    const ctrl = /^ctrl-(.)$/i.exec(k);
    if (ctrl) {
      const c = ctrl[1].toUpperCase().charCodeAt(0);
      if (c >= 0x40 && c <= 0x5f) return c - 0x40;
    } else if (k.length === 1) {
      return k.charCodeAt(0);
    }
    throw new BerthError('USAGE', `--detach-keys "${spec}": "${k}" is not a key`, {
      hint: 'use keys such as ctrl-p,ctrl-q or a single character each, separated by commas',
    });
  });
}

/** Finds the detach sequence in typed input, across chunks; bytes held back while they
 * may still start it are released when they turn out not to. */
export class DetachMatcher {
  private held: number[] = [];

  constructor(private readonly keys: number[]) {}

  /** Returns the bytes to pass on, and whether the whole sequence was typed. */
  feed(chunk: Buffer): { pass: Buffer; detach: boolean } {
    if (!this.keys.length) return { pass: chunk, detach: false };
    const out: number[] = [];
    for (const b of chunk) {
      if (b === this.keys[this.held.length]) {
        this.held.push(b);
        if (this.held.length === this.keys.length) return { pass: Buffer.from(out), detach: true };
        continue;
      }
      out.push(...this.held);
      this.held = [];
      if (b === this.keys[0]) this.held.push(b);
      else out.push(b);
    }
    return { pass: Buffer.from(out), detach: false };
  }
}

function frame(type: string, payload: Buffer): Buffer {
  const head = Buffer.from([type.charCodeAt(0), payload.length >> 8, payload.length & 0xff]);
  return Buffer.concat([head, payload]);
}

/** Connects to PATH, which may be longer than a unix socket address holds (107 bytes):
 * then through its directory's /proc/self/fd entry, as the monitor binds it. */
function connectUnix(file: string): Promise<net.Socket> {
  let dirFd: number | undefined;
  let target = file;
  if (Buffer.byteLength(file) > 107) {
    dirFd = fs.openSync(path.dirname(file), fs.constants.O_RDONLY | fs.constants.O_DIRECTORY);
    target = `/proc/self/fd/${dirFd}/${path.basename(file)}`;
  }
  return new Promise((resolve, reject) => {
    const sock = net.createConnection({ path: target });
    const done = () => {
      if (dirFd !== undefined) fs.closeSync(dirFd);
      dirFd = undefined;
    };
    sock.once('connect', () => {
      done();
      resolve(sock);
    });
    sock.once('error', (err) => {
      done();
      reject(err);
    });
  });
}

/** @throws BerthError CONTAINER_NOT_RUNNING, ATTACH_UNAVAILABLE */
async function connectMonitor(cs: ContainerStore, rec: ContainerRecord, starting: boolean): Promise<net.Socket> {
  const wanted = starting ? 'created' : 'running';
  if (!rec.monitor || !isActive(rec) || rec.state.status !== wanted || !isMonitorAlive(rec)) {
    throw new BerthError('CONTAINER_NOT_RUNNING', `cannot attach to container "${rec.name}": it is not running`, {
      context: { containerId: rec.id }, hint: `start it first (berth start -a ${rec.name})`,
    });
  }
  try {
    return await connectUnix(attachSocket(cs, rec.id));
  } catch (err) {
    throw new BerthError('ATTACH_UNAVAILABLE', `connect to the monitor of container "${rec.name}"`, {
      cause: err, context: { containerId: rec.id, path: attachSocket(cs, rec.id) },
      hint: 'a container started by an older berth has no attach socket; use berth logs -f and berth exec',
    });
  }
}

/**
 * Attaches to running container REF until it exits (its exit code) or the detach keys
 * are typed. Input goes to the container only if it was started with -i.
 * @throws BerthError CONTAINER_NOT_FOUND, CONTAINER_NOT_RUNNING, ATTACH_UNAVAILABLE
 */
export async function attachContainer(root: string, ref: string, opts: AttachOptions, log: Logger): Promise<AttachResult> {
  const cs = new ContainerStore(root);
  const rec = opts.record ?? await resolveContainer(root, ref, log);
  const sock = await connectMonitor(cs, rec, !!opts.start);
  log.debug('attached', { id: rec.id });
  const tty = !!rec.config?.tty;
  const stdin = opts.stdin && rec.config?.interactive ? opts.stdin : undefined;
  opts.onConnected?.({ tty, stdin: !!stdin });
  const sendSize = () => {
    const ws = opts.windowSize?.();
    if (!ws || sock.destroyed) return;
    const p = Buffer.alloc(4);
    p.writeUInt16BE(Math.min(ws.rows, 0xffff), 0);
    p.writeUInt16BE(Math.min(ws.cols, 0xffff), 2);
    sock.write(frame('w', p));
  };
  if (tty) sendSize();
  const stopResize = tty ? opts.onResize?.(sendSize) : undefined;

  let startError: unknown;
  const result = await new Promise<AttachResult | undefined>((resolve) => {
    let buf: Buffer = Buffer.alloc(0);
    let exitCode: number | undefined;
    const matcher = new DetachMatcher(opts.detachKeys);
    const onInput = (chunk: Buffer) => {
      const { pass, detach } = matcher.feed(chunk);
      for (let i = 0; i < pass.length; i += MAX_FRAME) sock.write(frame('i', pass.subarray(i, i + MAX_FRAME)));
      if (detach) finish({ detached: true });
    };
    // Output goes out no faster than the caller takes it: the socket is paused while a
    // stream is full (the monitor drops a client that stalls too long, rather than Node
    // buffering the container's whole output in memory).
    let full = 0;
    const relay = (stream: Writable, payload: Buffer) => {
      if (stream.write(payload)) return;
      if (full++ === 0) sock.pause();
      stream.once('drain', () => {
        if (--full === 0) sock.resume();
      });
    };
    const onOutputError = () => finish({ detached: true, outputClosed: true });
    const finish = (r: AttachResult | undefined) => {
      stdin?.off('data', onInput);
      opts.stdout.off('error', onOutputError);
      opts.stderr.off('error', onOutputError);
      sock.destroy();
      resolve(r);
    };
    stdin?.on('data', onInput);
    opts.stdout.on('error', onOutputError);
    opts.stderr.on('error', onOutputError);
    sock.on('data', (d: Buffer) => {
      buf = buf.length ? Buffer.concat([buf, d]) : d;
      while (buf.length >= 3) {
        const len = buf.readUInt16BE(1);
        if (buf.length < 3 + len) break;
        const type = String.fromCharCode(buf[0]);
        const payload = buf.subarray(3, 3 + len);
        buf = buf.subarray(3 + len);
        if (type === 'o') relay(opts.stdout, payload);
        else if (type === 'e') relay(opts.stderr, payload);
        else if (type === 'x') exitCode = Number(payload.toString());
      }
    });
    // Our end closes when the monitor has sent the exit code, or when it dropped us.
    sock.on('close', () => finish(exitCode !== undefined ? { detached: false, exitCode } : undefined));
    sock.on('error', () => undefined);
    if (opts.start) {
      opts.start().catch((err) => {
        startError = err;
        sock.destroy();
      });
    }
  });
  if (startError) throw startError;
  stopResize?.();
  if (result) return result;
  // No exit code came (the monitor dropped this client, or was killed): ask as `wait` does.
  if (isMonitorAlive(rec)) log.warn(`attach to "${rec.name}": the monitor closed this client (too many `
    + 'clients, or its output was not read fast enough); waiting for the container to exit');
  return { detached: false, exitCode: await waitContainer(root, rec.id, log) };
}
