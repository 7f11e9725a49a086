import type { V1NetworkPolicy, V1NetworkPolicySpec } from '@kubernetes/client-node';
import { isDns1123Label } from '../naming';
import { tenantLabels } from './labels';

export const NETWORK_POLICY_NAMES = Object.freeze({
  defaultDenyAll: 'default-deny-all',
  allowSameNamespace: 'allow-same-namespace',
  allowDnsEgress: 'allow-dns-egress',
  allowFromIngressController: 'allow-from-ingress-controller',
} as const);

// Set by Kubernetes itself on every namespace (since 1.21) and not editable by tenants, so it is
// safe to select on, unlike labels a namespace owner could add to impersonate kube-system.
const NAMESPACE_NAME_LABEL = 'kubernetes.io/metadata.name';

function checkNamespaceName(what: string, value: string): void {
  if (!isDns1123Label(value)) {
    throw new Error(
      `Invalid ${what} ${JSON.stringify(value.slice(0, 80))}: it must be a namespace name ` +
        '(a DNS-1123 label of at most 63 lowercase letters, digits and "-").',
    );
  }
}

// `_from` (like LimitRangeItem's `_default`) is the client library's name for the JSON field
// "from", a reserved word in its generated models; the library's ObjectSerializer, which
// KubernetesObjectApi runs on every request body, writes it out as "from". Sending these objects
// with plain JSON.stringify would lose the field.

/**
 * The tenant's network isolation: deny everything, then allow traffic inside the namespace,
 * DNS lookups to kube-dns, and inbound traffic from the ingress controller's namespace.
 * Policies are additive, so each allow rule is its own object with a name that says what it is for.
 */
export function buildNetworkPolicies(input: {
  namespace: string;
  tenantId: string;
  plan: string;
  ingressNamespace: string;
}): V1NetworkPolicy[] {
  checkNamespaceName('namespace', input.namespace);
  checkNamespaceName('ingress controller namespace', input.ingressNamespace);
  const labels = tenantLabels(input.tenantId, input.plan);

  const policy = (name: string, spec: V1NetworkPolicySpec): V1NetworkPolicy => ({
    apiVersion: 'networking.k8s.io/v1',
    kind: 'NetworkPolicy',
    metadata: { name, namespace: input.namespace, labels: { ...labels } },
    spec,
  });

  return [
    policy(NETWORK_POLICY_NAMES.defaultDenyAll, {
      podSelector: {},
      policyTypes: ['Ingress', 'Egress'],
    }),
    policy(NETWORK_POLICY_NAMES.allowSameNamespace, {
      podSelector: {},
      policyTypes: ['Ingress', 'Egress'],
      ingress: [{ _from: [{ podSelector: {} }] }],
      egress: [{ to: [{ podSelector: {} }] }],
    }),
    policy(NETWORK_POLICY_NAMES.allowDnsEgress, {
      podSelector: {},
      policyTypes: ['Egress'],
      egress: [
        {
          // One peer with both selectors means "kube-dns pods in kube-system" (AND), not either.
          to: [
            {
              namespaceSelector: { matchLabels: { [NAMESPACE_NAME_LABEL]: 'kube-system' } },
              podSelector: { matchLabels: { 'k8s-app': 'kube-dns' } },
            },
          ],
          // TCP as well as UDP: large responses (and DNSSEC) fall back to TCP.
          ports: [
            { protocol: 'UDP', port: 53 },
            { protocol: 'TCP', port: 53 },
          ],
        },
      ],
    }),
    policy(NETWORK_POLICY_NAMES.allowFromIngressController, {
      podSelector: {},
      policyTypes: ['Ingress'],
      ingress: [{ _from: [{ namespaceSelector: { matchLabels: { [NAMESPACE_NAME_LABEL]: input.ingressNamespace } } }] }],
    }),
  ];
}
