// Unit tests for cli/output.ts: Docker's words for durations (ps's CREATED and STATUS) and sizes.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ago, binarySize, humanDuration, humanSize } from './output';

describe('humanDuration', () => {
  it('says what docker ps says', () => {
    const s = 1000;
    const h = 3600 * s;
    const cases: [number, string][] = [
      [0, 'Less than a second'], [999, 'Less than a second'], [s, '1 second'], [59 * s, '59 seconds'],
      [60 * s, 'About a minute'], [119 * s, 'About a minute'], [120 * s, '2 minutes'], [59 * 60 * s, '59 minutes'],
      [h, 'About an hour'], [90 * 60 * s, '2 hours'], [47 * h, '47 hours'], [48 * h, '2 days'], [13 * 24 * h, '13 days'],
      [14 * 24 * h, '2 weeks'], [59 * 24 * h, '8 weeks'], [60 * 24 * h, '2 months'], [729 * 24 * h, '24 months'],
      [730 * 24 * h, '2 years'], [-5 * s, 'Less than a second'],
    ];
    for (const [ms, want] of cases) assert.equal(humanDuration(ms), want, String(ms));
  });
});

describe('ago', () => {
  it('says N/A for a time that is not one, not "NaN years ago"', () => {
    assert.equal(ago('not a date'), 'N/A');
    assert.equal(ago(''), 'N/A');
    assert.equal(ago(undefined), 'N/A');
    assert.equal(ago(new Date(Date.now() - 3 * 3600e3).toISOString()), '3 hours ago');
  });
});

describe('humanSize and binarySize', () => {
  it('print sizes as docker images and docker stats do', () => {
    assert.equal(humanSize(0), '0B');
    assert.equal(humanSize(999), '999B');
    assert.equal(humanSize(1980000), '1.98MB');
    assert.equal(humanSize(45_600_000), '45.6MB');
    assert.equal(binarySize(1023), '1023B');
    assert.equal(binarySize(320 * 1024), '320KiB');
    assert.equal(binarySize(64 * 1024 * 1024), '64MiB');
    assert.equal(binarySize(1.5 * 1024 ** 3), '1.5GiB');
  });
});
