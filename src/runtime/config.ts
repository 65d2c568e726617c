// Loads a bundle's config.json: JSON syntax, the OCI runtime-spec JSON schema (compiled
// at build time by scripts/build-schema.js), then the fields berth cannot honour, each an
// error that names the field. Called by create and run, in the Node host process.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { BerthError, isErrno } from '../common/errors';
import type { Spec } from './spec';

interface SchemaError {
  instancePath: string;
  message?: string;
  params?: Record<string, unknown>;
}
type Validator = ((data: unknown) => boolean) & { errors?: SchemaError[] | null };

let validator: Validator | undefined;
/** Loads the compiled schema validator; the start-up snapshot calls it at build time. */
export function loadValidator(): Validator {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  validator ??= require('./config-schema-validate') as Validator;
  return validator;
}

/** Where the JSON parser stopped, as "line L, column C", from V8's message. */
function describeJsonError(text: string, err: Error): string {
  const m = /position (\d+)/.exec(err.message);
  if (!m) return err.message;
  const pos = Number(m[1]);
  const before = text.slice(0, pos);
  const line = before.split('\n').length;
  const col = pos - before.lastIndexOf('\n');
  return `${err.message.replace(/ in JSON at position \d+.*$/, '')} at line ${line}, column ${col}`;
}

function unsupported(field: string, why: string, hint?: string): BerthError {
  return new BerthError('CONFIG_UNSUPPORTED', `config.json field ${field} is not supported: ${why}`, {
    context: { field }, hint: hint ?? 'remove the field, or run this bundle with another runtime',
  });
}

/**
 * Reads and validates BUNDLE/config.json.
 * @throws BerthError BUNDLE_NOT_FOUND, CONFIG_NOT_FOUND, CONFIG_INVALID_JSON, CONFIG_SCHEMA,
 *   CONFIG_UNSUPPORTED, ROOTFS_NOT_FOUND
 */
export function loadConfig(bundle: string): { spec: Spec; rootfs: string } {
  let st: fs.Stats;
  try {
    st = fs.statSync(bundle);
  } catch (err) {
    throw new BerthError('BUNDLE_NOT_FOUND', `bundle directory "${bundle}" does not exist`, {
      cause: err, context: { path: bundle }, hint: 'pass the bundle with --bundle DIR (default: the current directory)',
    });
  }
  if (!st.isDirectory()) {
    throw new BerthError('BUNDLE_NOT_FOUND', `bundle "${bundle}" is not a directory`, { context: { path: bundle } });
  }

  const file = path.join(bundle, 'config.json');
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    throw new BerthError('CONFIG_NOT_FOUND', `cannot read "${file}": ${(err as Error).message}`, {
      cause: err, context: { path: file },
      hint: isErrno(err, 'ENOENT') ? 'create one with `berth-runtime spec` in the bundle directory' : undefined,
    });
  }

  let spec: Spec;
  try {
    spec = JSON.parse(text) as Spec;
  } catch (err) {
    throw new BerthError('CONFIG_INVALID_JSON', `"${file}" is not valid JSON: ${describeJsonError(text, err as Error)}`, {
      cause: err, context: { path: file },
    });
  }

  checkSchema(spec, `"${file}"`, file);
  checkSupported(spec);

  if (!spec.root?.path) {
    throw new BerthError('CONFIG_SCHEMA', `"${file}" has no root.path`, { context: { path: file, field: 'root.path' } });
  }
  const rootfs = path.resolve(bundle, spec.root.path);
  if (!fs.existsSync(rootfs) || !fs.statSync(rootfs).isDirectory()) {
    throw new BerthError('ROOTFS_NOT_FOUND', `root filesystem "${rootfs}" does not exist or is not a directory`, {
      context: { path: rootfs, field: 'root.path' }, hint: 'root.path in config.json is relative to the bundle directory',
    });
  }
  if (!spec.process) {
    throw new BerthError('CONFIG_SCHEMA', `"${file}" has no process to run`, { context: { path: file, field: 'process' } });
  }
  if (!spec.process.args?.length) {
    throw new BerthError('CONFIG_SCHEMA', `"${file}" has no process.args`, { context: { path: file, field: 'process.args' } });
  }
  return { spec, rootfs };
}

