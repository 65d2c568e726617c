// The plan handed to native/init over a pipe. Format and sync points: native/plan.h.
// Change both files in the same commit.

export type Field = string | number;

/** Percent-encodes one field so it holds no space, newline or '%' (see plan.h). */
export function encodeField(v: Field): string {
  const s = String(v);
  if (s === '') return '%';
  return s.replace(/[^A-Za-z0-9._/:,=+@^-]/gu, (ch) =>
    Array.from(Buffer.from(ch, 'utf8')).map((b) => '%' + b.toString(16).padStart(2, '0')).join(''));
}

export class Plan {
  private lines: string[] = [];

  add(tag: string, ...fields: Field[]): this {
    this.lines.push([tag, ...fields.map(encodeField)].join(' '));
    return this;
  }

  toString(): string {
    return this.lines.join('\n') + '\n';
  }
}

export const CLONE_NEWNS = 0x00020000;
export const CLONE_NEWCGROUP = 0x02000000;
export const CLONE_NEWUTS = 0x04000000;
export const CLONE_NEWIPC = 0x08000000;
export const CLONE_NEWUSER = 0x10000000;
export const CLONE_NEWPID = 0x20000000;
export const CLONE_NEWNET = 0x40000000;

export const NAMESPACE_FLAGS: Record<string, number> = {
  mount: CLONE_NEWNS, cgroup: CLONE_NEWCGROUP, uts: CLONE_NEWUTS, ipc: CLONE_NEWIPC,
  user: CLONE_NEWUSER, pid: CLONE_NEWPID, network: CLONE_NEWNET,
};
/** /proc/PID/ns/<name> for each spec namespace type. */
export const NAMESPACE_PROC_NAMES: Record<string, string> = {
  mount: 'mnt', cgroup: 'cgroup', uts: 'uts', ipc: 'ipc', user: 'user', pid: 'pid', network: 'net',
};

export const hex = (n: number | bigint): string => n.toString(16);
