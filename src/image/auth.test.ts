// Credentials files: lookup order, Docker Hub's key, atomic 0600 writes by login/logout.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { BerthError } from '../common/errors';
import { getCredentials, login, logout } from './auth';

const b64 = (s: string) => Buffer.from(s).toString('base64');

describe('auth', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'berth-auth-'));
  const saved = { REGISTRY_AUTH_FILE: process.env.REGISTRY_AUTH_FILE, DOCKER_CONFIG: process.env.DOCKER_CONFIG };
  const podmanFile = path.join(dir, 'auth.json');
  const dockerFile = path.join(dir, 'docker', 'config.json');

  before(() => {
    process.env.REGISTRY_AUTH_FILE = podmanFile;
    process.env.DOCKER_CONFIG = path.dirname(dockerFile);
    fs.mkdirSync(path.dirname(dockerFile));
    fs.writeFileSync(dockerFile, JSON.stringify({
      auths: {
        'https://index.docker.io/v1/': { auth: b64('hubuser:hubpw') },
        'https://quay.io': { auth: b64('quser:qpw') },
        'both.example': { auth: b64('docker:pw') },
      },
      credsStore: 'desktop',
    }));
    fs.writeFileSync(podmanFile, JSON.stringify({
      auths: { 'both.example': { auth: b64('podman:pw') }, 'ns.example/team': { auth: b64('team:pw') }, 'ns.example': { auth: b64('all:pw:with:colons') } },
    }));
  });
  after(() => {
    for (const [k, v] of Object.entries(saved)) if (v === undefined) delete process.env[k]; else process.env[k] = v;
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('finds credentials in $REGISTRY_AUTH_FILE first, then Docker\'s config', () => {
    assert.deepEqual(getCredentials('docker.io/library/busybox'), { username: 'hubuser', password: 'hubpw' });
    assert.deepEqual(getCredentials('quay.io/x/y'), { username: 'quser', password: 'qpw' });
    assert.deepEqual(getCredentials('both.example/app'), { username: 'podman', password: 'pw' });
    assert.deepEqual(getCredentials('ns.example/team/app'), { username: 'team', password: 'pw' });
    assert.deepEqual(getCredentials('ns.example/other/app'), { username: 'all', password: 'pw:with:colons' });
    assert.equal(getCredentials('nowhere.example/app'), undefined);
  });

  it('writes with login and removes with logout, 0600, keeping the other fields', () => {
    delete process.env.REGISTRY_AUTH_FILE;
    assert.equal(login('docker.io', 'me', 'new'), dockerFile);
    assert.equal(fs.statSync(dockerFile).mode & 0o777, 0o600);
    const c = JSON.parse(fs.readFileSync(dockerFile, 'utf8'));
    assert.equal(c.credsStore, 'desktop');
    assert.deepEqual(c.auths['https://index.docker.io/v1/'], { auth: b64('me:new') });
    assert.deepEqual(getCredentials('docker.io/x/y'), { username: 'me', password: 'new' });
    assert.equal(logout('https://quay.io/v2/'), true);
    assert.equal(getCredentials('quay.io/x/y'), undefined);
    assert.equal(logout('quay.io'), false);
    process.env.REGISTRY_AUTH_FILE = podmanFile;
  });

  it('says which file is broken', () => {
    fs.writeFileSync(podmanFile, '{ nope');
    assert.throws(() => getCredentials('x.example/a'), (e: BerthError) =>
      e.code === 'REGISTRY_AUTH_FILE_INVALID' && e.message.includes(podmanFile));
  });
});
