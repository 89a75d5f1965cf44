import { SUBNET_PREFIX } from './constants';
import { must } from './processes';
import type { LabState } from './state';

// ---------------------------------------------------------------------------------------------
// Network (netns mode)
// ---------------------------------------------------------------------------------------------

export async function buildNetwork(st: LabState): Promise<void> {
  const br = st.bridge!;
  const members = [
    ...st.hosts.map((h) => ({ netns: h.netns!, veth: h.veth!, address: h.address })),
    { netns: st.decoy.netns!, veth: st.decoy.veth!, address: st.decoy.address },
  ];
  const rootCmds = [
    ...members.map((m) => `netns add ${m.netns}`),
    `link add ${br} type bridge`,
    // No IPv6 link-local chatter from the lab's interfaces: the lab speaks IPv4 on its /24 only.
    `link set ${br} addrgenmode none`,
    `addr add ${st.bridgeAddress}/24 dev ${br}`,
    `link set ${br} up`,
    ...members.flatMap((m) => [
      `link add ${m.veth} type veth peer name eth0 netns ${m.netns}`,
      `link set ${m.veth} addrgenmode none`,
      `link set ${m.veth} master ${br} up`,
    ]),
  ];
  await must('ip', ['-batch', '-'], { input: rootCmds.join('\n') + '\n' });
  // Inside each namespace: lo, and eth0 with its address. The connected /24 route is the only
  // route a host gets: no default route, so nothing can be sent off the lab subnet.
  await Promise.all(
    members.map((m) =>
      must('ip', ['-n', m.netns, '-batch', '-'], {
        input: ['link set lo up', 'link set eth0 addrgenmode none', `addr add ${m.address}/24 dev eth0`, 'link set eth0 up'].join('\n') + '\n',
      }),
    ),
  );
  // Seal the root namespace: whatever its forwarding settings, nothing is routed between the lab
  // bridge and any other interface, and hosts can reach no address of this machine but the
  // bridge's own (the threat: a test or a bug in Airlock making a lab host talk to the real network).
  const t = st.nftTable!;
  const ruleset = `table inet ${t} {
  chain forward {
    type filter hook forward priority filter - 10; policy accept;
    iifname "${br}" oifname != "${br}" drop
    oifname "${br}" iifname != "${br}" drop
  }
  chain input {
    type filter hook input priority filter - 10; policy accept;
    iifname "${br}" meta nfproto ipv6 drop
    iifname "${br}" ip daddr != { ${st.bridgeAddress}, 255.255.255.255, 224.0.0.0/4, ${SUBNET_PREFIX}.${st.slot}.255 } drop
  }
}
`;
  await must('nft', ['-f', '-'], { input: ruleset });
}