/**
 * Validates SPEC against the OCI runtime-spec schema; WHAT names it in the message.
 * @throws BerthError CONFIG_SCHEMA
 */
export function checkSchema(spec: unknown, what: string, file: string): void {
  const validate = loadValidator();
  if (!validate(spec)) {
    const e = validate.errors?.[0];
    const where = e?.instancePath ? e.instancePath.replace(/^\//, '').replace(/\//g, '.') : '(top level)';
    const extra = e?.params && 'allowedValues' in e.params ? ` (${(e.params.allowedValues as unknown[]).join(', ')})` : '';
    throw new BerthError('CONFIG_SCHEMA', `${what} does not match the OCI runtime-spec schema: ${where} ${e?.message ?? 'is invalid'}${extra}`, {
      context: { path: file, field: where },
    });
  }
}

/** Fields that are valid OCI but that berth does not carry out: refuse, never ignore. */
export function checkSupported(spec: Spec): void {
  const p = spec.process;
  const l = spec.linux ?? {};
  if (p?.apparmorProfile) throw unsupported('process.apparmorProfile', 'berth has no AppArmor support');
  if (p?.selinuxLabel) throw unsupported('process.selinuxLabel', 'berth has no SELinux support');
  if (l.mountLabel) throw unsupported('linux.mountLabel', 'berth has no SELinux support');
  if (p?.scheduler) throw unsupported('process.scheduler', 'sched_setattr is not implemented');
  if (p?.ioPriority) throw unsupported('process.ioPriority', 'ioprio_set is not implemented');
  if (p?.execCPUAffinity) throw unsupported('process.execCPUAffinity', 'not implemented');
  if (p?.commandLine) throw unsupported('process.commandLine', 'it is for Windows');
  if (p?.user?.username) throw unsupported('process.user.username', 'it is for Windows', 'use process.user.uid and gid');
  if (l.intelRdt) throw unsupported('linux.intelRdt', 'resctrl is not implemented');
  if (l.personality) throw unsupported('linux.personality', 'not implemented');
  if (l.timeOffsets) throw unsupported('linux.timeOffsets', 'time namespaces are not implemented');
  if (l.memoryPolicy) throw unsupported('linux.memoryPolicy', 'set_mempolicy is not implemented');
  for (const ns of l.namespaces ?? []) {
    if (ns.type === 'time') throw unsupported('linux.namespaces[type=time]', 'time namespaces are not implemented');
  }
  if (!(l.namespaces ?? []).some((ns) => ns.type === 'mount')) {
    throw unsupported('linux.namespaces', 'berth needs a mount namespace to set up the root filesystem',
      'add {"type": "mount"} to linux.namespaces');
  }
  const r = l.resources ?? {};
  if (r.blockIO && Object.keys(r.blockIO).length) throw unsupported('linux.resources.blockIO', 'block I/O limits are not implemented');
  if (r.hugepageLimits?.length) throw unsupported('linux.resources.hugepageLimits', 'not implemented');
  if (r.rdma && Object.keys(r.rdma).length) throw unsupported('linux.resources.rdma', 'not implemented');
  if (r.network && Object.keys(r.network).length) throw unsupported('linux.resources.network', 'net_cls/net_prio are not implemented');
  if (r.cpu?.realtimeRuntime || r.cpu?.realtimePeriod) throw unsupported('linux.resources.cpu.realtime*', 'not implemented');
  if (r.memory?.kernel || r.memory?.kernelTCP) throw unsupported('linux.resources.memory.kernel', 'kernel memory limits are gone from current kernels');
  const sc = l.seccomp;
  if (sc?.listenerPath) throw unsupported('linux.seccomp.listenerPath', 'SCMP_ACT_NOTIFY is not supported');
  for (const m of spec.mounts ?? []) {
    if (m.uidMappings || m.gidMappings) throw unsupported(`mounts[${m.destination}].uidMappings`, 'id-mapped mounts are not implemented');
  }
}
