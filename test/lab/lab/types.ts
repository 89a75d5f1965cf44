

// ---------------------------------------------------------------------------------------------
// Public types
// ---------------------------------------------------------------------------------------------

/** One simulated GPU host. */
export interface LabHost {
  /** `host1`, `host2`, … — also the host's `hostname` (netns mode). */
  name: string;
  /** Address Airlock connects to (a lab subnet address, or 127.213.X.Y in loopback mode). */
  address: string;
  /** sshd port: 22 in netns mode, 2200 + host number in loopback mode. */
  port: number;
  /** Login user: `root` in netns mode, the current user in loopback mode when not root. */
  user: string;
  /** Host key fingerprint exactly as `ssh-keygen -lf` prints it (`SHA256:` + 43 base64 chars). */
  fingerprint: string;
  /** Network namespace name (netns mode), else null. */
  netns: string | null;
  /** The host's state directory (keys, sshd_config, logs, and `fs/` = its private filesystem). */
  dir: string;
  /** GPU profile name this host's nvidia-smi answers from (`a100`, `h100`, `t4`, `none`, `absent`, `hostile`). */
  gpuProfile: string;
  /** Only filled by {@link labStatus}: whether the host's sshd process is alive. */
  sshdRunning?: boolean;
  /** Only filled by {@link labStatus}: whether the host's link is cut ({@link cutLink}). */
  linkCut?: boolean;
  /**
   * Only in labs started with `encryptedModels`: the host's models filesystem (an ext4 image with
   * the `encrypt` feature on a loop device, mounted at `mountpoint` inside the host). `mounted:
   * false` with `error` says why a host has none; it is never silently a plain directory.
   */
  models?: LabModelsFs;
}

/** A host's encrypted-capable models filesystem ({@link LabUpOptions.encryptedModels}). */
export interface LabModelsFs {
  /** Inside the host: `/srv/.models-fs`. Airlock's encrypted directories live below it. */
  mountpoint: string;
  /** The raw image file on this machine (what a thief of the disk would read). */
  image: string;
  /** The loop device on this machine, once attached. */
  device: string | null;
  mounted: boolean;
  /** Why the host has no models filesystem, when it has none. */
  error: string | null;
}

/** A running lab. Plain data: it can be serialised and handed to another process. */
export interface Lab {
  id: string;
  /** `netns`: real namespaces (root). `loopback`: fallback on 127.213.X.Y addresses. */
  mode: 'netns' | 'loopback';
  /** The lab's /24, e.g. `10.213.7.0/24` (`127.213.7.0/24` in loopback mode). */
  subnet: string;
  /** The lab's state directory (contains state.json). */
  dir: string;
  hosts: LabHost[];
  /** The decoy "outside world": a TCP listener answering `decoy\n`, in a namespace of its own. */
  decoy: { address: string; port: number };
  /**
   * Whether each host has a system of its own: private `/etc`, `/usr`, `/var` (overlays) and
   * `/run`, so that installing packages, writing units or sshd drop-ins on a host changes that
   * host only. Only then may a test change system state on a host (netns mode always; loopback
   * mode as root). Without it a host shares this machine's files.
   */
  privateSystem: boolean;
  /** Set when the lab had to fall back to loopback mode: why, for the user. */
  notice?: string;
  /** Labs started with `registry`: the registry host (also in `hosts`, with its own sshd). */
  registry?: LabRegistry;
}

/** Token authentication of the lab registry (distribution's `auth.token`). */
export interface RegistryTokenAuth {
  /** The URL clients are sent to for a token (the `WWW-Authenticate` realm). */
  realm: string;
  /** The registry's name in tokens (`aud`) and in token requests (`service`). */
  service: string;
  /** The tokens' `iss`. */
  issuer: string;
  /** PEM certificates; a token's `x5c` chain must end in one of them. */
  rootCertBundlePem: string;
}

/** The lab's registry host: Debian's docker-registry, bound to the host's lab address only. */
export interface LabRegistry {
  /** Its name in `hosts` (`registry`). */
  host: string;
  address: string;
  port: number;
  /** `http://<address>:5000`: the Registry HTTP API V2 is under `/v2/`. */
  url: string;
  /** The registry's storage directory as this machine sees it (the host's own `/srv/registry`). */
  storage: string;
  /** Token auth in force, or null: no authentication (the registry as first started). */
  auth: RegistryTokenAuth | null;
}

/** Options for {@link labUp}. */
export interface LabUpOptions {
  /** Lab id (letters, digits, `-`, `_`; at most 24 chars). Default `demo`. */
  id?: string;
  /** Number of hosts, 1–200. */
  hosts: number;
  /** `authorized_keys` lines to install on every host. */
  authorize?: string[];
  /**
   * GPU profile per host (cycled when shorter than the host list). Default: the rotation
   * a100, h100, t4, none. Known: a100, h100, t4, none (driver not loaded), absent (no nvidia-smi),
   * hostile (attack text in every field, a hostile hostname and os-release: gpu/hostile.ts).
   */
  gpuProfiles?: string[];
  /** Tear down an existing lab with the same id first instead of refusing. */
  replace?: boolean;
  /**
   * The lab outlives the calling process (the CLI sets this). Otherwise the lab belongs to the
   * calling process: once that process is gone (say a test run crashed before its `afterAll`),
   * the lab counts as stale and the next `labUp` with the same id replaces it instead of refusing.
   */
  persistent?: boolean;
  /**
   * Give every host a models filesystem that fscrypt can encrypt: a sparse ext4 image
   * (`mkfs.ext4 -O encrypt`, 256 MiB unless `sizeMiB`) in the host's state directory, on a loop
   * device, mounted at `/srv/.models-fs` inside the host only. `/srv/models` is left for Airlock
   * to create (a symlink to its encrypted directory: electron/core/keys/fscrypt.ts). Needs root and
   * hosts with a mount namespace; a host that cannot have one says so in `LabHost.models`.
   */
  encryptedModels?: true | { sizeMiB?: number };
  /**
   * Add a registry host (`registry`, address .240 of the lab subnet, its own sshd like every host)
   * running Debian's `docker-registry serve` with a config of its own, bound to its lab address,
   * storage in its own `/srv/registry`, no authentication until {@link configureRegistry} sets
   * token auth. Needs the docker-registry package.
   */
  registry?: boolean;
}
