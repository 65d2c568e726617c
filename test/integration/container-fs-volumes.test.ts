// berth cp and export against what is mounted in a container: volumes, binds, tmpfs and
// the engine's /etc/hosts, /etc/hostname, /etc/resolv.conf. cp sees them as the container
// does (running: through its own root; stopped: its mount records over its overlay),
// symlinks planted in a volume still cannot reach the host, read-only mounts stay so;
// export leaves mounts out, as `docker export` does.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { berthSync, engineRoot, processesWith, requires, waitFor, type Result } from '../helpers';

const skip = requires('root');

describe('berth cp and export with volumes, binds, tmpfs and /etc files', { skip }, () => {
  let dir: string;
  let root: string;
  let host: string;
  const berth = (args: string[], input?: string): Result => berthSync(root, args, { input });
  const ok = (args: string[], input?: string): string => {
    const r = berth(args, input);
    assert.equal(r.status, 0, `${args.join(' ')}: ${r.stderr}`);
    return r.stdout;
  };
  const read = (p: string) => fs.readFileSync(p, 'utf8');

  before(() => {
    ({ dir, root } = engineRoot('cpvol'));
    host = path.join(dir, 'host');
    fs.mkdirSync(host);
    fs.mkdirSync(path.join(dir, 'bind'));
    fs.writeFileSync(path.join(dir, 'bind', 'b.txt'), 'from the bind\n');
    fs.mkdirSync(path.join(dir, 'robind'));
    // What a hostile container would like to read or overwrite on the host.
    fs.writeFileSync(path.join(dir, 'secret'), 'host secret\n');
  });
  after(async () => {
    for (const id of berth(['ps', '-aq', '--no-trunc']).stdout.split('\n').filter(Boolean)) berth(['rm', '-f', '-v', id]);
    for (const v of berth(['volume', 'ls', '-q']).stdout.split('\n').filter(Boolean)) berth(['volume', 'rm', '-f', v]);
    const gone = await waitFor(() => processesWith(root).length === 0, 15_000);
    const mounts = fs.readFileSync('/proc/self/mountinfo', 'utf8').split('\n').filter((l) => l.includes(dir));
    if (gone && !mounts.length) fs.rmSync(dir, { recursive: true, force: true });
    assert.ok(gone);
    assert.deepEqual(mounts, []);
  });

  it('running: cp reads and writes volumes, binds, tmpfs and the /etc files', async () => {
    ok(['run', '-d', '--name', 'live', '-h', 'live-host', '-v', 'livevol:/data', '-v', `${dir}/bind:/bind`, '--tmpfs', '/scratch',
      'busybox', 'sh', '-c', 'echo in-volume > /data/v; echo in-tmpfs > /scratch/t; touch /ready; sleep 600']);
    assert.ok(await waitFor(() => berth(['exec', 'live', 'test', '-e', '/ready']).status === 0, 10_000));

    ok(['cp', 'live:/data/v', `${host}/v`]);
    assert.equal(read(`${host}/v`), 'in-volume\n');
    ok(['cp', 'live:/scratch/t', `${host}/t`]);
    assert.equal(read(`${host}/t`), 'in-tmpfs\n');
    ok(['cp', 'live:/bind/b.txt', `${host}/b`]);
    assert.equal(read(`${host}/b`), 'from the bind\n');
    ok(['cp', 'live:/etc/hostname', `${host}/hostname`]);
    assert.equal(read(`${host}/hostname`), 'live-host\n');
    ok(['cp', 'live:/etc/hosts', `${host}/hosts`]);
    assert.match(read(`${host}/hosts`), /\blive-host\b/);
    // A directory holding mounts: what is mounted there comes along.
    ok(['cp', 'live:/', `${host}/all`]);
    assert.equal(read(`${host}/all/data/v`), 'in-volume\n');
    assert.equal(read(`${host}/all/scratch/t`), 'in-tmpfs\n');
    assert.equal(read(`${host}/all/etc/hostname`), 'live-host\n');
    assert.deepEqual(fs.readdirSync(`${host}/all/proc`), [], 'the kernel\'s /proc is not copied');

    fs.writeFileSync(`${host}/new.txt`, 'copied in\n');
    ok(['cp', `${host}/new.txt`, 'live:/data/']);
    ok(['cp', `${host}/new.txt`, 'live:/scratch/n']);
    ok(['cp', `${host}/new.txt`, 'live:/bind/n']);
    assert.equal(ok(['exec', 'live', 'cat', '/data/new.txt', '/scratch/n', '/bind/n']), 'copied in\n'.repeat(3));
    const vol = JSON.parse(ok(['volume', 'inspect', 'livevol']))[0].Mountpoint;
    assert.equal(read(path.join(vol, 'new.txt')), 'copied in\n', 'the write landed in the volume');
    assert.equal(read(path.join(dir, 'bind', 'n')), 'copied in\n', 'and in the bind\'s host directory');
  });

  it('running: symlinks planted in a volume resolve inside the container, never on the host', () => {
    // /data/abs names the host's test directory, /data/up climbs out with "..": inside
    // the container neither leads anywhere but its own root.
    ok(['exec', 'live', 'sh', '-c', `ln -s ${dir} /data/abs; ln -s ../../../../../../../.. /data/up; ln -s /etc /data/etc`]);
    const r = berth(['cp', 'live:/data/abs/secret', `${host}/leak1`]);
    assert.equal(r.status, 125);
    assert.match(r.stderr, /no such file or directory/i);
    assert.equal(fs.existsSync(`${host}/leak1`), false);
    const up = berth(['cp', `live:/data/up${dir}/secret`, `${host}/leak2`]);
    assert.equal(up.status, 125);
    assert.equal(fs.existsSync(`${host}/leak2`), false);
    // /data/etc/hostname is the container's own.
    ok(['cp', 'live:/data/etc/hostname', `${host}/hn2`]);
    assert.equal(read(`${host}/hn2`), 'live-host\n');
    // Writes: through the absolute link, into the container only (there is no such dir).
    const w = berth(['cp', `${host}/new.txt`, 'live:/data/abs/secret']);
    assert.equal(w.status, 125);
    assert.equal(read(path.join(dir, 'secret')), 'host secret\n', 'the host file is untouched');
    // The link itself is copied as a link, not followed.
    ok(['cp', 'live:/data/abs', `${host}/abs`]);
    assert.equal(fs.readlinkSync(`${host}/abs`), dir);
  });

  it('read-only volumes and binds refuse cp into them, running or stopped', () => {
    ok(['run', '-d', '--name', 'ro', '-v', 'rovol:/ro:ro', '-v', `${dir}/robind:/robind:ro`, 'busybox', 'sleep', '600']);
    fs.writeFileSync(`${host}/x`, 'x\n');
    for (const target of ['ro:/ro/x', 'ro:/robind/x']) {
      const r = berth(['cp', `${host}/x`, target]);
      assert.equal(r.status, 125, target);
      assert.match(r.stderr, /read-only/i, target);
    }
    ok(['stop', '-t', '1', 'ro']);
    for (const target of ['ro:/ro/x', 'ro:/robind/x']) {
      const r = berth(['cp', `${host}/x`, target]);
      assert.equal(r.status, 125, target);
      assert.match(r.stderr, /read-only mount/, target);
    }
    assert.deepEqual(fs.readdirSync(path.join(dir, 'robind')), []);
  });

  it('stopped: cp sees the volumes, binds and /etc files by their records; tmpfs content is gone', () => {
    ok(['stop', '-t', '1', 'live']);
    ok(['cp', 'live:/data/v', `${host}/sv`]);
    assert.equal(read(`${host}/sv`), 'in-volume\n');
    ok(['cp', 'live:/bind/b.txt', `${host}/sb`]);
    assert.equal(read(`${host}/sb`), 'from the bind\n');
    ok(['cp', 'live:/etc/hostname', `${host}/shn`]);
    assert.equal(read(`${host}/shn`), 'live-host\n');
    ok(['cp', 'live:/etc', `${host}/setc`]);
    assert.equal(read(`${host}/setc/hostname`), 'live-host\n');
    assert.match(read(`${host}/setc/hosts`), /\blive-host\b/);
    ok(['cp', 'live:/', `${host}/sall`]);
    assert.equal(read(`${host}/sall/data/v`), 'in-volume\n');
    assert.equal(read(`${host}/sall/bind/b.txt`), 'from the bind\n');
    assert.deepEqual(fs.readdirSync(`${host}/sall/scratch`), [], 'a stopped container\'s tmpfs is empty');
    // Into the stopped container's volume: it is there when it runs again.
    fs.writeFileSync(`${host}/later.txt`, 'while stopped\n');
    ok(['cp', `${host}/later.txt`, 'live:/data/']);
    ok(['start', 'live']);
    assert.equal(ok(['exec', 'live', 'cat', '/data/later.txt']), 'while stopped\n');
  });

  it('export leaves volumes, binds, tmpfs and the /etc files\' content out, as docker export', () => {
    const tarball = path.join(dir, 'live.tar');
    ok(['export', '-o', tarball, 'live']);
    const names = spawnSync('tar', ['-tf', tarball], { encoding: 'utf8' }).stdout.split('\n');
    assert.ok(names.includes('bin/busybox'), 'the root filesystem is there');
    assert.ok(names.includes('data/'), 'the mount point is');
    for (const n of ['data/v', 'data/new.txt', 'scratch/t', 'bind/b.txt']) assert.ok(!names.includes(n), `${n} is not`);
    const hostname = spawnSync('tar', ['-xOf', tarball, 'etc/hostname'], { encoding: 'utf8' });
    assert.ok(!hostname.stdout.includes('live-host'), 'the generated /etc/hostname is not');
  });
});
