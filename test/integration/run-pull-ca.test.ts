// `berth run` of an image that is not local pulls it, also from a registry whose TLS
// certificate comes from the user's own CA (NODE_EXTRA_CA_CERTS). bin/berth drops that
// variable for `run` (start-up cost) and passes it on as BERTH_EXTRA_CA_CERTS; the
// registry client (src/image/registry.ts) must trust it again. A docker-registry with TLS
// on this host, a CA and a server certificate made here with openssl.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { BERTH, engineRoot, processesWith, requires, waitFor } from '../helpers';
import { run, startRegistry, stopRegistry, type Registry } from '../registry-fixtures';

const skip = requires('root', 'docker-registry', 'skopeo') ?? (spawnSync('sh', ['-c', 'command -v openssl']).status === 0 ? undefined : 'needs openssl');

describe('berth run pulls from a TLS registry with the user\'s CA', { skip }, () => {
  let dir: string;
  let root: string;
  let reg: Registry | undefined;
  let ca: string;
  // 0.0.0.0 reaches this host (the registry listens on 127.0.0.1) but is not a loopback
  // name, so berth speaks only HTTPS to it: no plain-HTTP fallback hides a TLS failure.
  let image: string;

  /** bin/berth with the machine's NODE_EXTRA_CA_CERTS replaced by EXTRA (or none). */
  const berth = (args: string[], extra?: string) => {
    const env = { ...process.env };
    delete env.NODE_EXTRA_CA_CERTS;
    delete env.BERTH_EXTRA_CA_CERTS;
    if (extra) env.NODE_EXTRA_CA_CERTS = extra;
    const r = spawnSync(BERTH, ['--root', root, ...args], { encoding: 'utf8', env, timeout: 120_000 });
    return { status: r.status, stdout: r.stdout, stderr: r.stderr };
  };

  before(async () => {
    ({ dir, root } = engineRoot('pullca'));
    const pki = path.join(dir, 'pki');
    fs.mkdirSync(pki);
    const f = (n: string) => path.join(pki, n);
    ca = f('ca.pem');
    run('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', f('ca.key'), '-out', ca, '-days', '2',
      '-subj', '/CN=berth test CA']);
    run('openssl', ['req', '-newkey', 'rsa:2048', '-nodes', '-keyout', f('server.key'), '-out', f('server.csr'),
      '-subj', '/CN=berth test registry']);
    fs.writeFileSync(f('ext.cnf'), 'subjectAltName=IP:0.0.0.0,IP:127.0.0.1\n');
    run('openssl', ['x509', '-req', '-in', f('server.csr'), '-CA', ca, '-CAkey', f('ca.key'), '-CAcreateserial',
      '-out', f('server.pem'), '-days', '2', '-extfile', f('ext.cnf')]);
    reg = await startRegistry(dir, 'tls', `  tls:\n    certificate: ${f('server.pem')}\n    key: ${f('server.key')}`);
    // The embedded busybox, pushed under a name this root does not have.
    const archive = path.join(dir, 'busybox.tar');
    const s = berth(['save', '--format', 'oci-archive', '-o', archive, 'busybox']);
    assert.equal(s.status, 0, s.stderr);
    image = `0.0.0.0:${reg.host.split(':')[1]}/pullca/busybox:v1`;
    run('skopeo', ['copy', '--quiet', '--dest-tls-verify=false', `oci-archive:${archive}`, `docker://${reg.host}/pullca/busybox:v1`]);
  });

  after(async () => {
    await stopRegistry(reg);
    const gone = await waitFor(() => processesWith(root).length === 0, 10_000);
    const mounts = fs.readFileSync('/proc/self/mountinfo', 'utf8').split('\n').filter((l) => l.includes(dir));
    if (gone && !mounts.length) fs.rmSync(dir, { recursive: true, force: true });
    assert.deepEqual(mounts, []);
  });

  it('without the CA: run fails with a certificate error and a hint', () => {
    const r = berth(['run', '--rm', image, 'echo', 'never']);
    assert.equal(r.status, 125, r.stderr);
    assert.match(r.stderr, /TLS failed \((SELF_SIGNED_CERT_IN_CHAIN|UNABLE_TO_VERIFY_LEAF_SIGNATURE|UNABLE_TO_GET_ISSUER_CERT_LOCALLY)\)/);
    assert.match(r.stderr, /NODE_EXTRA_CA_CERTS/);
    assert.equal(berth(['image', 'inspect', image]).status, 125, 'nothing was pulled');
  });

  it('with NODE_EXTRA_CA_CERTS: run pulls the image and runs it; create too', () => {
    const r = berth(['run', '--rm', image, 'echo', 'pulled-and-ran'], ca);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout, 'pulled-and-ran\n', 'stdout is the container\'s alone: the pull reports on stderr');
    assert.match(r.stderr, /Unable to find image/);
    assert.equal(berth(['image', 'inspect', image]).status, 0);
    // create pulls the same way (another tag, so that it is not local yet).
    run('skopeo', ['copy', '--quiet', '--src-tls-verify=false', '--dest-tls-verify=false',
      `docker://${reg!.host}/pullca/busybox:v1`, `docker://${reg!.host}/pullca/busybox:v2`]);
    const c = berth(['create', '--name', 'pulled', image.replace(':v1', ':v2'), 'true'], ca);
    assert.equal(c.status, 0, c.stderr);
    assert.equal(berth(['rm', '-f', 'pulled']).status, 0);
  });

  it('--pull never runs only a local image; --pull always asks the registry even when it is local', () => {
    const v3 = image.replace(':v1', ':v3');
    const never = berth(['run', '--rm', '--pull', 'never', v3, 'true'], ca);
    assert.equal(never.status, 125);
    assert.match(never.stderr, /is not here, and --pull never forbids pulling it/);
    assert.equal(berth(['image', 'inspect', v3]).status, 125, 'nothing was pulled');
    assert.equal(berth(['run', '--rm', '--pull', 'never', image, 'echo', 'local'], ca).stdout, 'local\n');
    // v1 is local: without the CA, only a pull would fail (and so show that it was tried).
    const always = berth(['run', '--rm', '--pull', 'always', image, 'echo', 'x']);
    assert.equal(always.status, 125, always.stdout);
    assert.match(always.stderr, /TLS failed/);
    assert.doesNotMatch(always.stderr, /Unable to find image/);
    const ok = berth(['run', '--rm', '--pull', 'always', image, 'echo', 'fresh'], ca);
    assert.equal(ok.status, 0, ok.stderr);
    assert.equal(ok.stdout, 'fresh\n');
    const bad = berth(['run', '--rm', '--pull', 'sometimes', image, 'true'], ca);
    assert.equal(bad.status, 125);
    assert.match(bad.stderr, /--pull "sometimes" is not a pull policy/);
  });
});
