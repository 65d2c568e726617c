// `start`: lets a created container's init run the process, by opening the exec fifo it is
// blocked on (sync 3 of native/plan.h), then runs poststart hooks. Node host process.
import * as fs from 'node:fs';
import { BerthError } from '../common/errors';
import type { RuntimeContext } from './context';
import { runHooks } from './hooks';
import { ContainerRecord, isAlive, ociState, statusOf } from './state';

const sleep = (ms: number) => Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);

/** @throws BerthError CONTAINER_NOT_FOUND, CONTAINER_NOT_CREATED, RUNTIME_START */
export function start(ctx: RuntimeContext, id: string): ContainerRecord {
  const rec = ctx.state.read(id);
  const status = statusOf(ctx.state, rec);
  if (status !== 'created') {
    throw new BerthError('CONTAINER_NOT_CREATED', `cannot start container "${id}": it is ${status}`, {
      context: { containerId: id },
      hint: status === 'stopped' ? `remove it with \`delete ${id}\` and create it again` : 'start works only once, on a created container',
    });
  }
  const fifo = ctx.state.fifo(id);
  // O_RDWR never blocks on a fifo, and it counts as the reader the init's open waits for.
  const fd = fs.openSync(fifo, fs.constants.O_RDWR | fs.constants.O_NONBLOCK);
  try {
    const buf = Buffer.alloc(1);
    for (;;) {
      try {
        if (fs.readSync(fd, buf, 0, 1, null) === 1) break;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EAGAIN') throw err;
      }
      if (!isAlive(rec)) {
        // A short process can be released, run and exit between the read above and this
        // check (seen under load): its byte is then in the fifo, and it did start.
        try {
          if (fs.readSync(fd, buf, 0, 1, null) === 1) break;
        } catch {
          // EAGAIN: it really exited before start
        }
        throw new BerthError('RUNTIME_START', `container "${id}" exited before it could start`, { context: { containerId: id } });
      }
      sleep(1);
    }
  } finally {
    fs.closeSync(fd);
    fs.rmSync(fifo, { force: true });
  }
  ctx.log.info('container started', { id, pid: rec.pid });
  try {
    runHooks('poststart', rec.hooks?.poststart, ociState(rec, 'running'));
  } catch (err) {
    // The spec: a failing poststart hook is logged and the container goes on.
    ctx.log.warn((err as Error).message, { id });
  }
  return rec;
}
