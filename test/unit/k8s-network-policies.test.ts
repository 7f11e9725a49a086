import type { V1NetworkPolicy } from '@kubernetes/client-node';
import { DEFAULT_NETWORK_SETTINGS, NETWORK_POLICY_NAMES, buildNetworkPolicies, deniedEgressCidrs } from '../../src/k8s/network-policies';

const ID = '3f2c1a9e-8b7d-4c6e-9f01-23456789abcd';
const NS = `tenant-${ID}`;
const LABELS = {
  'tenancy.dev/tenant-id': ID,
  'tenancy.dev/plan': 'pro',
  'app.kubernetes.io/managed-by': 'tenant-provisioner',
};

function build(ingressNamespace = 'ingress-nginx'): V1NetworkPolicy[] {
  return buildNetworkPolicies({ namespace: NS, tenantId: ID, plan: 'pro', ingressNamespace });
}

function byName(name: string, policies = build()): V1NetworkPolicy {
  const found = policies.find((p) => p.metadata?.name === name);
  if (!found) throw new Error(`no policy named ${name}`);
  return found;
}

describe('buildNetworkPolicies', () => {
  it('builds exactly the five named policies, in order', () => {
    expect(build().map((p) => p.metadata?.name)).toEqual([
      'default-deny-all',
      'allow-same-namespace',
      'allow-dns-egress',
      'allow-from-ingress-controller',
      'allow-internet-egress',
    ]);
    expect(Object.values(NETWORK_POLICY_NAMES)).toEqual(build().map((p) => p.metadata?.name));
  });

  it('puts every policy in the tenant namespace with the tenant labels', () => {
    for (const policy of build()) {
      expect(policy.apiVersion).toBe('networking.k8s.io/v1');
      expect(policy.kind).toBe('NetworkPolicy');
      expect(policy.metadata?.namespace).toBe(NS);
      expect(policy.metadata?.labels).toStrictEqual(LABELS);
    }
  });

  it('denies all ingress and egress by default', () => {
    expect(byName('default-deny-all')).toStrictEqual({
      apiVersion: 'networking.k8s.io/v1',
      kind: 'NetworkPolicy',
      metadata: { name: 'default-deny-all', namespace: NS, labels: LABELS },
      spec: { podSelector: {}, policyTypes: ['Ingress', 'Egress'] },
    });
  });

  it('allows traffic between pods of the same namespace, both ways', () => {
    expect(byName('allow-same-namespace').spec).toStrictEqual({
      podSelector: {},
      policyTypes: ['Ingress', 'Egress'],
      ingress: [{ _from: [{ podSelector: {} }] }],
      egress: [{ to: [{ podSelector: {} }] }],
    });
  });

  it('allows DNS over UDP and TCP to kube-dns pods in kube-system only', () => {
    expect(byName('allow-dns-egress').spec).toStrictEqual({
      podSelector: {},
      policyTypes: ['Egress'],
      egress: [
        {
          to: [
            {
              namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'kube-system' } },
              podSelector: { matchLabels: { 'k8s-app': 'kube-dns' } },
            },
          ],
          ports: [
            { protocol: 'UDP', port: 53 },
            { protocol: 'TCP', port: 53 },
          ],
        },
      ],
    });
  });

  it("allows ingress from the ingress controller's pods in its namespace, to the app's port only", () => {
    expect(byName('allow-from-ingress-controller').spec).toStrictEqual({
      podSelector: {},
      policyTypes: ['Ingress'],
      ingress: [
        {
          _from: [
            {
              namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'ingress-nginx' } },
              podSelector: { matchLabels: { 'app.kubernetes.io/name': 'ingress-nginx' } },
            },
          ],
          ports: [{ protocol: 'TCP', port: 8080 }],
        },
      ],
    });
    const custom = buildNetworkPolicies({
      namespace: NS,
      tenantId: ID,
      plan: 'pro',
      ingressNamespace: 'edge',
      network: { ...DEFAULT_NETWORK_SETTINGS, ingressPodSelector: { app: 'traefik' }, appPort: 9000 },
    });
    expect(byName('allow-from-ingress-controller', custom).spec?.ingress?.[0]).toMatchObject({
      _from: [{ podSelector: { matchLabels: { app: 'traefik' } } }],
      ports: [{ protocol: 'TCP', port: 9000 }],
    });
    const traefik = byName('allow-from-ingress-controller', build('traefik'));
    expect(traefik.spec?.ingress?.[0]?._from?.[0]?.namespaceSelector?.matchLabels).toStrictEqual({
      'kubernetes.io/metadata.name': 'traefik',
    });
  });

  it('allows no egress beyond DNS and the namespace on a plan without internet egress', () => {
    for (const egress of [undefined, 'none'] as const) {
      const policies = buildNetworkPolicies({ namespace: NS, tenantId: ID, plan: 'starter', ingressNamespace: 'ingress-nginx', egress });
      expect(byName('allow-internet-egress', policies).spec).toStrictEqual({ podSelector: {}, policyTypes: ['Egress'], egress: [] });
    }
  });

  it("allows the internet on an internet plan, except the cluster's, private, link-local and loopback ranges", () => {
    const policies = buildNetworkPolicies({
      namespace: NS,
      tenantId: ID,
      plan: 'pro',
      ingressNamespace: 'ingress-nginx',
      egress: 'internet',
      network: { ...DEFAULT_NETWORK_SETTINGS, clusterCidrs: ['10.244.0.0/16', '10.96.0.0/16', '198.51.100.0/24'] },
    });
    const rule = byName('allow-internet-egress', policies).spec?.egress;
    expect(rule).toHaveLength(1);
    expect(rule![0]!.ports).toBeUndefined();
    const block = rule![0]!.to![0]!.ipBlock!;
    expect(block.cidr).toBe('0.0.0.0/0');
    expect(block.except).toEqual(
      expect.arrayContaining(['10.0.0.0/8', '172.16.0.0/12', '192.168.0.0/16', '100.64.0.0/10', '169.254.0.0/16', '127.0.0.0/8', '10.244.0.0/16', '10.96.0.0/16', '198.51.100.0/24']),
    );
    expect(block.except).not.toContain('203.0.113.0/24');
  });

  it('refuses a cluster range that is not an IPv4 CIDR', () => {
    expect(() => deniedEgressCidrs(['10.96.0.0'])).toThrow(/Invalid cluster range "10.96.0.0"/);
    expect(() => deniedEgressCidrs(['fd00::/8'])).toThrow(/IPv4 CIDR/);
    expect(deniedEgressCidrs(['10.0.0.0/8'])).toEqual([...new Set(deniedEgressCidrs([]))]);
  });

  it('gives each policy its own labels object', () => {
    const [a, b] = build();
    a!.metadata!.labels!['tenancy.dev/plan'] = 'changed';
    expect(b!.metadata!.labels!['tenancy.dev/plan']).toBe('pro');
  });

  it.each(['', 'Ingress', 'ingress_nginx', 'a'.repeat(64)])('rejects the ingress namespace %j', (ingressNamespace) => {
    expect(() => build(ingressNamespace)).toThrow(/Invalid ingress controller namespace/);
  });

  it('rejects an invalid tenant namespace', () => {
    expect(() => buildNetworkPolicies({ namespace: 'Bad', tenantId: ID, plan: 'pro', ingressNamespace: 'x' })).toThrow(
      /Invalid namespace "Bad"/,
    );
  });
});
