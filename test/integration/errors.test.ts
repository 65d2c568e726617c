// Bad input: each case fails with a clear message and a non-zero exit, and leaves no
// state, cgroup or mount behind.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { requires, TestEnv } from '../helpers';

const skip = requires('root');

describe('bad input', { skip }, () => {
  let env: TestEnv;
  before(() => {
    env = new TestEnv('errors');
  });
  after(() => env.cleanupAndCheck());


  it('refuses a missing bundle', () => {
    const r = env.rt(['create', '--bundle', path.join(env.dir, 'nope'), 'c1']);
    assert.equal(r.status, 1);
    assert.match(r.stderr, /bundle directory ".*nope" does not exist/);
    env.assertNoState('c1');
  });

  it('refuses invalid JSON and says where', () => {
    const b = env.bundle('badjson');
    fs.writeFileSync(path.join(b, 'config.json'), '{\n  "ociVersion": "1.0.2",\n  "process": {,\n}');
    const r = env.rt(['create', '--bundle', b, 'badjson']);
    assert.equal(r.status, 1);
    assert.match(r.stderr, /config\.json" is not valid JSON: .* at line 3, column \d+/);
    env.assertNoState('badjson');
  });

  it('refuses a schema violation and names the field', () => {
    const b = env.bundle('schema', (c) => {
      c.process.user.uid = 'root';
    });
    const r = env.rt(['create', '--bundle', b, 'schema']);
    assert.equal(r.status, 1);
    assert.match(r.stderr, /does not match the OCI runtime-spec schema: process\.user\.uid must be integer/);
    env.assertNoState('schema');
  });

  it('refuses a field it cannot honour, naming it', () => {
    const b = env.bundle('unsup', (c) => {
      c.process.apparmorProfile = 'docker-default';
    });
    const r = env.rt(['create', '--bundle', b, 'unsup']);
    assert.equal(r.status, 1);
    assert.match(r.stderr, /config\.json field process\.apparmorProfile is not supported/);
    env.assertNoState('unsup');
  });

  it('refuses a missing root filesystem', () => {
    const b = env.bundle('noroot');
    fs.rmSync(path.join(b, 'rootfs'), { recursive: true });
    const r = env.rt(['create', '--bundle', b, 'noroot']);
    assert.equal(r.status, 1);
    assert.match(r.stderr, /root filesystem ".*noroot\/rootfs" does not exist/);
    env.assertNoState('noroot');
  });

  it('refuses a command that is not in the image, and cleans up', () => {
    const b = env.bundle('nocmd', (c) => {
      c.process.args = ['no-such-command'];
    });
    const r = env.rt(['create', '--bundle', b, 'nocmd']);
    assert.equal(r.status, 1);
    assert.match(r.stderr, /executable "no-such-command" not found in \$PATH inside the container/);
    env.assertNoState('nocmd');
  });

  it('refuses an id that exists already, and keeps the first container', () => {
    const b = env.bundle('dup', (c) => {
      c.process.args = ['sleep', '30'];
    });
    assert.equal(env.rt(['create', '--bundle', b, 'dup']).status, 0);
    const r = env.rt(['create', '--bundle', b, 'dup']);
    assert.equal(r.status, 1);
    assert.match(r.stderr, /container "dup" already exists/);
    assert.equal(JSON.parse(env.rt(['state', 'dup']).stdout).status, 'created');

    const k = env.rt(['kill', 'dup', 'SIGNOPE']);
    assert.equal(k.status, 1);
    assert.match(k.stderr, /unknown signal "SIGNOPE"/);

    assert.equal(env.rt(['start', 'dup']).status, 0);
    const again = env.rt(['start', 'dup']);
    assert.equal(again.status, 1);
    assert.match(again.stderr, /cannot start container "dup": it is running/);

    const del = env.rt(['delete', 'dup']);
    assert.equal(del.status, 1);
    assert.match(del.stderr, /cannot delete container "dup": it is running/);
    assert.equal(env.rt(['delete', '--force', 'dup']).status, 0);
    env.assertNoState('dup');
  });

  it('refuses unknown containers and invalid ids', () => {
    const r = env.rt(['state', 'ghost']);
    assert.equal(r.status, 1);
    assert.match(r.stderr, /container "ghost" does not exist/);
    const bad = env.rt(['state', '../etc']);
    assert.equal(bad.status, 1);
    assert.match(bad.stderr, /container id "\.\.\/etc" is not valid/);
  });

  it('refuses a bind mount whose source is missing', () => {
    const b = env.bundle('bindsrc', (c) => {
      c.mounts.push({ destination: '/data', type: 'bind', source: '/nonexistent/berth', options: ['rbind'] });
    });
    const r = env.rt(['create', '--bundle', b, 'bindsrc']);
    assert.equal(r.status, 1);
    assert.match(r.stderr, /bind mount source "\/nonexistent\/berth" for \/data does not exist/);
    env.assertNoState('bindsrc');
  });
});
