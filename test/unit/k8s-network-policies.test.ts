import type { V1NetworkPolicy } from '@kubernetes/client-node';
import { NETWORK_POLICY_NAMES, buildNetworkPolicies } from '../../src/k8s/network-policies';

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
  it('builds exactly the four named policies, in order', () => {
    expect(build().map((p) => p.metadata?.name)).toEqual([
      'default-deny-all',
      'allow-same-namespace',
      'allow-dns-egress',
      'allow-from-ingress-controller',
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

  it('allows ingress from the configured ingress controller namespace only', () => {
    expect(byName('allow-from-ingress-controller').spec).toStrictEqual({
      podSelector: {},
      policyTypes: ['Ingress'],
      ingress: [{ _from: [{ namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'ingress-nginx' } } }] }],
    });
    const traefik = byName('allow-from-ingress-controller', build('traefik'));
    expect(traefik.spec?.ingress?.[0]?._from?.[0]?.namespaceSelector?.matchLabels).toStrictEqual({
      'kubernetes.io/metadata.name': 'traefik',
    });
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
