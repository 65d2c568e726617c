// Table-driven tests of reference parsing against what `docker pull` accepts and prints.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { BerthError } from '../common/errors';
import { parseReference } from './reference';

const D = 'sha256:' + 'a'.repeat(64);

describe('parseReference', () => {
  const valid: [string, string, string, { domain: string; path: string; tag?: string; digest?: string }][] = [
    // input, toString(), familiar(), fields
    ['busybox', 'docker.io/library/busybox:latest', 'busybox:latest', { domain: 'docker.io', path: 'library/busybox', tag: 'latest' }],
    ['busybox:1.36', 'docker.io/library/busybox:1.36', 'busybox:1.36', { domain: 'docker.io', path: 'library/busybox', tag: '1.36' }],
    ['user/app', 'docker.io/user/app:latest', 'user/app:latest', { domain: 'docker.io', path: 'user/app', tag: 'latest' }],
    ['library/busybox', 'docker.io/library/busybox:latest', 'busybox:latest', { domain: 'docker.io', path: 'library/busybox', tag: 'latest' }],
    ['docker.io/busybox', 'docker.io/library/busybox:latest', 'busybox:latest', { domain: 'docker.io', path: 'library/busybox', tag: 'latest' }],
    ['index.docker.io/user/app:v2', 'docker.io/user/app:v2', 'user/app:v2', { domain: 'docker.io', path: 'user/app', tag: 'v2' }],
    ['docker.io/library/a/b', 'docker.io/library/a/b:latest', 'library/a/b:latest', { domain: 'docker.io', path: 'library/a/b', tag: 'latest' }],
    ['quay.io/team/app:v1.2_3-x', 'quay.io/team/app:v1.2_3-x', 'quay.io/team/app:v1.2_3-x', { domain: 'quay.io', path: 'team/app', tag: 'v1.2_3-x' }],
    ['localhost:5000/name:tag', 'localhost:5000/name:tag', 'localhost:5000/name:tag', { domain: 'localhost:5000', path: 'name', tag: 'tag' }],
    ['127.0.0.1:5000/a/b/c', '127.0.0.1:5000/a/b/c:latest', '127.0.0.1:5000/a/b/c:latest', { domain: '127.0.0.1:5000', path: 'a/b/c', tag: 'latest' }],
    ['localhost/name', 'localhost/name:latest', 'localhost/name:latest', { domain: 'localhost', path: 'name', tag: 'latest' }],
    ['[::1]:5000/app', '[::1]:5000/app:latest', '[::1]:5000/app:latest', { domain: '[::1]:5000', path: 'app', tag: 'latest' }],
    ['Registry/app', 'Registry/app:latest', 'Registry/app:latest', { domain: 'Registry', path: 'app', tag: 'latest' }],
    [`busybox@${D}`, `docker.io/library/busybox@${D}`, `busybox@${D}`, { domain: 'docker.io', path: 'library/busybox', digest: D }],
    [`busybox:1.36@${D}`, `docker.io/library/busybox:1.36@${D}`, `busybox:1.36@${D}`, { domain: 'docker.io', path: 'library/busybox', tag: '1.36', digest: D }],
    [`localhost:5000/x@${D}`, `localhost:5000/x@${D}`, `localhost:5000/x@${D}`, { domain: 'localhost:5000', path: 'x', digest: D }],
    ['a__b-c---e/f.g', 'docker.io/a__b-c---e/f.g:latest', 'a__b-c---e/f.g:latest', { domain: 'docker.io', path: 'a__b-c---e/f.g', tag: 'latest' }],
    ['a.b/c', 'a.b/c:latest', 'a.b/c:latest', { domain: 'a.b', path: 'c', tag: 'latest' }],
    ['localhost:5000', 'docker.io/library/localhost:5000', 'localhost:5000', { domain: 'docker.io', path: 'library/localhost', tag: '5000' }],
  ];
  for (const [input, full, familiar, fields] of valid) {
    it(`parses ${JSON.stringify(input)}`, () => {
      const r = parseReference(input);
      assert.equal(r.toString(), full);
      assert.equal(r.familiar(), familiar);
      assert.deepEqual({ domain: r.domain, path: r.path, tag: r.tag, digest: r.digest }, { tag: undefined, digest: undefined, ...fields });
      assert.equal(r.repository(), `${fields.domain}/${fields.path}`);
      assert.equal(parseReference(full).toString(), full, 'normalising is idempotent');
    });
  }

  const invalid: [string, RegExp][] = [
    ['', /is empty/],
    ['Busybox', /lower case/],
    ['user/App', /lower case/],
    ['busybox:', /tag "" is not valid/],
    ['busybox:-x', /tag "-x"/],
    ['busybox:' + 'x'.repeat(129), /tag/],
    ['busybox@sha256:abc', /64 lower-case hex/],
    [`busybox@sha256:${'A'.repeat(64)}`, /64 lower-case hex/],
    [`busybox@md5:${'a'.repeat(32)}`, /algorithm "md5" is not supported/],
    ['busybox@latest', /no algorithm/],
    ['a'.repeat(64), /image id/],
    ['a//b', /empty path component/],
    ['/busybox', /empty path component|registry host/],
    ['busybox/', /empty path component/],
    ['-app', /path component "-app"/],
    ['app_', /path component "app_"/],
    ['a...b', /path component/],
    ['host:99999/app', /port "99999"/],
    ['host:x/app', /port "x"/],
    ['-bad.example/app', /registry host "-bad.example"/],
    ['bad space', /white space/],
    [':tag', /repository name is empty/],
    ['x/' + 'a'.repeat(260), /longer than 255/],
  ];
  for (const [input, message] of invalid) {
    it(`refuses ${JSON.stringify(input.length > 40 ? input.slice(0, 40) + '...' : input)}`, () => {
      assert.throws(() => parseReference(input), (e: unknown) => {
        assert.ok(e instanceof BerthError);
        assert.equal(e.code, 'IMAGE_REFERENCE_INVALID');
        assert.ok(e.message.includes(`"${input}"`), 'the message names the input');
        assert.match(e.message, message);
        return true;
      });
    });
  }

  it('builds digest and tag variants of the same repository', () => {
    const r = parseReference('busybox:1.36');
    assert.equal(r.withDigest(D).toString(), `docker.io/library/busybox@${D}`);
    assert.equal(r.withTag('x').familiar(), 'busybox:x');
    assert.equal(r.familiarName(), 'busybox');
  });
});
