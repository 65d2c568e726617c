// Unit tests of attach.ts's key handling: --detach-keys parsing and the matcher that finds
// the sequence in typed input, across chunks. The relay itself: test/integration/attach.test.ts.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { BerthError } from '../common/errors';
import { DetachMatcher, parseDetachKeys } from './attach';

describe('parseDetachKeys', () => {
  for (const [spec, keys] of [
    ['ctrl-p,ctrl-q', [0x10, 0x11]],
    ['ctrl-a', [0x01]],
    ['CTRL-X,x', [0x18, 0x78]],
    ['ctrl-@,ctrl-[', [0x00, 0x1b]],
    ['', []],
  ] as const) {
    it(`"${spec}"`, () => assert.deepEqual(parseDetachKeys(spec), keys));
  }
  for (const bad of ['ctrl-', 'ctrl-1', 'ab', 'ctrl-p,,ctrl-q']) {
    it(`refuses "${bad}"`, () => assert.throws(() => parseDetachKeys(bad), (e: BerthError) => e.code === 'USAGE'));
  }
});

describe('DetachMatcher', () => {
  const keys = [0x10, 0x11];
  it('passes input without the sequence unchanged', () => {
    const m = new DetachMatcher(keys);
    assert.deepEqual(m.feed(Buffer.from('hello\r')), { pass: Buffer.from('hello\r'), detach: false });
  });
  it('finds the sequence, also split over chunks; what came before it is passed', () => {
    const m = new DetachMatcher(keys);
    assert.deepEqual(m.feed(Buffer.from([0x61, 0x10])), { pass: Buffer.from([0x61]), detach: false });
    assert.deepEqual(m.feed(Buffer.from([0x11, 0x62])), { pass: Buffer.from([]), detach: true });
  });
  it('releases a held key that does not go on to the sequence', () => {
    const m = new DetachMatcher(keys);
    assert.deepEqual(m.feed(Buffer.from([0x10])), { pass: Buffer.from([]), detach: false });
    assert.deepEqual(m.feed(Buffer.from([0x78])), { pass: Buffer.from([0x10, 0x78]), detach: false });
    // ctrl-p ctrl-p ctrl-q: the first ctrl-p is passed, the rest detaches
    assert.deepEqual(m.feed(Buffer.from([0x10, 0x10, 0x11])), { pass: Buffer.from([0x10]), detach: true });
  });
  it('no keys: never detaches', () => {
    const m = new DetachMatcher([]);
    assert.deepEqual(m.feed(Buffer.from([0x10, 0x11])), { pass: Buffer.from([0x10, 0x11]), detach: false });
  });
});
