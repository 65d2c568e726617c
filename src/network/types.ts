// The contract between engine/ and network/: what `--network` asks for, what a started
// container's network holds (recorded in the container's record before its process runs,
// so that a crashed berth leaves something the next one can tear down), and what each
// mode's driver does. engine/ calls only these; network/<mode>.ts implement them.

/** One `-p` after parsing: hostPort 0 means "a free port", chosen at setup. */
export interface PortMapping {
  hostIp: string;
  hostPort: number;
  containerPort: number;
  protocol: 'tcp' | 'udp';
}

export type NetworkModeName = 'none' | 'host' | 'slirp4netns' | 'pasta' | 'bridge' | 'container';

/** `--network` parsed: the mode, its `:options`, and for bridge the network's name. */
export interface NetworkRequest {
  mode: NetworkModeName;
  /** bridge: "bridge" (the default network) or a user-defined network's name. */
  network?: string;
  /** container: the other container's name or id. */
  container?: string;
  /** slirp4netns:allow_host_loopback=true,... and pasta:... options, as given. */
  options: Record<string, string>;
  ports: PortMapping[];
  /** bridge: more networks to join (eth1, ...), added by `berth network connect`. */
  extraNetworks?: string[];
  /** --dns, --dns-search, --dns-option: replace those lines of the container's resolv.conf. */
  dns?: string[];
  dnsSearch?: string[];
  dnsOptions?: string[];
  /** --add-host NAME:ADDRESS lines for /etc/hosts; "host-gateway" is the network's gateway. */
  extraHosts?: { name: string; address: string }[];
}

/** A helper process a network holds (slirp4netns, pasta, a port proxy), ended by pid + start time. */
export interface HelperProcess {
  what: string;
  pid: number;
  startTime: number;
}

/** What a container's network holds once set up; stored as ContainerRecord.network. */
export interface NetworkAttachment {
  mode: NetworkModeName;
  network?: string;
  /** The bind-mounted network namespace file (absent for host and container:). */
  netnsPath?: string;
  /** The interface inside the container, its address (CIDR), gateway and MAC. */
  device?: string;
  address?: string;
  gateway?: string;
  mac?: string;
  /** Host-side names to remove: veth, nft table/chains, ... (driver-specific). */
  hostDevices?: string[];
  ports: PortMapping[];
  helpers: HelperProcess[];
  /** Lines for the container's /etc/resolv.conf ("nameserver 10.0.2.3"). */
  resolvConf: string[];
  /** Extra /etc/hosts lines (peers on a user-defined network). */
  hosts: string[];
  /** Scratch files the network made (API sockets, pid files, logs), removed at teardown. */
  files?: string[];
  /** container:<ref>: the id of the container whose namespace this one joined. */
  sharedWith?: string;
  /** bridge: the container it belongs to (its leases and port rules carry this id). */
  containerId?: string;
  /** bridge: one per network joined (eth0 first; the top-level fields repeat eth0's). */
  endpoints?: BridgeEndpoint[];
}

/** bridge: the container's interface on one berth network. */
export interface BridgeEndpoint {
  network: string;
  /** eth0, eth1, ... inside the container; the veth end on the network's bridge. */
  device: string;
  hostDevice: string;
  /** CIDR, e.g. 10.213.0.2/24. */
  address: string;
  gateway: string;
  mac: string;
}

export interface SetupContext {
  root: string;
  containerId: string;
  containerName: string;
  hostname: string;
  /** The container's directory (scratch files: API sockets, pid files). */
  dir: string;
  netnsPath: string;
  request: NetworkRequest;
  /**
   * True when the berth process that sets up stays for the container's whole life (a
   * foreground run): helpers may then be tied to it (slirp4netns --exit-fd), so that a
   * killed berth takes them along. Detached containers outlive berth: false.
   */
  foreground?: boolean;
  /** Called as soon as a helper process exists, so the engine records it before setup ends. */
  onHelper?: (h: HelperProcess) => void;
}

export interface NetworkDriver {
  /**
   * Gives the (already created, still empty) namespace at ctx.netnsPath its network and
   * ports. Partial work is undone before it throws.
   * @throws BerthError NETWORK_* with a hint
   */
  setup(ctx: SetupContext): Promise<NetworkAttachment>;
  /** Removes everything setup made; idempotent, tolerates half-made attachments. */
  teardown(root: string, att: NetworkAttachment): Promise<void>;
}
