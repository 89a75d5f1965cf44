/**
 * The lab: a small simulated GPU cluster on this machine, for integration tests, e2e tests and
 * demos (DESIGN.md §7).
 *
 * Each host is a Linux network namespace with an address on a private /24, a veth into a lab
 * bridge in the root namespace, and its own mount and UTS namespaces, held open by a small holder
 * process, in which a real OpenSSH `sshd` runs. In the host's mount namespace, the machine's
 * `/etc`, `/usr` and `/var` are overlays with per-host upper directories (so `dpkg -i`, units in
 * /etc/systemd/system or sshd drop-ins change that host only), `/run` is a directory of its own, and
 * `/root`, `/srv`, `/opt`, `/var/lib/airlock-host`, `/tmp` and `/usr/local/bin` are the host's own
 * directories; `hostname` is the host's name. `/usr/local/bin/nvidia-smi` is an emulator
 * answering in the real output formats from a per-host GPU profile; `/usr/local/bin/systemctl`
 * (+ `journalctl`) simulates systemd, which cannot run in a lab host (host/systemctl.mjs), and
 * `/usr/local/bin/airlock-inference-sim` is a vLLM-shaped inference server (host/airlock-inference-sim.mjs).
 *
 * The lab is sealed: host namespaces have only the connected route to the lab subnet, and an nft
 * table of the lab's own in the root namespace drops anything forwarded to or from the lab bridge,
 * so no lab packet can reach an address that is not the lab's. The "outside world" for lockdown
 * tests is a decoy namespace of the lab's own.
 *
 * Without root (or when `ip netns add` fails, or with `AIRLOCK_LAB_MODE=loopback`) the lab falls
 * back to sshd processes on 127.213.X.Y addresses ("loopback" mode).
 *
 * State lives in `/run/airlock-lab/<id>/` (root) or `$TMPDIR/airlock-lab-<uid>/<id>/`, override
 * with `AIRLOCK_LAB_STATE`. It is deliberately not under /tmp for root: /tmp is one of the
 * directories each host gets its own copy of, so the sshd config must live elsewhere.
 */

// The lab's code lives in ./lab/, one file per part (their banners are the sections this file
// had): public types, naming and constants, internal state (state.json), process helpers,
// locking and allocation, mode detection, the host filesystem, daemons (host namespaces, sshd and
// decoy), the network, up/down/status, and keys, faults and commands. This file is the lab's
// public API: importers use it, never ./lab/* directly.
export { GPU_PROFILE_NAMES, GPU_PROFILE_ROTATION, type GpuProfile } from './gpu/profiles';
export * from './gpu/hostile';
export type { Lab, LabHost, LabModelsFs, LabRegistry, LabUpOptions, RegistryTokenAuth } from './lab/types';
export { configureRegistry, registryConfig, registryLog } from './lab/registry';
export { MODELS_FS_MOUNT, hostModelsImage } from './lab/models-fs';
export { DEFAULT_LAB_ID, NETNS_PREFIX, REGISTRY_HOST, REGISTRY_PORT, labIdFor, labRun, labStateRoot } from './lab/constants';
export { labDown, labIsStale, labList, labReclaim, labStatus, labUp } from './lab/lifecycle';
export {
  authorizeKey,
  corruptFile,
  cutLink,
  decoyConnections,
  killSshd,
  replaceHostKey,
  restoreLink,
  runOnHost,
  setGpuProfile,
  setLoginText,
  slowLink,
  startSshd,
  throttleLink,
} from './lab/faults';
